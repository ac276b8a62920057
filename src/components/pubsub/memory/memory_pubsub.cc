#include "components/pubsub/memory/memory_pubsub.h"

namespace wasmlet::components {

Result<std::string> MemoryPubSub::Publish(std::string_view topic, std::string_view data,
                                          const PubSubMetadata& metadata) {
  MutexLock lock(mutex_);
  Topic& t = topics_[std::string(topic)];
  const uint64_t seq = t.first + t.messages.size();
  t.messages.push_back(PubSubMessage{std::to_string(seq), std::string(data), metadata, 1});
  if (t.messages.size() > kMaxKept) {
    t.messages.pop_front();
    ++t.first;
  }
  published_.NotifyAll();
  return std::to_string(seq);
}

Result<std::vector<PubSubMessage>> MemoryPubSub::Fetch(std::string_view topic, std::string_view group,
                                                       size_t max, std::chrono::milliseconds wait) {
  const auto until = clock_.Now() + wait;
  MutexLock lock(mutex_);
  Topic& t = topics_[std::string(topic)];
  uint64_t& next = t.next.try_emplace(std::string(group), t.first).first->second;
  while (next >= t.first + t.messages.size() && clock_.WaitUntil(mutex_, published_, until)) {
  }
  std::vector<PubSubMessage> out;
  if (next < t.first) next = t.first;  // dropped while this group lagged
  while (out.size() < max && next < t.first + t.messages.size()) out.push_back(t.messages[next++ - t.first]);
  return out;
}

}  // namespace wasmlet::components
