// Pub/sub (Layotto's and Dapr's pub/sub API): functions publish messages to topics, and
// subscriptions hand each message of a topic to every consumer group that reads it. A group is
// one subscriber (a function); within a group a message is handled once, and a message that was
// not acknowledged is handed out again.
//
// Delivery: at least once for "redis" (Redis Streams with consumer groups) and "embedded"
// (tables in the SQLite file): a message handed out and not acknowledged comes back, after a
// restart too. At most once for "in-memory". Each type lives in its own folder and is created
// by its config "type" name (CreatePubSub). Every call is thread-safe.
//
// Metadata, besides the connection's (components/redis/redis_client.h, or "path"):
//   processingTimeoutMs  a message handed out and neither acknowledged nor retried within this
//                        long is handed out again (its handler died, or the process did);
//                        default 60000.
//   maxLen               messages kept per topic, the oldest dropped first; default 100000.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "components/state/state_store.h"

namespace wasmlet::components {

using PubSubMetadata = std::vector<std::pair<std::string, std::string>>;

struct PubSubMessage {
  std::string id;  // the store's own id of the message
  std::string data;
  PubSubMetadata metadata;
  uint32_t deliveries = 1;  // times handed out to this group, this one included
};

class PubSubComponent {
 public:
  virtual ~PubSubComponent() = default;
  // Appends a message to `topic`: its id. Errors: Unavailable when the store cannot be reached,
  // Internal otherwise.
  virtual Result<std::string> Publish(std::string_view topic, std::string_view data,
                                      const PubSubMetadata& metadata) = 0;
  // Up to `max` messages of `topic` for `group`: the ones whose retry time has come first, then
  // new ones. Waits up to `wait` when there are none (then returns none). A group that reads a
  // topic for the first time starts at its oldest message kept.
  virtual Result<std::vector<PubSubMessage>> Fetch(std::string_view topic, std::string_view group, size_t max,
                                                   std::chrono::milliseconds wait) = 0;
  // `group` handled the message: it is never handed out to it again.
  virtual Status Ack(std::string_view topic, std::string_view group, std::string_view id) = 0;
  // `group` did not handle it: hand it out again after `after` (at-most-once stores drop it).
  virtual Status Retry(std::string_view topic, std::string_view group, std::string_view id,
                       std::chrono::milliseconds after) = 0;
};

// "redis", "embedded" (SQLite) or "in-memory".
Result<std::unique_ptr<PubSubComponent>> CreatePubSub(const StoreConfig& config);

// The metadata both durable stores read: processingTimeoutMs and maxLen, checked.
struct PubSubLimits {
  std::chrono::milliseconds processing_timeout{60000};
  uint64_t max_len = 100000;
};
Result<PubSubLimits> ReadPubSubLimits(const StoreConfig& config);

// Metadata as JSON text ({"name": "value", ...}) and back, for stores that keep it as one field.
std::string EncodePubSubMetadata(const PubSubMetadata& metadata);
PubSubMetadata DecodePubSubMetadata(std::string_view text);

}  // namespace wasmlet::components
