#include "components/state/state_store.h"

#include "components/state/embedded/embedded_store.h"
#include "components/state/memory/memory_store.h"
#include "components/state/redis/redis_store.h"

namespace wasmlet::components {

Result<std::unique_ptr<StateStoreComponent>> CreateStateStore(const StoreConfig& config) {
  if (config.type == "in-memory" || config.type == "memory") return MemoryStore::Create(config);
  if (config.type == "embedded" || config.type == "sqlite") return EmbeddedStore::Create(config);
  if (config.type == "redis") return RedisStore::Create(config);
  return InvalidArgument("config " + config.json_path + ".type: unknown state store type \"" + config.type +
                         "\"; use \"embedded\", \"redis\" or \"in-memory\"");
}

}  // namespace wasmlet::components
