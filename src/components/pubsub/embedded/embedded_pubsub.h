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

#include "common/mutex.h"
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
  EmbeddedPubSub(std::string store, std::unique_ptr<SqliteFile> file, PubSubLimits limits, Clock& clock)
      : store_(std::move(store)), file_(std::move(file)), limits_(limits), clock_(clock) {}
  Result<std::vector<PubSubMessage>> TakeSome(std::string_view topic, std::string_view group, size_t max);
  Status Trim(std::string_view topic);

  std::string store_;
  std::unique_ptr<SqliteFile> file_;
  PubSubLimits limits_;
  Clock& clock_;
  Mutex wake_mutex_;
  CondVar published_;
  uint64_t publications_ GUARDED_BY(wake_mutex_) = 0;
  uint64_t acks_ GUARDED_BY(wake_mutex_) = 0;  // every 256th trims
};

}  // namespace wasmlet::components
