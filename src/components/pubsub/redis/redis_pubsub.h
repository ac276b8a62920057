// Pub/sub on Redis Streams: a topic is a stream (XADD ... MAXLEN ~ maxLen), a subscriber a
// consumer group of it (created at the stream's start, so that what was published before the
// first subscription is delivered), read by the consumer "wasmlet". A message handed out stays
// in the group's pending list until XACK; one whose retry time has come, or that has been
// pending longer than processingTimeoutMs (its handler or the process died), is claimed again
// with XCLAIM, which counts its deliveries. This is the layout of Dapr's Redis pub/sub, whose
// messages carry the field "data"; wasmlet adds "metadata" (JSON).
#pragma once

#include <map>
#include <set>

#include "common/mutex.h"
#include "components/pubsub/pubsub.h"
#include "components/redis/redis_client.h"

namespace wasmlet::components {

class RedisPubSub : public PubSubComponent {
 public:
  static Result<std::unique_ptr<PubSubComponent>> Create(const StoreConfig& config);
  Result<std::string> Publish(std::string_view topic, std::string_view data,
                              const PubSubMetadata& metadata) override EXCLUDES(mutex_);
  Result<std::vector<PubSubMessage>> Fetch(std::string_view topic, std::string_view group, size_t max,
                                           std::chrono::milliseconds wait) override EXCLUDES(mutex_);
  Status Ack(std::string_view topic, std::string_view group, std::string_view id) override EXCLUDES(mutex_);
  Status Retry(std::string_view topic, std::string_view group, std::string_view id,
               std::chrono::milliseconds after) override EXCLUDES(mutex_);

 private:
  RedisPubSub(std::unique_ptr<RedisClient> redis, PubSubLimits limits, std::chrono::milliseconds block,
              Clock& clock)
      : redis_(std::move(redis)), limits_(limits), block_(block), clock_(clock) {}
  Status EnsureGroup(std::string_view topic, std::string_view group) EXCLUDES(mutex_);
  // Pending messages of the group that are due again, claimed.
  Result<std::vector<PubSubMessage>> ClaimDue(std::string_view topic, std::string_view group, size_t max)
      EXCLUDES(mutex_);
  static std::string Key(std::string_view topic, std::string_view group, std::string_view id);

  std::unique_ptr<RedisClient> redis_;
  PubSubLimits limits_;
  std::chrono::milliseconds block_;  // XREADGROUP's BLOCK: under the connection's timeout
  // Retry times. How long a message has been pending (processingTimeoutMs) and XREADGROUP's
  // BLOCK are on the Redis server's clock.
  Clock& clock_;
  Mutex mutex_;
  std::set<std::string, std::less<>> groups_ GUARDED_BY(mutex_);
  // When a message Retry named may be handed out again (topic, group, id); a message not here
  // waits processingTimeoutMs.
  std::map<std::string, Clock::TimePoint, std::less<>> retry_at_ GUARDED_BY(mutex_);
};

}  // namespace wasmlet::components
