// Configuration stores (Layotto's configuration API): items an operator sets and functions read
// by key. Types: "redis" (a key holds the content, or "content||version" as Dapr's Redis
// configuration store writes it; the version is dropped), "embedded" (table `configuration` of
// the SQLite file, metadata "path" as the embedded state store) and "in-memory". Every call is
// thread-safe. Nothing here tells a reader of changes: the runtime API's SubscribeConfiguration
// reads its keys again on a timer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "components/state/state_store.h"

namespace wasmlet::components {

// (key, content)
using ConfigurationItems = std::vector<std::pair<std::string, std::string>>;

class ConfigurationStoreComponent {
 public:
  virtual ~ConfigurationStoreComponent() = default;
  // The items of `keys` that exist, in the order asked. Errors: Unavailable when the store
  // cannot be reached, Internal otherwise.
  virtual Result<ConfigurationItems> Get(const std::vector<std::string>& keys) = 0;
  virtual Status Set(std::string_view key, std::string_view content) = 0;
  // Removes the item at `key`; a key that is not there is not an error.
  virtual Status Delete(std::string_view key) = 0;
};

Result<std::unique_ptr<ConfigurationStoreComponent>> CreateConfigurationStore(const StoreConfig& config);

}  // namespace wasmlet::components
