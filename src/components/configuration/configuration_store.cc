#include "components/configuration/configuration_store.h"

#include "components/configuration/embedded/embedded_configuration.h"
#include "components/configuration/memory/memory_configuration.h"
#include "components/configuration/redis/redis_configuration.h"

namespace wasmlet::components {

Result<std::unique_ptr<ConfigurationStoreComponent>> CreateConfigurationStore(const StoreConfig& config) {
  if (config.type == "in-memory" || config.type == "memory")
    return std::unique_ptr<ConfigurationStoreComponent>(new MemoryConfiguration());
  if (config.type == "embedded" || config.type == "sqlite") return EmbeddedConfiguration::Create(config);
  if (config.type == "redis") return RedisConfiguration::Create(config);
  return InvalidArgument("config " + config.json_path + ".type: unknown configuration store type \"" +
                         config.type + "\"; use \"embedded\", \"redis\" or \"in-memory\"");
}

}  // namespace wasmlet::components
