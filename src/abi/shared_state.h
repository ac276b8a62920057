// Process-wide state that plugins share across instances and threads: the key-value store
// with compare-and-swap, the shared queues and the metrics of the ABI. Namespaced by VM id.
// Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "abi/abi.h"

namespace wasmlet::abi {

class SharedState {
 public:
  // --- shared data ---
  struct Value {
    std::string bytes;
    uint32_t cas = 0;
  };
  std::optional<Value> GetData(std::string_view vm_id, std::string_view key) const;
  // cas == 0 writes unconditionally; otherwise it must equal the key's current cas
  // (a missing key has cas 0... and a non-zero cas still creates it, as the reference host does).
  WasmResult SetData(std::string_view vm_id, std::string_view key, std::string_view value, uint32_t cas);

  // --- shared queues ---
  // Called (on any thread) when a queue gets an item; the receiver delivers on_queue_ready later
  // on its own thread. The registrant is identified by the root context id it passes.
  using QueueNotifier = std::function<void(uint32_t root_context_id, uint32_t queue_id)>;
  // Creates or reopens (vm_id, name); the caller becomes the one notified.
  uint32_t RegisterQueue(std::string_view vm_id, std::string_view name, uint32_t root_context_id,
                         std::weak_ptr<QueueNotifier> notifier);
  std::optional<uint32_t> ResolveQueue(std::string_view vm_id, std::string_view name) const;
  WasmResult Enqueue(uint32_t queue_id, std::string_view value);
  // kOk with the value, kEmpty, or kNotFound.
  WasmResult Dequeue(uint32_t queue_id, std::string& value);
  WasmResult RemoveQueue(uint32_t queue_id);

  // --- metrics ---
  uint32_t DefineMetric(MetricType type, std::string_view name);
  WasmResult IncrementMetric(uint32_t id, int64_t delta);
  WasmResult RecordMetric(uint32_t id, uint64_t value);
  std::optional<uint64_t> GetMetric(uint32_t id) const;
  WasmResult RemoveMetric(uint32_t id);

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, Value, std::less<>> data_;
  uint32_t next_cas_ = 1;

  struct Queue {
    std::string vm_id;
    std::string name;
    std::deque<std::string> items;
    uint32_t root_context_id = 0;
    std::weak_ptr<QueueNotifier> notifier;
  };
  std::unordered_map<uint32_t, Queue> queues_;
  std::map<std::pair<std::string, std::string>, uint32_t, std::less<>> queue_ids_;
  uint32_t next_queue_id_ = 1;

  struct Metric {
    MetricType type;
    std::string name;
    int64_t value = 0;
  };
  std::unordered_map<uint32_t, Metric> metrics_;
  std::map<std::pair<MetricType, std::string>, uint32_t, std::less<>> metric_ids_;
  uint32_t next_metric_id_ = 1;
};

}  // namespace wasmlet::abi
