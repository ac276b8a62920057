#include "components/lock/lock_store.h"

#include "components/lock/embedded/embedded_lock.h"
#include "components/lock/memory/memory_lock.h"
#include "components/lock/redis/redis_lock.h"

namespace wasmlet::components {

Result<std::unique_ptr<LockStoreComponent>> CreateLockStore(const StoreConfig& config) {
  if (config.type == "in-memory" || config.type == "memory")
    return std::unique_ptr<LockStoreComponent>(new MemoryLock(*config.clock));
  if (config.type == "embedded" || config.type == "sqlite") return EmbeddedLock::Create(config);
  if (config.type == "redis") return RedisLock::Create(config);
  return InvalidArgument("config " + config.json_path + ".type: unknown lock store type \"" + config.type +
                         "\"; use \"embedded\", \"redis\" or \"in-memory\"");
}

}  // namespace wasmlet::components
