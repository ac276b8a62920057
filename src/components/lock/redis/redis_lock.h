// Locks in Redis, as Layotto's Redis lock keeps them: the resource's key holds the owner, set
// with NX and an expiry; unlocking compares the owner and deletes in one Lua script, so only
// the holder can release it. Connection metadata: components/redis/redis_client.h.
#pragma once

#include <memory>

#include "components/lock/lock_store.h"
#include "components/redis/redis_client.h"

namespace wasmlet::components {

class RedisLock : public LockStoreComponent {
 public:
  static Result<std::unique_ptr<LockStoreComponent>> Create(const StoreConfig& config);
  Result<bool> TryLock(std::string_view resource, std::string_view owner,
                       std::chrono::seconds expire) override;
  Result<UnlockResult> Unlock(std::string_view resource, std::string_view owner) override;
  Result<UnlockResult> Extend(std::string_view resource, std::string_view owner,
                              std::chrono::seconds expire) override;

 private:
  explicit RedisLock(std::unique_ptr<RedisClient> redis);
  std::unique_ptr<RedisClient> redis_;
  RedisClient::Script unlock_;
  RedisClient::Script extend_;
};

}  // namespace wasmlet::components
