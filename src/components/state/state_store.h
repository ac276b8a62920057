// State stores: where proxy_get_state reads and `wasmlet state set` writes. Each type lives
// in its own folder and is created by its config "type" name (CreateStateStore).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <map>

#include "common/status.h"

namespace wasmlet::components {

// One store of the config: grpc_config.state.<name> {type, metadata}.
struct StoreConfig {
  std::string name;
  std::string type;
  std::map<std::string, std::string> metadata;
  std::string json_path;  // for messages
};

class StateStoreComponent {
 public:
  virtual ~StateStoreComponent() = default;
  // The value of `key`; an empty string when the key is absent. An error when the store
  // cannot answer (it names the store and the cause). Thread-safe.
  virtual Result<std::string> Get(std::string_view key) = 0;
  virtual Status Set(std::string_view key, std::string_view value) = 0;
};

// Creates the store `config.type` names: "embedded" (SQLite file, the default choice),
// "redis", or "in-memory". Fails with the JSON path for an unknown type or bad metadata.
Result<std::unique_ptr<StateStoreComponent>> CreateStateStore(const StoreConfig& config);

}  // namespace wasmlet::components
