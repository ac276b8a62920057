// Process-wide state that plugins share across instances and threads: the key-value store
// with compare-and-swap, the shared queues and the metrics of the ABI. Namespaced by VM id.
// Thread-safe. What each VM id holds is counted against HostLimits; past a limit a write
// answers INTERNAL_FAILURE and nothing is stored.
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
#include "abi/limits.h"

namespace wasmlet::abi {

class SharedState {
 public:
  explicit SharedState(HostLimits limits = {}) : limits_(limits) {}
  const HostLimits& limits() const { return limits_; }
  // What `vm_id` holds now (zeros for a VM id never seen).
  HostUsage Usage(std::string_view vm_id) const;
  // A host call of `vm_id` refused at a limit (any limit, also the per-instance ones).
  void CountRefusal(std::string_view vm_id);

  // --- shared data ---
  struct Value {
    std::string bytes;
    uint32_t cas = 0;
  };
  std::optional<Value> GetData(std::string_view vm_id, std::string_view key) const;
  // cas == 0 writes unconditionally; otherwise it must equal the key's current cas
  // (a missing key has cas 0... and a non-zero cas still creates it, as the reference host does).
  // kInternalFailure when the VM's shared data would pass limits().shared_data_bytes.
  WasmResult SetData(std::string_view vm_id, std::string_view key, std::string_view value, uint32_t cas);

  // --- shared queues ---
  // Called (on any thread) when a queue gets an item; the receiver delivers on_queue_ready later
  // on its own thread. The registrant is identified by the root context id it passes.
  using QueueNotifier = std::function<void(uint32_t root_context_id, uint32_t queue_id)>;
  // Creates or reopens (vm_id, name); the caller becomes the one notified.
  uint32_t RegisterQueue(std::string_view vm_id, std::string_view name, uint32_t root_context_id,
                         std::weak_ptr<QueueNotifier> notifier);
  std::optional<uint32_t> ResolveQueue(std::string_view vm_id, std::string_view name) const;
  // kInternalFailure when the queue's VM id would pass its queue_entries or queue_bytes limit.
  WasmResult Enqueue(uint32_t queue_id, std::string_view value);
  // kOk with the value, kEmpty, or kNotFound.
  WasmResult Dequeue(uint32_t queue_id, std::string& value);
  WasmResult RemoveQueue(uint32_t queue_id);

  // --- metrics ---
  // The metric's id; a name already defined (by anyone) answers its id. nullopt when `vm_id`
  // has defined limits().metrics names already.
  std::optional<uint32_t> DefineMetric(std::string_view vm_id, MetricType type, std::string_view name);
  WasmResult IncrementMetric(uint32_t id, int64_t delta);
  WasmResult RecordMetric(uint32_t id, uint64_t value);
  std::optional<uint64_t> GetMetric(uint32_t id) const;
  WasmResult RemoveMetric(uint32_t id);

 private:
  // Requires mutex_.
  HostUsage& UsageOf(std::string_view vm_id);

  const HostLimits limits_;
  mutable std::mutex mutex_;
  std::map<std::string, HostUsage, std::less<>> usage_;
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
    std::string vm_id;  // the VM id that defined it (and is charged for it)
    int64_t value = 0;
  };
  std::unordered_map<uint32_t, Metric> metrics_;
  std::map<std::pair<MetricType, std::string>, uint32_t, std::less<>> metric_ids_;
  uint32_t next_metric_id_ = 1;
};

}  // namespace wasmlet::abi
