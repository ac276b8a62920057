#include "abi/shared_state.h"

#include <cstdint>

namespace wasmlet::abi {
namespace {
std::pair<std::string, std::string> Key(std::string_view a, std::string_view b) {
  return {std::string(a), std::string(b)};
}
}  // namespace

HostUsage& SharedState::UsageOf(std::string_view vm_id) {
  auto it = usage_.find(vm_id);
  if (it == usage_.end()) it = usage_.emplace(std::string(vm_id), HostUsage{}).first;
  return it->second;
}

void SharedState::CountRefusal(std::string_view vm_id) {
  MutexLock lock(mutex_);
  UsageOf(vm_id).refusals++;
}

HostUsage SharedState::Usage(std::string_view vm_id) const {
  MutexLock lock(mutex_);
  auto it = usage_.find(vm_id);
  return it == usage_.end() ? HostUsage{} : it->second;
}

std::optional<SharedState::Value> SharedState::GetData(std::string_view vm_id, std::string_view key) const {
  MutexLock lock(mutex_);
  auto it = data_.find(Key(vm_id, key));
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

WasmResult SharedState::SetData(std::string_view vm_id, std::string_view key, std::string_view value,
                                uint32_t cas) {
  MutexLock lock(mutex_);
  HostUsage& usage = UsageOf(vm_id);
  auto it = data_.find(Key(vm_id, key));
  if (it != data_.end() && cas != 0 && cas != it->second.cas) return WasmResult::kCasMismatch;
  const uint64_t before = it == data_.end() ? 0 : key.size() + it->second.bytes.size();
  const uint64_t after = key.size() + value.size();
  if (after > before && usage.shared_data_bytes - before + after > limits_.shared_data_bytes) {
    return WasmResult::kInternalFailure;
  }
  if (it == data_.end()) it = data_.try_emplace(Key(vm_id, key)).first;
  usage.shared_data_bytes = usage.shared_data_bytes - before + after;
  it->second.bytes = std::string(value);
  it->second.cas = next_cas_++;
  if (next_cas_ == 0) next_cas_ = 1;  // 0 means "no cas"; never hand it out
  return WasmResult::kOk;
}

uint32_t SharedState::RegisterQueue(std::string_view vm_id, std::string_view name, uint32_t root_context_id,
                                    std::weak_ptr<QueueNotifier> notifier) {
  MutexLock lock(mutex_);
  auto [it, inserted] = queue_ids_.try_emplace(Key(vm_id, name), next_queue_id_);
  if (inserted) {
    ++next_queue_id_;
    queues_[it->second] = Queue{std::string(vm_id), std::string(name), {}, 0, {}};
  }
  Queue& queue = queues_[it->second];
  queue.root_context_id = root_context_id;  // the last registration wins
  queue.notifier = std::move(notifier);
  return it->second;
}

std::optional<uint32_t> SharedState::ResolveQueue(std::string_view vm_id, std::string_view name) const {
  MutexLock lock(mutex_);
  auto it = queue_ids_.find(Key(vm_id, name));
  if (it == queue_ids_.end()) return std::nullopt;
  return it->second;
}

WasmResult SharedState::Enqueue(uint32_t queue_id, std::string_view value) {
  std::shared_ptr<QueueNotifier> notify;
  uint32_t root = 0;
  {
    MutexLock lock(mutex_);
    auto it = queues_.find(queue_id);
    if (it == queues_.end()) return WasmResult::kNotFound;
    HostUsage& usage = UsageOf(it->second.vm_id);
    if (usage.queue_entries + 1 > limits_.queue_entries ||
        usage.queue_bytes + value.size() > limits_.queue_bytes) {
      return WasmResult::kInternalFailure;
    }
    usage.queue_entries++;
    usage.queue_bytes += value.size();
    it->second.items.emplace_back(value);
    notify = it->second.notifier.lock();
    root = it->second.root_context_id;
  }
  // Outside the lock: the notifier only records the event for its owner's thread.
  if (notify) (*notify)(root, queue_id);
  return WasmResult::kOk;
}

WasmResult SharedState::Dequeue(uint32_t queue_id, std::string& value) {
  MutexLock lock(mutex_);
  auto it = queues_.find(queue_id);
  if (it == queues_.end()) return WasmResult::kNotFound;
  if (it->second.items.empty()) return WasmResult::kEmpty;
  value = std::move(it->second.items.front());
  it->second.items.pop_front();
  HostUsage& usage = UsageOf(it->second.vm_id);
  usage.queue_entries--;
  usage.queue_bytes -= value.size();
  return WasmResult::kOk;
}

WasmResult SharedState::RemoveQueue(uint32_t queue_id) {
  MutexLock lock(mutex_);
  auto it = queues_.find(queue_id);
  if (it == queues_.end()) return WasmResult::kNotFound;
  HostUsage& usage = UsageOf(it->second.vm_id);
  for (const std::string& item : it->second.items) {
    usage.queue_entries--;
    usage.queue_bytes -= item.size();
  }
  queue_ids_.erase(Key(it->second.vm_id, it->second.name));
  queues_.erase(it);
  return WasmResult::kOk;
}

std::optional<uint32_t> SharedState::DefineMetric(std::string_view vm_id, MetricType type,
                                                  std::string_view name) {
  MutexLock lock(mutex_);
  auto it = metric_ids_.find(std::make_pair(type, std::string(name)));
  if (it != metric_ids_.end()) return it->second;
  HostUsage& usage = UsageOf(vm_id);
  if (usage.metrics + 1 > limits_.metrics) {
    return std::nullopt;
  }
  usage.metrics++;
  const uint32_t id = next_metric_id_++;
  metric_ids_.emplace(std::make_pair(type, std::string(name)), id);
  metrics_[id] = Metric{type, std::string(name), std::string(vm_id), 0};
  return id;
}

WasmResult SharedState::IncrementMetric(uint32_t id, int64_t delta) {
  MutexLock lock(mutex_);
  auto it = metrics_.find(id);
  if (it == metrics_.end()) return WasmResult::kNotFound;
  if (it->second.type == MetricType::kCounter && delta < 0) return WasmResult::kBadArgument;
  // A guest's delta may be anything: stop at the ends of the range instead of overflowing.
  if (__builtin_add_overflow(it->second.value, delta, &it->second.value))
    it->second.value = delta > 0 ? INT64_MAX : INT64_MIN;
  return WasmResult::kOk;
}

WasmResult SharedState::RecordMetric(uint32_t id, uint64_t value) {
  MutexLock lock(mutex_);
  auto it = metrics_.find(id);
  if (it == metrics_.end()) return WasmResult::kNotFound;
  it->second.value = static_cast<int64_t>(value);
  return WasmResult::kOk;
}

std::optional<uint64_t> SharedState::GetMetric(uint32_t id) const {
  MutexLock lock(mutex_);
  auto it = metrics_.find(id);
  if (it == metrics_.end()) return std::nullopt;
  return static_cast<uint64_t>(it->second.value);
}

WasmResult SharedState::RemoveMetric(uint32_t id) {
  MutexLock lock(mutex_);
  auto it = metrics_.find(id);
  if (it == metrics_.end()) return WasmResult::kNotFound;
  UsageOf(it->second.vm_id).metrics--;
  metric_ids_.erase({it->second.type, it->second.name});
  metrics_.erase(it);
  return WasmResult::kOk;
}

}  // namespace wasmlet::abi
