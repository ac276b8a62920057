// Configuration in Redis: a key holds the content, or "content||version" as Dapr's Redis
// configuration store writes it (the version is dropped). Connection metadata:
// components/redis/redis_client.h.
#pragma once

#include "components/configuration/configuration_store.h"
#include "components/redis/redis_client.h"

namespace wasmlet::components {

class RedisConfiguration : public ConfigurationStoreComponent {
 public:
  static Result<std::unique_ptr<ConfigurationStoreComponent>> Create(const StoreConfig& config);
  Result<ConfigurationItems> Get(const std::vector<std::string>& keys) override;
  Status Set(std::string_view key, std::string_view content) override;
  Status Delete(std::string_view key) override;

 private:
  explicit RedisConfiguration(std::unique_ptr<RedisClient> redis) : redis_(std::move(redis)) {}
  std::unique_ptr<RedisClient> redis_;
};

}  // namespace wasmlet::components
