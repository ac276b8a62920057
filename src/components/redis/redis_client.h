// Connections to one Redis for the components that keep their data there (state, locks,
// sequencers). metadata, as Layotto's Redis components read it: redisHost ("host:port", default
// "localhost:6379"), redisPassword, redisDB, and wasmlet's timeoutMs (connect and command
// timeout, default 1000).
//
// Connections are pooled and opened on demand: when Redis is down, calls fail fast with
// Unavailable naming the address, and the next call after Redis is back reconnects.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "components/state/state_store.h"

struct redisContext;
struct redisReply;

namespace wasmlet::components {

class RedisClient {
 public:
  // `who` names the component in messages, e.g. "state store 'orders'".
  static Result<std::unique_ptr<RedisClient>> Create(const StoreConfig& config, std::string who);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  using Reply = std::shared_ptr<redisReply>;
  // Runs `argv` on a pooled connection. Unavailable when Redis cannot be reached or the
  // connection broke; a reply of Redis's own error type is returned as a reply.
  Result<Reply> Command(const std::vector<std::string_view>& argv);

  // A Lua script, run by its digest once Redis has it (SCRIPT LOAD), and loaded again when
  // Redis has forgotten it (restarted or flushed: NOSCRIPT).
  class Script {
   public:
    explicit Script(const char* source) : source_(source) {}

   private:
    friend class RedisClient;
    const char* source_;
    Mutex mutex_;
    std::string sha_ GUARDED_BY(mutex_);
  };
  // EVALSHA of `script` with `keys` and then `args`.
  Result<Reply> Eval(Script& script, const std::vector<std::string_view>& keys,
                     const std::vector<std::string_view>& args);

  // The connect and command timeout (metadata timeoutMs).
  std::chrono::milliseconds timeout() const { return timeout_; }

  // An error naming the component and the address.
  Status Error(const std::string& what, StatusCode code = StatusCode::kInternal) const;

 private:
  RedisClient() = default;
  Result<redisContext*> Acquire() EXCLUDES(mutex_);
  void Release(redisContext* context, bool healthy) EXCLUDES(mutex_);
  Result<std::string> ScriptSha(Script& script, bool reload);

  std::string who_;
  std::string host_;
  int port_ = 6379;
  std::string password_;
  int db_ = 0;
  std::chrono::milliseconds timeout_{1000};
  Mutex mutex_;
  std::vector<redisContext*> idle_ GUARDED_BY(mutex_);
};

// The text of a string, status or error reply.
std::string_view ReplyText(const redisReply& reply);

}  // namespace wasmlet::components
