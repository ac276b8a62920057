// A state store in Redis, in the layout Layotto's and Dapr's Redis stores use: each item is a
// hash {data: value, version: N} whose version is its ETag. A plain string (SET book1 100, as
// people seed a demo) reads as an item at ETag "0", and the first write through the store turns
// it into the hash form. Writes run as one Lua script (EVALSHA), so a transaction's conditions
// are all checked before any of its writes, with nothing else in between.
// metadata: redisHost ("host:port", default "localhost:6379"), redisPassword, redisDB,
// timeoutMs (connect and command timeout, default 1000).
//
// Connections are pooled and opened on demand: when Redis is down, calls fail fast with an
// error naming the address, and the next call after Redis is back reconnects.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "components/state/state_store.h"

struct redisContext;
struct redisReply;

namespace wasmlet::components {

class RedisStore : public StateStoreComponent {
 public:
  static Result<std::unique_ptr<StateStoreComponent>> Create(const StoreConfig& config);
  ~RedisStore() override;
  Result<std::optional<StateItem>> GetItem(std::string_view key) override;
  // One GET first: proxy_get_state most often reads what a demo seeded with SET.
  Result<std::string> Get(std::string_view key) override;
  Status Apply(const std::vector<StateOperation>& operations) override;

 private:
  struct Connection;
  RedisStore() = default;
  Result<redisContext*> Acquire();
  void Release(redisContext* context, bool healthy);
  Status Error(const std::string& what, StatusCode code = StatusCode::kInternal) const;
  // Runs `argv` on a pooled connection; the reply, or Unavailable when Redis cannot be reached
  // or the connection broke. `what` names the command for messages.
  Result<std::shared_ptr<redisReply>> Command(const std::vector<std::string_view>& argv, const char* what);

  std::string name_;
  std::string host_;
  int port_ = 6379;
  std::string password_;
  int db_ = 0;
  std::chrono::milliseconds timeout_{1000};
  // The digest of the write script once Redis has it (SCRIPT LOAD); loaded again on NOSCRIPT.
  Result<std::string> ScriptSha(bool reload);

  std::mutex mutex_;  // guards idle_ and script_sha_
  std::vector<redisContext*> idle_;
  std::string script_sha_;
};

}  // namespace wasmlet::components
