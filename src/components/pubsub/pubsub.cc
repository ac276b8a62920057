#include "components/pubsub/pubsub.h"

#include <nlohmann/json.hpp>

#include "components/pubsub/embedded/embedded_pubsub.h"
#include "components/pubsub/memory/memory_pubsub.h"
#include "components/pubsub/redis/redis_pubsub.h"

namespace wasmlet::components {

Result<std::unique_ptr<PubSubComponent>> CreatePubSub(const StoreConfig& config) {
  if (config.type == "in-memory" || config.type == "memory")
    return std::unique_ptr<PubSubComponent>(new MemoryPubSub(*config.clock));
  if (config.type == "embedded" || config.type == "sqlite") return EmbeddedPubSub::Create(config);
  if (config.type == "redis") return RedisPubSub::Create(config);
  return InvalidArgument("config " + config.json_path + ".type: unknown pub/sub type \"" + config.type +
                         "\"; use \"embedded\", \"redis\" or \"in-memory\"");
}

Result<PubSubLimits> ReadPubSubLimits(const StoreConfig& config) {
  PubSubLimits limits;
  auto number = [&](const char* key, uint64_t fallback) -> Result<uint64_t> {
    auto it = config.metadata.find(key);
    if (it == config.metadata.end() || it->second.empty()) return fallback;
    uint64_t value = 0;
    for (char c : it->second) {
      if (c < '0' || c > '9' || value > (uint64_t{1} << 40))
        return InvalidArgument("config " + config.json_path + ".metadata." + key + ": \"" + it->second +
                               "\" is not a whole number");
      value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    if (value == 0)
      return InvalidArgument("config " + config.json_path + ".metadata." + key + ": must be at least 1");
    return value;
  };
  auto timeout = number("processingTimeoutMs", 60000);
  if (!timeout.ok()) return timeout.status();
  auto max_len = number("maxLen", 100000);
  if (!max_len.ok()) return max_len.status();
  limits.processing_timeout = std::chrono::milliseconds(*timeout);
  limits.max_len = *max_len;
  return limits;
}

std::string EncodePubSubMetadata(const PubSubMetadata& metadata) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [name, value] : metadata) object[name] = value;
  // Bytes that are not UTF-8 are replaced rather than thrown about.
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

PubSubMetadata DecodePubSubMetadata(std::string_view text) {
  PubSubMetadata metadata;
  const auto object = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return metadata;
  for (const auto& [name, value] : object.items()) {
    if (value.is_string()) metadata.emplace_back(name, value.get<std::string>());
  }
  return metadata;
}

}  // namespace wasmlet::components
