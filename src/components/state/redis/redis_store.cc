#include "components/state/redis/redis_store.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "common/address.h"
#include "common/text.h"

namespace wasmlet::components {
namespace {

constexpr size_t kMaxIdleConnections = 16;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval ToTimeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

std::string_view Text(const redisReply& r) { return {r.str, r.len}; }

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

Result<std::unique_ptr<StateStoreComponent>> RedisStore::Create(const StoreConfig& config) {
  std::unique_ptr<RedisStore> store(new RedisStore());
  store->name_ = config.name;
  auto get = [&](const char* key, const char* fallback) {
    auto it = config.metadata.find(key);
    return it == config.metadata.end() || it->second.empty() ? std::string(fallback) : it->second;
  };
  const std::string host = get("redisHost", "localhost:6379");
  if (host.find(':') == std::string::npos) {
    store->host_ = host;  // the port stays Redis's default
  } else {
    auto split = SplitHostPort(host);
    if (!split.ok() || split->first.empty())
      return InvalidArgument("config " + config.json_path + ".metadata.redisHost: \"" + host +
                             "\" is not host:port");
    store->host_ = split->first;
    store->port_ = split->second;
  }
  store->password_ = get("redisPassword", "");
  try {
    store->db_ = std::stoi(get("redisDB", "0"));
    store->timeout_ = std::chrono::milliseconds(std::stoi(get("timeoutMs", "1000")));
  } catch (...) {
    return InvalidArgument("config " + config.json_path + ".metadata: redisDB and timeoutMs must be numbers");
  }
  // No connection now: a store that is down at start is reported per call, and the server
  // starts anyway (its other functions do not need Redis).
  return std::unique_ptr<StateStoreComponent>(std::move(store));
}

RedisStore::~RedisStore() {
  for (redisContext* c : idle_) redisFree(c);
}

Status RedisStore::Error(const std::string& what, StatusCode code) const {
  return Status(
      code, "state store '" + name_ + "' (redis at " + host_ + ":" + std::to_string(port_) + "): " + what);
}

Result<redisContext*> RedisStore::Acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return c;
    }
  }
  const timeval tv = ToTimeval(timeout_);
  redisContext* c = redisConnectWithTimeout(host_.c_str(), port_, tv);
  if (c == nullptr) return Error("cannot allocate a connection");
  if (c->err) {
    Status s = Error(std::string("cannot connect: ") + c->errstr, StatusCode::kUnavailable);
    redisFree(c);
    return s;
  }
  redisSetTimeout(c, tv);
  auto setup = [&](const char* format, auto... args) -> Status {
    Reply r(static_cast<redisReply*>(redisCommand(c, format, args...)));
    if (!r) return Error(std::string("connection failed: ") + c->errstr, StatusCode::kUnavailable);
    if (r->type == REDIS_REPLY_ERROR) return Error(std::string(Text(*r)));
    return Status::Ok();
  };
  Status status;
  if (!password_.empty()) status = setup("AUTH %b", password_.data(), password_.size());
  if (status.ok() && db_ != 0) status = setup("SELECT %d", db_);
  if (!status.ok()) {
    redisFree(c);
    return status;
  }
  return c;
}

void RedisStore::Release(redisContext* context, bool healthy) {
  if (healthy) {
    std::lock_guard lock(mutex_);
    if (idle_.size() < kMaxIdleConnections) {
      idle_.push_back(context);
      return;
    }
  }
  redisFree(context);
}

Result<std::shared_ptr<redisReply>> RedisStore::Command(const std::vector<std::string_view>& argv,
                                                        const char* what) {
  auto c = Acquire();
  if (!c.ok()) return c.status();
  std::vector<const char*> parts;
  std::vector<size_t> sizes;
  parts.reserve(argv.size());
  sizes.reserve(argv.size());
  for (std::string_view arg : argv) {
    parts.push_back(arg.data());
    sizes.push_back(arg.size());
  }
  auto* raw = static_cast<redisReply*>(
      redisCommandArgv(*c, static_cast<int>(argv.size()), parts.data(), sizes.data()));
  if (!raw) {
    Status s = Error(std::string(what) + " failed: " + (*c)->errstr, StatusCode::kUnavailable);
    Release(*c, false);
    return s;
  }
  Release(*c, true);
  return std::shared_ptr<redisReply>(raw, freeReplyObject);
}

Result<std::string> RedisStore::ScriptSha(bool reload) {
  {
    std::lock_guard lock(mutex_);
    if (!reload && !script_sha_.empty()) return script_sha_;
  }
  auto r = Command({"SCRIPT", "LOAD", kApplyScript}, "SCRIPT LOAD");
  if (!r.ok()) return r.status();
  if ((*r)->type != REDIS_REPLY_STRING)
    return Error("cannot load the write script: " + ((*r)->type == REDIS_REPLY_ERROR
                                                         ? std::string(Text(**r))
                                                         : std::string("unexpected reply")));
  std::lock_guard lock(mutex_);
  script_sha_ = std::string(Text(**r));
  return script_sha_;
}

Result<std::optional<StateItem>> RedisStore::GetItem(std::string_view key) {
  auto r = Command({"HMGET", key, "data", "version"}, "HMGET");
  if (!r.ok()) return r.status();
  const redisReply* reply = r->get();
  if (reply->type == REDIS_REPLY_ERROR && Text(*reply).starts_with("WRONGTYPE")) {
    // A plain string, as a demo seeds it: an item at ETag "0".
    r = Command({"GET", key}, "GET");
    if (!r.ok()) return r.status();
    reply = r->get();
    if (reply->type == REDIS_REPLY_STRING)
      return std::optional<StateItem>(StateItem{std::string(Text(*reply)), "0"});
    if (reply->type == REDIS_REPLY_NIL) return std::optional<StateItem>();  // gone in between
  }
  if (reply->type == REDIS_REPLY_ERROR) return Error(std::string(Text(*reply)));
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
    return Error("unexpected reply type " + std::to_string(reply->type));
  const redisReply* data = reply->element[0];
  const redisReply* version = reply->element[1];
  if (data->type != REDIS_REPLY_STRING) return std::optional<StateItem>();  // no such key, or no data
  std::string etag = version->type == REDIS_REPLY_STRING ? std::string(Text(*version)) : "0";
  return std::optional<StateItem>(StateItem{std::string(Text(*data)), std::move(etag)});
}

Result<std::string> RedisStore::Get(std::string_view key) {
  auto r = Command({"GET", key}, "GET");
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_ERROR && Text(**r).starts_with("WRONGTYPE")) {
    // Not a string: the hash form, whose "data" field holds the value.
    r = Command({"HGET", key, "data"}, "HGET");
    if (!r.ok()) return r.status();
  }
  const redisReply& reply = **r;
  switch (reply.type) {
    case REDIS_REPLY_STRING: return std::string(Text(reply));
    case REDIS_REPLY_NIL: return std::string();
    case REDIS_REPLY_ERROR: return Error(std::string(Text(reply)));
    default: return Error("unexpected reply type " + std::to_string(reply.type));
  }
}

Status RedisStore::Apply(const std::vector<StateOperation>& operations) {
  if (operations.empty()) return Status::Ok();
  std::vector<std::string> numbers;  // the TTLs, as text, kept alive for the call
  numbers.reserve(operations.size());
  for (const StateOperation& op : operations) numbers.push_back(std::to_string(op.ttl.count()));
  const std::string count = std::to_string(operations.size());
  std::vector<std::string_view> argv = {"EVALSHA", "", count};
  for (const StateOperation& op : operations) argv.push_back(op.key);
  for (size_t i = 0; i < operations.size(); ++i) {
    const StateOperation& op = operations[i];
    const bool save = op.kind == StateOperation::Kind::kSave;
    argv.push_back(save ? "s" : "d");
    argv.push_back(save ? std::string_view(op.value) : std::string_view());
    argv.push_back(op.etag ? std::string_view(*op.etag) : std::string_view());
    argv.push_back(op.concurrency == Concurrency::kFirstWrite ? "1" : "0");
    argv.push_back(numbers[i]);
  }
  Result<std::shared_ptr<redisReply>> r = Internal("not run");
  for (int attempt = 0; attempt < 2; ++attempt) {
    // The script is loaded once and then run by its digest; Redis forgets it when restarted
    // or flushed (NOSCRIPT), and then it is loaded again.
    auto sha = ScriptSha(/*reload=*/attempt > 0);
    if (!sha.ok()) return sha.status();
    argv[1] = *sha;
    r = Command(argv, "EVALSHA");
    if (!r.ok()) return r.status();
    if ((*r)->type != REDIS_REPLY_ERROR || !Text(**r).starts_with("NOSCRIPT")) break;
  }
  const redisReply* reply = r->get();
  if (reply->type == REDIS_REPLY_ERROR) return Error(std::string(Text(*reply)));
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER)
    return Error("unexpected reply to the write script");
  const long long failed = reply->element[0]->integer;
  if (failed == 0) return Status::Ok();
  if (failed < 1 || static_cast<size_t>(failed) > operations.size() || reply->elements < 2 ||
      reply->element[1]->type != REDIS_REPLY_STRING)
    return Error("unexpected reply to the write script");
  const StateOperation& op = operations[static_cast<size_t>(failed - 1)];
  const std::string current(Text(*reply->element[1]));
  if (current == "wrongtype") {
    return FailedPrecondition(
        "state store '" + name_ + "': key '" + Printable(op.key, 128) +
        "' holds a Redis value that is neither a string nor a hash; it is not a state item");
  }
  Status refused = CheckWriteCondition(name_, op, current.empty() ? std::nullopt : std::optional(current));
  if (refused.ok()) return Error("the write script refused a write whose condition holds");
  return refused;
}

}  // namespace wasmlet::components
