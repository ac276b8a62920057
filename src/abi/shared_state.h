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
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "abi/abi.h"
#include "abi/limits.h"
#include "common/mutex.h"

namespace wasmlet::abi {

class SharedState {
 public:
  explicit SharedState(HostLimits limits = {}) : limits_(limits) {}
  const HostLimits& limits() const { return limits_; }
  // What `vm_id` holds now (zeros for a VM id never seen).
  HostUsage Usage(std::string_view vm_id) const EXCLUDES(mutex_);
  // A host call of `vm_id` refused at a limit (any limit, also the per-instance ones).
  void CountRefusal(std::string_view vm_id) EXCLUDES(mutex_);

  // --- shared data ---
  struct Value {
    std::string bytes;
    uint32_t cas = 0;
  };
  std::optional<Value> GetData(std::string_view vm_id, std::string_view key) const EXCLUDES(mutex_);
  // cas == 0 writes unconditionally; otherwise it must equal the key's current cas
  // (a missing key has cas 0... and a non-zero cas still creates it, as the reference host does).
  // kInternalFailure when the VM's shared data would pass limits().shared_data_bytes.
  WasmResult SetData(std::string_view vm_id, std::string_view key, std::string_view value, uint32_t cas)
      EXCLUDES(mutex_);

  // --- shared queues ---
  // Called (on any thread) when a queue gets an item; the receiver delivers on_queue_ready later
  // on its own thread. The registrant is identified by the root context id it passes.
  using QueueNotifier = std::function<void(uint32_t root_context_id, uint32_t queue_id)>;
  // Creates or reopens (vm_id, name); the caller becomes the one notified.
  uint32_t RegisterQueue(std::string_view vm_id, std::string_view name, uint32_t root_context_id,
                         std::weak_ptr<QueueNotifier> notifier) EXCLUDES(mutex_);
  std::optional<uint32_t> ResolveQueue(std::string_view vm_id, std::string_view name) const EXCLUDES(mutex_);
  // kInternalFailure when the queue's VM id would pass its queue_entries or queue_bytes limit.
  WasmResult Enqueue(uint32_t queue_id, std::string_view value) EXCLUDES(mutex_);
  // kOk with the value, kEmpty, or kNotFound.
  WasmResult Dequeue(uint32_t queue_id, std::string& value) EXCLUDES(mutex_);
  WasmResult RemoveQueue(uint32_t queue_id) EXCLUDES(mutex_);

  // --- metrics ---
  // The metric's id; a name already defined (by anyone) answers its id. nullopt when `vm_id`
  // has defined limits().metrics names already.
  std::optional<uint32_t> DefineMetric(std::string_view vm_id, MetricType type, std::string_view name)
      EXCLUDES(mutex_);
  WasmResult IncrementMetric(uint32_t id, int64_t delta) EXCLUDES(mutex_);
  WasmResult RecordMetric(uint32_t id, uint64_t value) EXCLUDES(mutex_);
  std::optional<uint64_t> GetMetric(uint32_t id) const EXCLUDES(mutex_);
  WasmResult RemoveMetric(uint32_t id) EXCLUDES(mutex_);

 private:
  HostUsage& UsageOf(std::string_view vm_id) REQUIRES(mutex_);

  const HostLimits limits_;
  mutable Mutex mutex_;
  std::map<std::string, HostUsage, std::less<>> usage_ GUARDED_BY(mutex_);
  std::map<std::pair<std::string, std::string>, Value, std::less<>> data_ GUARDED_BY(mutex_);
  uint32_t next_cas_ GUARDED_BY(mutex_) = 1;

  struct Queue {
    std::string vm_id;
    std::string name;
    std::deque<std::string> items;
    uint32_t root_context_id = 0;
    std::weak_ptr<QueueNotifier> notifier;
  };
  std::unordered_map<uint32_t, Queue> queues_ GUARDED_BY(mutex_);
  std::map<std::pair<std::string, std::string>, uint32_t, std::less<>> queue_ids_ GUARDED_BY(mutex_);
  uint32_t next_queue_id_ GUARDED_BY(mutex_) = 1;

  struct Metric {
    MetricType type;
    std::string name;
    std::string vm_id;  // the VM id that defined it (and is charged for it)
    int64_t value = 0;
  };
  std::unordered_map<uint32_t, Metric> metrics_ GUARDED_BY(mutex_);
  std::map<std::pair<MetricType, std::string>, uint32_t, std::less<>> metric_ids_ GUARDED_BY(mutex_);
  uint32_t next_metric_id_ GUARDED_BY(mutex_) = 1;
};

}  // namespace wasmlet::abi
