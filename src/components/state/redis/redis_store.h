// A state store in Redis, read as Layotto reads it: a plain string (SET book1 100), or the
// hash Layotto/Dapr write (HSET book1 data 100 version 1), whose field "data" is the value.
// metadata: redisHost ("host:port", default "localhost:6379"), redisPassword, redisDB,
// timeoutMs (connect and command timeout, default 1000).
//
// Connections are pooled and opened on demand: when Redis is down, calls fail fast with an
// error naming the address, and the next call after Redis is back reconnects.
#pragma once

#include <chrono>
#include <mutex>
#include <vector>

#include "components/state/state_store.h"

struct redisContext;

namespace wasmlet::components {

class RedisStore : public StateStoreComponent {
 public:
  static Result<std::unique_ptr<StateStoreComponent>> Create(const StoreConfig& config);
  ~RedisStore() override;
  Result<std::string> Get(std::string_view key) override;
  Status Set(std::string_view key, std::string_view value) override;

 private:
  struct Connection;
  RedisStore() = default;
  Result<redisContext*> Acquire();
  void Release(redisContext* context, bool healthy);
  Status Error(const std::string& what) const;

  std::string name_;
  std::string host_;
  int port_ = 6379;
  std::string password_;
  int db_ = 0;
  std::chrono::milliseconds timeout_{1000};
  std::mutex mutex_;
  std::vector<redisContext*> idle_;
};

}  // namespace wasmlet::components
