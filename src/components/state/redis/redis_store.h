// A state store in Redis, in the layout Layotto's and Dapr's Redis stores use: each item is a
// hash {data: value, version: N} whose version is its ETag. A plain string (SET book1 100, as
// people seed a demo) reads as an item at ETag "0", and the first write through the store turns
// it into the hash form. Writes run as one Lua script, so a transaction's conditions are all
// checked before any of its writes, with nothing else in between. Connection metadata:
// components/redis/redis_client.h.
#pragma once

#include <memory>

#include "components/redis/redis_client.h"
#include "components/state/state_store.h"

namespace wasmlet::components {

class RedisStore : public StateStoreComponent {
 public:
  static Result<std::unique_ptr<StateStoreComponent>> Create(const StoreConfig& config);
  Result<std::optional<StateItem>> GetItem(std::string_view key) override;
  // One GET first: proxy_get_state most often reads what a demo seeded with SET.
  Result<std::string> Get(std::string_view key) override;
  Status Apply(const std::vector<StateOperation>& operations) override;

 private:
  RedisStore(std::string name, std::unique_ptr<RedisClient> redis);

  std::string name_;
  std::unique_ptr<RedisClient> redis_;
  RedisClient::Script apply_;  // the write script
};

}  // namespace wasmlet::components
