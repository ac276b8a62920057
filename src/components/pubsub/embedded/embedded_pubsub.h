// Pub/sub in the embedded store's SQLite file: at least once, across restarts. Tables:
//   pubsub_messages (store, topic, seq, data, metadata)   what was published; seq orders it
//   pubsub_groups   (store, topic, grp, cursor)            per group, the last seq handed out
//   pubsub_pending  (store, topic, grp, seq, deliveries, due)
//                                                          handed out, not acknowledged: due is
//                                                          when it is handed out again (unix ms)
// A group that reads a topic for the first time starts at its oldest message kept. Messages
// every group has acknowledged, and those past maxLen, are deleted as acknowledgements come.
// Publishers in this process wake waiting subscribers at once; others are seen within 50 ms.
#pragma once

#include <condition_variable>
#include <mutex>

#include "components/embedded/sqlite_file.h"
#include "components/pubsub/pubsub.h"

namespace wasmlet::components {

class EmbeddedPubSub : public PubSubComponent {
 public:
  static Result<std::unique_ptr<PubSubComponent>> Create(const StoreConfig& config);
  Result<std::string> Publish(std::string_view topic, std::string_view data,
                              const PubSubMetadata& metadata) override;
  Result<std::vector<PubSubMessage>> Fetch(std::string_view topic, std::string_view group, size_t max,
                                           std::chrono::milliseconds wait) override;
  Status Ack(std::string_view topic, std::string_view group, std::string_view id) override;
  Status Retry(std::string_view topic, std::string_view group, std::string_view id,
               std::chrono::milliseconds after) override;

 private:
  EmbeddedPubSub(std::string store, std::unique_ptr<SqliteFile> file, PubSubLimits limits)
      : store_(std::move(store)), file_(std::move(file)), limits_(limits) {}
  Result<std::vector<PubSubMessage>> TakeSome(std::string_view topic, std::string_view group, size_t max);
  Status Trim(std::string_view topic);

  std::string store_;
  std::unique_ptr<SqliteFile> file_;
  PubSubLimits limits_;
  std::mutex wake_mutex_;
  std::condition_variable published_;
  uint64_t publications_ = 0;  // guarded by wake_mutex_
  uint64_t acks_ = 0;          // guarded by wake_mutex_: every 256th trims
};

}  // namespace wasmlet::components
