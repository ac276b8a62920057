#include "components/sequencer/sequencer.h"

#include "components/sequencer/embedded/embedded_sequencer.h"
#include "components/sequencer/memory/memory_sequencer.h"
#include "components/sequencer/redis/redis_sequencer.h"

namespace wasmlet::components {

Result<std::unique_ptr<SequencerComponent>> CreateSequencer(const StoreConfig& config) {
  if (config.type == "in-memory" || config.type == "memory")
    return std::unique_ptr<SequencerComponent>(new MemorySequencer());
  if (config.type == "embedded" || config.type == "sqlite") return EmbeddedSequencer::Create(config);
  if (config.type == "redis") return RedisSequencer::Create(config);
  return InvalidArgument("config " + config.json_path + ".type: unknown sequencer type \"" + config.type +
                         "\"; use \"embedded\", \"redis\" or \"in-memory\"");
}

}  // namespace wasmlet::components
