#include "components/redis/redis_client.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <charconv>

#include "common/address.h"
#include "common/text.h"

namespace wasmlet::components {
namespace {

constexpr size_t kMaxIdleConnections = 16;

timeval ToTimeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

// The whole number at metadata `key` (`fallback` when unset), at least `min`. The whole text
// must be the number: "12abc" is refused, where std::stoi read it as 12.
Result<int> MetadataNumber(const StoreConfig& config, const char* key, int fallback, int min) {
  auto it = config.metadata.find(key);
  if (it == config.metadata.end() || it->second.empty()) return fallback;
  const std::string& text = it->second;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string where =
      "config " + config.json_path + ".metadata." + key + ": \"" + Printable(text, 64) + "\" ";
  const std::string wanted = "give a whole number of at least " + std::to_string(min);
  if (ec == std::errc::result_out_of_range) return InvalidArgument(where + "is out of range; " + wanted);
  if (ec != std::errc() || end != text.data() + text.size())
    return InvalidArgument(where + "is not a whole number; " + wanted + ", in digits only");
  if (value < min) return InvalidArgument(where + "is too small; " + wanted);
  return value;
}

}  // namespace

std::string_view ReplyText(const redisReply& reply) { return {reply.str, reply.len}; }

Result<std::unique_ptr<RedisClient>> RedisClient::Create(const StoreConfig& config, std::string who) {
  std::unique_ptr<RedisClient> client(new RedisClient());
  client->who_ = std::move(who);
  auto get = [&](const char* key, const char* fallback) {
    auto it = config.metadata.find(key);
    return it == config.metadata.end() || it->second.empty() ? std::string(fallback) : it->second;
  };
  const std::string host = get("redisHost", "localhost:6379");
  if (host.find(':') == std::string::npos) {
    client->host_ = host;  // the port stays Redis's default
  } else {
    auto split = SplitHostPort(host);
    if (!split.ok() || split->first.empty())
      return InvalidArgument("config " + config.json_path + ".metadata.redisHost: \"" + host +
                             "\" is not host:port");
    client->host_ = split->first;
    client->port_ = split->second;
  }
  client->password_ = get("redisPassword", "");
  auto db = MetadataNumber(config, "redisDB", 0, 0);
  if (!db.ok()) return db.status();
  client->db_ = *db;
  auto timeout = MetadataNumber(config, "timeoutMs", 1000, 1);
  if (!timeout.ok()) return timeout.status();
  client->timeout_ = std::chrono::milliseconds(*timeout);
  // No connection now: a Redis that is down at start is reported per call, and the server
  // starts anyway (its other functions do not need Redis).
  return client;
}

RedisClient::~RedisClient() {
  for (redisContext* c : idle_) redisFree(c);
}

Status RedisClient::Error(const std::string& what, StatusCode code) const {
  return Status(code, who_ + " (redis at " + host_ + ":" + std::to_string(port_) + "): " + what);
}

Result<redisContext*> RedisClient::Acquire() {
  {
    MutexLock lock(mutex_);
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
  auto setup = [&](std::vector<std::string_view> argv) -> Status {
    std::vector<const char*> parts;
    std::vector<size_t> sizes;
    for (std::string_view arg : argv) {
      parts.push_back(arg.data());
      sizes.push_back(arg.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), parts.data(), sizes.data()));
    if (!r) return Error(std::string("connection failed: ") + c->errstr, StatusCode::kUnavailable);
    Status status = r->type == REDIS_REPLY_ERROR ? Error(std::string(ReplyText(*r))) : Status::Ok();
    freeReplyObject(r);
    return status;
  };
  Status status;
  if (!password_.empty()) status = setup({"AUTH", password_});
  const std::string db = std::to_string(db_);
  if (status.ok() && db_ != 0) status = setup({"SELECT", db});
  if (!status.ok()) {
    redisFree(c);
    return status;
  }
  return c;
}

void RedisClient::Release(redisContext* context, bool healthy) {
  if (healthy) {
    MutexLock lock(mutex_);
    if (idle_.size() < kMaxIdleConnections) {
      idle_.push_back(context);
      return;
    }
  }
  redisFree(context);
}

Result<RedisClient::Reply> RedisClient::Command(const std::vector<std::string_view>& argv) {
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
    Status s = Error(std::string(argv.empty() ? "" : std::string(argv[0])) + " failed: " + (*c)->errstr,
                     StatusCode::kUnavailable);
    Release(*c, false);
    return s;
  }
  Release(*c, true);
  return Reply(raw, freeReplyObject);
}

Result<std::string> RedisClient::ScriptSha(Script& script, bool reload) {
  {
    MutexLock lock(script.mutex_);
    if (!reload && !script.sha_.empty()) return script.sha_;
  }
  auto r = Command({"SCRIPT", "LOAD", script.source_});
  if (!r.ok()) return r.status();
  if ((*r)->type != REDIS_REPLY_STRING)
    return Error("cannot load a script: " + ((*r)->type == REDIS_REPLY_ERROR
                                                 ? std::string(ReplyText(**r))
                                                 : std::string("unexpected reply")));
  MutexLock lock(script.mutex_);
  script.sha_ = std::string(ReplyText(**r));
  return script.sha_;
}

Result<RedisClient::Reply> RedisClient::Eval(Script& script, const std::vector<std::string_view>& keys,
                                             const std::vector<std::string_view>& args) {
  const std::string count = std::to_string(keys.size());
  std::vector<std::string_view> argv = {"EVALSHA", "", count};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  Result<Reply> r = Internal("not run");
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto sha = ScriptSha(script, /*reload=*/attempt > 0);
    if (!sha.ok()) return sha.status();
    argv[1] = *sha;
    r = Command(argv);
    if (!r.ok()) return r.status();
    if ((*r)->type != REDIS_REPLY_ERROR || !ReplyText(**r).starts_with("NOSCRIPT")) break;
  }
  return r;
}

}  // namespace wasmlet::components
