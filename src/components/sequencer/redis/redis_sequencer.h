// Sequencers in Redis: the key holds the last id given, and INCR gives the next, atomically for
// every caller. Connection metadata: components/redis/redis_client.h.
#pragma once

#include <memory>

#include "components/redis/redis_client.h"
#include "components/sequencer/sequencer.h"

namespace wasmlet::components {

class RedisSequencer : public SequencerComponent {
 public:
  static Result<std::unique_ptr<SequencerComponent>> Create(const StoreConfig& config);
  Result<uint64_t> NextId(std::string_view key) override;

 private:
  explicit RedisSequencer(std::unique_ptr<RedisClient> redis) : redis_(std::move(redis)) {}
  std::unique_ptr<RedisClient> redis_;
};

}  // namespace wasmlet::components
