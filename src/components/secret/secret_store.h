// Secret stores (Layotto's secret API): a secret is a name and its data, a few name/value
// pairs (one for the local stores: the secret's own name and its value). Each type lives in its
// own folder and is created by its config "type" name (CreateSecretStore). Every call is
// thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "components/state/state_store.h"

namespace wasmlet::components {

using SecretData = std::vector<std::pair<std::string, std::string>>;

class SecretStoreComponent {
 public:
  virtual ~SecretStoreComponent() = default;
  // The data of secret `name`; nullopt when the store has no such secret.
  virtual Result<std::optional<SecretData>> Get(std::string_view name) = 0;
  // Every secret of the store, by name, in name order.
  virtual Result<std::vector<std::pair<std::string, SecretData>>> GetAll() = 0;
};

// "local.file" or "local.env", with the metadata of their folders' headers.
Result<std::unique_ptr<SecretStoreComponent>> CreateSecretStore(const StoreConfig& config);

// The local stores: a snapshot taken once, when the store is created.
class FixedSecrets : public SecretStoreComponent {
 public:
  explicit FixedSecrets(std::vector<std::pair<std::string, SecretData>> secrets);
  Result<std::optional<SecretData>> Get(std::string_view name) override;
  Result<std::vector<std::pair<std::string, SecretData>>> GetAll() override { return secrets_; }

 private:
  std::vector<std::pair<std::string, SecretData>> secrets_;  // sorted by name
};

}  // namespace wasmlet::components
