#include "components/lock/redis/redis_lock.h"

#include <hiredis/hiredis.h>

namespace wasmlet::components {
namespace {

// Deletes KEYS[1] if it holds the owner ARGV[1]: 0 done, 1 no such lock, 2 held by another.
constexpr const char* kUnlockScript = R"lua(
local holder = redis.call('GET', KEYS[1])
if not holder then return 1 end
if holder ~= ARGV[1] then return 2 end
redis.call('DEL', KEYS[1])
return 0
)lua";

}  // namespace

RedisLock::RedisLock(std::unique_ptr<RedisClient> redis) : redis_(std::move(redis)), unlock_(kUnlockScript) {}

Result<std::unique_ptr<LockStoreComponent>> RedisLock::Create(const StoreConfig& config) {
  auto redis = RedisClient::Create(config, "lock store '" + config.name + "'");
  if (!redis.ok()) return redis.status();
  return std::unique_ptr<LockStoreComponent>(new RedisLock(std::move(*redis)));
}

Result<bool> RedisLock::TryLock(std::string_view resource, std::string_view owner,
                                std::chrono::seconds expire) {
  const std::string seconds = std::to_string(expire.count());
  auto r = redis_->Command({"SET", resource, owner, "NX", "EX", seconds});
  if (!r.ok()) return r.status();
  switch ((*r)->type) {
    case REDIS_REPLY_STATUS: return true;  // OK
    case REDIS_REPLY_NIL: return false;    // held
    case REDIS_REPLY_ERROR: return redis_->Error(std::string(ReplyText(**r)));
    default: return redis_->Error("unexpected reply type " + std::to_string((*r)->type));
  }
}

Result<UnlockResult> RedisLock::Unlock(std::string_view resource, std::string_view owner) {
  auto r = redis_->Eval(unlock_, {resource}, {owner});
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_ERROR) return redis_->Error(std::string(ReplyText(**r)));
  if ((*r)->type != REDIS_REPLY_INTEGER || (*r)->integer < 0 || (*r)->integer > 2)
    return redis_->Error("unexpected reply to the unlock script");
  return static_cast<UnlockResult>((*r)->integer);
}

}  // namespace wasmlet::components
