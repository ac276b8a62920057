// Configuration in the embedded store's SQLite file: table `configuration (store, key,
// content)`; metadata "path" as the embedded state store.
#pragma once

#include "components/configuration/configuration_store.h"
#include "components/embedded/sqlite_file.h"

namespace wasmlet::components {

class EmbeddedConfiguration : public ConfigurationStoreComponent {
 public:
  static Result<std::unique_ptr<ConfigurationStoreComponent>> Create(const StoreConfig& config);
  Result<ConfigurationItems> Get(const std::vector<std::string>& keys) override;
  Status Set(std::string_view key, std::string_view content) override;
  Status Delete(std::string_view key) override;

 private:
  EmbeddedConfiguration(std::string store, std::unique_ptr<SqliteFile> file)
      : store_(std::move(store)), file_(std::move(file)) {}
  std::string store_;
  std::unique_ptr<SqliteFile> file_;
};

}  // namespace wasmlet::components
