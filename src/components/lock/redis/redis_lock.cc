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

// Sets KEYS[1]'s expiry to ARGV[2] seconds if it holds the owner ARGV[1]: as the unlock script.
constexpr const char* kExtendScript = R"lua(
local holder = redis.call('GET', KEYS[1])
if not holder then return 1 end
if holder ~= ARGV[1] then return 2 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
)lua";

// The answer of the unlock or extend script.
Result<UnlockResult> ScriptResult(const RedisClient& redis, Result<RedisClient::Reply> r, const char* script) {
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_ERROR) return redis.Error(std::string(ReplyText(**r)));
  if ((*r)->type != REDIS_REPLY_INTEGER || (*r)->integer < 0 || (*r)->integer > 2)
    return redis.Error(std::string("unexpected reply to the ") + script + " script");
  return static_cast<UnlockResult>((*r)->integer);
}

}  // namespace

RedisLock::RedisLock(std::unique_ptr<RedisClient> redis)
    : redis_(std::move(redis)), unlock_(kUnlockScript), extend_(kExtendScript) {}

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
  return ScriptResult(*redis_, redis_->Eval(unlock_, {resource}, {owner}), "unlock");
}

Result<UnlockResult> RedisLock::Extend(std::string_view resource, std::string_view owner,
                                       std::chrono::seconds expire) {
  const std::string seconds = std::to_string(expire.count());
  return ScriptResult(*redis_, redis_->Eval(extend_, {resource}, {owner, seconds}), "extend");
}

}  // namespace wasmlet::components
