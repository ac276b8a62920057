// Pub/sub in the process (tests): at most once. A message handed out is gone for its group,
// handled or not; a restart loses everything.
#pragma once

#include <deque>
#include <map>

#include "common/mutex.h"
#include "components/pubsub/pubsub.h"

namespace wasmlet::components {

class MemoryPubSub : public PubSubComponent {
 public:
  explicit MemoryPubSub(Clock& clock) : clock_(clock) {}
  Result<std::string> Publish(std::string_view topic, std::string_view data,
                              const PubSubMetadata& metadata) override;
  Result<std::vector<PubSubMessage>> Fetch(std::string_view topic, std::string_view group, size_t max,
                                           std::chrono::milliseconds wait) override;
  Status Ack(std::string_view, std::string_view, std::string_view) override { return Status::Ok(); }
  Status Retry(std::string_view, std::string_view, std::string_view, std::chrono::milliseconds) override {
    return Status::Ok();  // at most once: dropped
  }

 private:
  struct Topic {
    uint64_t first = 1;  // the sequence number of messages.front()
    std::deque<PubSubMessage> messages;
    std::map<std::string, uint64_t, std::less<>> next;  // per group: the next sequence number
  };
  static constexpr size_t kMaxKept = 100000;
  Clock& clock_;  // Fetch's wait
  Mutex mutex_;
  CondVar published_;
  std::map<std::string, Topic, std::less<>> topics_ GUARDED_BY(mutex_);
};

}  // namespace wasmlet::components
