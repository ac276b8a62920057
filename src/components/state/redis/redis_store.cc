#include "components/state/redis/redis_store.h"

#include <hiredis/hiredis.h>

#include "common/text.h"

namespace wasmlet::components {
namespace {

// The writes of one Apply. KEYS are the operations' keys; ARGV holds five values per
// operation: "s" (save) or "d" (delete), the value, the ETag ("" for none), "1" for
// first-write, the TTL in seconds ("0" for none). Every condition is checked first; only when
// all hold are the writes made. Answers {0} when applied, or {i, current} for the first
// operation (1-based) whose condition failed, with its item's ETag ("" when there is none).
// An item that is neither a hash nor a string fails its operation with current = "wrongtype".
constexpr const char* kApplyScript = R"lua(
local function etag(key)
  local t = redis.call('TYPE', key).ok
  if t == 'none' then return nil end
  if t == 'string' then return '0' end
  if t ~= 'hash' then return 'wrongtype' end
  return redis.call('HGET', key, 'version') or '0'
end
for i = 1, #KEYS do
  local b = (i - 1) * 5
  local current = etag(KEYS[i])
  if current == 'wrongtype' then return {i, current} end
  local wanted = ARGV[b + 3]
  if wanted ~= '' then
    if current ~= wanted then return {i, current or ''} end
  elseif ARGV[b + 1] == 's' and ARGV[b + 4] == '1' and current then
    return {i, current}
  end
end
for i = 1, #KEYS do
  local b = (i - 1) * 5
  local key = KEYS[i]
  if ARGV[b + 1] == 'd' then
    redis.call('DEL', key)
  else
    local version = 0
    local t = redis.call('TYPE', key).ok
    if t == 'hash' then
      version = tonumber(redis.call('HGET', key, 'version') or '0') or 0
    elseif t ~= 'none' then
      redis.call('DEL', key)
    end
    redis.call('HSET', key, 'data', ARGV[b + 2], 'version', version + 1)
    local ttl = tonumber(ARGV[b + 5])
    if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
  end
end
return {0}
)lua";

}  // namespace

RedisStore::RedisStore(std::string name, std::unique_ptr<RedisClient> redis)
    : name_(std::move(name)), redis_(std::move(redis)), apply_(kApplyScript) {}

Result<std::unique_ptr<StateStoreComponent>> RedisStore::Create(const StoreConfig& config) {
  auto redis = RedisClient::Create(config, "state store '" + config.name + "'");
  if (!redis.ok()) return redis.status();
  return std::unique_ptr<StateStoreComponent>(new RedisStore(config.name, std::move(*redis)));
}

Result<std::optional<StateItem>> RedisStore::GetItem(std::string_view key) {
  auto r = redis_->Command({"HMGET", key, "data", "version"});
  if (!r.ok()) return r.status();
  const redisReply* reply = r->get();
  if (reply->type == REDIS_REPLY_ERROR && ReplyText(*reply).starts_with("WRONGTYPE")) {
    // A plain string, as a demo seeds it: an item at ETag "0".
    r = redis_->Command({"GET", key});
    if (!r.ok()) return r.status();
    reply = r->get();
    if (reply->type == REDIS_REPLY_STRING)
      return std::optional<StateItem>(StateItem{std::string(ReplyText(*reply)), "0"});
    if (reply->type == REDIS_REPLY_NIL) return std::optional<StateItem>();  // gone in between
  }
  if (reply->type == REDIS_REPLY_ERROR) return redis_->Error(std::string(ReplyText(*reply)));
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
    return redis_->Error("unexpected reply type " + std::to_string(reply->type));
  const redisReply* data = reply->element[0];
  const redisReply* version = reply->element[1];
  if (data->type != REDIS_REPLY_STRING) return std::optional<StateItem>();  // no such key, or no data
  std::string etag = version->type == REDIS_REPLY_STRING ? std::string(ReplyText(*version)) : "0";
  return std::optional<StateItem>(StateItem{std::string(ReplyText(*data)), std::move(etag)});
}

Result<std::string> RedisStore::Get(std::string_view key) {
  auto r = redis_->Command({"GET", key});
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_ERROR && ReplyText(**r).starts_with("WRONGTYPE")) {
    // Not a string: the hash form, whose "data" field holds the value.
    r = redis_->Command({"HGET", key, "data"});
    if (!r.ok()) return r.status();
  }
  const redisReply& reply = **r;
  switch (reply.type) {
    case REDIS_REPLY_STRING: return std::string(ReplyText(reply));
    case REDIS_REPLY_NIL: return std::string();
    case REDIS_REPLY_ERROR: return redis_->Error(std::string(ReplyText(reply)));
    default: return redis_->Error("unexpected reply type " + std::to_string(reply.type));
  }
}

Status RedisStore::Apply(const std::vector<StateOperation>& operations) {
  if (operations.empty()) return Status::Ok();
  std::vector<std::string> ttls;  // as text, kept alive for the call
  ttls.reserve(operations.size());
  for (const StateOperation& op : operations) ttls.push_back(std::to_string(op.ttl.count()));
  std::vector<std::string_view> keys;
  std::vector<std::string_view> args;
  keys.reserve(operations.size());
  args.reserve(operations.size() * 5);
  for (size_t i = 0; i < operations.size(); ++i) {
    const StateOperation& op = operations[i];
    const bool save = op.kind == StateOperation::Kind::kSave;
    keys.push_back(op.key);
    args.push_back(save ? "s" : "d");
    args.push_back(save ? std::string_view(op.value) : std::string_view());
    args.push_back(op.etag ? std::string_view(*op.etag) : std::string_view());
    args.push_back(op.concurrency == Concurrency::kFirstWrite ? "1" : "0");
    args.push_back(ttls[i]);
  }
  auto r = redis_->Eval(apply_, keys, args);
  if (!r.ok()) return r.status();
  const redisReply* reply = r->get();
  if (reply->type == REDIS_REPLY_ERROR) return redis_->Error(std::string(ReplyText(*reply)));
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER)
    return redis_->Error("unexpected reply to the write script");
  const long long failed = reply->element[0]->integer;
  if (failed == 0) return Status::Ok();
  if (failed < 1 || static_cast<size_t>(failed) > operations.size() || reply->elements < 2 ||
      reply->element[1]->type != REDIS_REPLY_STRING)
    return redis_->Error("unexpected reply to the write script");
  const StateOperation& op = operations[static_cast<size_t>(failed - 1)];
  const std::string current(ReplyText(*reply->element[1]));
  if (current == "wrongtype") {
    return FailedPrecondition(
        "state store '" + name_ + "': key '" + Printable(op.key, 128) +
        "' holds a Redis value that is neither a string nor a hash; it is not a state item");
  }
  Status refused = CheckWriteCondition(name_, op, current.empty() ? std::nullopt : std::optional(current));
  if (refused.ok()) return redis_->Error("the write script refused a write whose condition holds");
  return refused;
}

}  // namespace wasmlet::components
