#include "components/state/memory/memory_store.h"

namespace wasmlet::components {

Result<std::unique_ptr<StateStoreComponent>> MemoryStore::Create(const StoreConfig& config) {
  auto store = std::make_unique<MemoryStore>();
  store->name_ = config.name;
  store->clock_ = config.clock;
  return std::unique_ptr<StateStoreComponent>(std::move(store));
}

MemoryStore::Entry* MemoryStore::Find(std::string_view key, Clock::TimePoint now) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  if (it->second.expires <= now) {
    entries_.erase(it);
    return nullptr;
  }
  return &it->second;
}

Result<std::optional<StateItem>> MemoryStore::GetItem(std::string_view key) {
  MutexLock lock(mutex_);
  const Entry* entry = Find(key, clock_->Now());
  if (!entry) return std::optional<StateItem>();
  return std::optional<StateItem>(StateItem{entry->value, std::to_string(entry->version)});
}

Status MemoryStore::Apply(const std::vector<StateOperation>& operations) {
  MutexLock lock(mutex_);
  const auto now = clock_->Now();
  for (const StateOperation& op : operations) {
    const Entry* entry = Find(op.key, now);
    std::optional<std::string> etag;
    if (entry) etag = std::to_string(entry->version);
    if (Status refused = CheckWriteCondition(name_, op, etag); !refused.ok()) return refused;
  }
  for (const StateOperation& op : operations) {
    if (op.kind == StateOperation::Kind::kDelete) {
      if (auto it = entries_.find(op.key); it != entries_.end()) entries_.erase(it);
      continue;
    }
    Entry* entry = Find(op.key, now);
    const uint64_t version = entry ? entry->version + 1 : 1;
    Entry& slot = entries_[op.key];
    slot.value = op.value;
    slot.version = version;
    slot.expires = op.ttl.count() > 0 ? now + op.ttl : Clock::TimePoint::max();
  }
  return Status::Ok();
}

}  // namespace wasmlet::components
