#include "components/configuration/redis/redis_configuration.h"

#include <hiredis/hiredis.h>

namespace wasmlet::components {

Result<std::unique_ptr<ConfigurationStoreComponent>> RedisConfiguration::Create(const StoreConfig& config) {
  auto redis = RedisClient::Create(config, "configuration store '" + config.name + "'");
  if (!redis.ok()) return redis.status();
  return std::unique_ptr<ConfigurationStoreComponent>(new RedisConfiguration(std::move(*redis)));
}

Result<ConfigurationItems> RedisConfiguration::Get(const std::vector<std::string>& keys) {
  ConfigurationItems items;
  if (keys.empty()) return items;
  std::vector<std::string_view> argv = {"MGET"};
  for (const std::string& key : keys) argv.push_back(key);
  auto r = redis_->Command(argv);
  if (!r.ok()) return r.status();
  const redisReply& reply = **r;
  if (reply.type == REDIS_REPLY_ERROR) return redis_->Error(std::string(ReplyText(reply)));
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != keys.size())
    return redis_->Error("unexpected reply to MGET");
  for (size_t i = 0; i < keys.size(); ++i) {
    const redisReply& value = *reply.element[i];
    if (value.type != REDIS_REPLY_STRING) continue;  // absent, or not a string
    std::string content(value.str, value.len);
    if (const size_t bar = content.rfind("||"); bar != std::string::npos) content.resize(bar);
    items.emplace_back(keys[i], std::move(content));
  }
  return items;
}

Status RedisConfiguration::Set(std::string_view key, std::string_view content) {
  auto r = redis_->Command({"SET", key, content});
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_ERROR) return redis_->Error(std::string(ReplyText(**r)));
  return Status::Ok();
}

Status RedisConfiguration::Delete(std::string_view key) {
  auto r = redis_->Command({"DEL", key});
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_ERROR) return redis_->Error(std::string(ReplyText(**r)));
  return Status::Ok();
}

}  // namespace wasmlet::components
