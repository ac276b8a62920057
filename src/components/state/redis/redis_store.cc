#include "components/state/redis/redis_store.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "common/address.h"

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

Status RedisStore::Error(const std::string& what) const {
  return Internal("state store '" + name_ + "' (redis at " + host_ + ":" + std::to_string(port_) +
                  "): " + what);
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
    Status s = Error(std::string("cannot connect: ") + c->errstr);
    redisFree(c);
    return s;
  }
  redisSetTimeout(c, tv);
  auto setup = [&](const char* format, auto... args) -> Status {
    Reply r(static_cast<redisReply*>(redisCommand(c, format, args...)));
    if (!r) return Error(std::string("connection failed: ") + c->errstr);
    if (r->type == REDIS_REPLY_ERROR) return Error(std::string(r->str, r->len));
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

Result<std::string> RedisStore::Get(std::string_view key) {
  auto c = Acquire();
  if (!c.ok()) return c.status();
  Reply r(static_cast<redisReply*>(redisCommand(*c, "GET %b", key.data(), key.size())));
  if (!r) {
    Status s = Error(std::string("GET failed: ") + (*c)->errstr);
    Release(*c, false);
    return s;
  }
  if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("WRONGTYPE")) {
    // Not a string: the hash form, whose "data" field holds the value.
    r.reset(static_cast<redisReply*>(redisCommand(*c, "HGET %b data", key.data(), key.size())));
    if (!r) {
      Status s = Error(std::string("HGET failed: ") + (*c)->errstr);
      Release(*c, false);
      return s;
    }
  }
  Release(*c, true);
  switch (r->type) {
    case REDIS_REPLY_STRING: return std::string(r->str, r->len);
    case REDIS_REPLY_NIL: return std::string();
    case REDIS_REPLY_ERROR: return Error(std::string(r->str, r->len));
    default: return Error("unexpected reply type " + std::to_string(r->type));
  }
}

Status RedisStore::Set(std::string_view key, std::string_view value) {
  auto c = Acquire();
  if (!c.ok()) return c.status();
  Reply r(static_cast<redisReply*>(
      redisCommand(*c, "SET %b %b", key.data(), key.size(), value.data(), value.size())));
  if (!r) {
    Status s = Error(std::string("SET failed: ") + (*c)->errstr);
    Release(*c, false);
    return s;
  }
  Release(*c, true);
  if (r->type == REDIS_REPLY_ERROR) return Error(std::string(r->str, r->len));
  return Status::Ok();
}

}  // namespace wasmlet::components
