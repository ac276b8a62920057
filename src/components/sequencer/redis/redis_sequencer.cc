#include "components/sequencer/redis/redis_sequencer.h"

#include <hiredis/hiredis.h>

namespace wasmlet::components {

Result<std::unique_ptr<SequencerComponent>> RedisSequencer::Create(const StoreConfig& config) {
  auto redis = RedisClient::Create(config, "sequencer '" + config.name + "'");
  if (!redis.ok()) return redis.status();
  return std::unique_ptr<SequencerComponent>(new RedisSequencer(std::move(*redis)));
}

Result<uint64_t> RedisSequencer::NextId(std::string_view key) {
  auto r = redis_->Command({"INCR", key});
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_ERROR) return redis_->Error(std::string(ReplyText(**r)));
  if ((*r)->type != REDIS_REPLY_INTEGER || (*r)->integer < 1)
    return redis_->Error("unexpected reply to INCR");
  return static_cast<uint64_t>((*r)->integer);
}

}  // namespace wasmlet::components
