#include "components/state/memory/memory_store.h"

namespace wasmlet::components {

Result<std::unique_ptr<StateStoreComponent>> MemoryStore::Create(const StoreConfig&) {
  return std::unique_ptr<StateStoreComponent>(std::make_unique<MemoryStore>());
}

Result<std::string> MemoryStore::Get(std::string_view key) {
  std::lock_guard lock(mutex_);
  auto it = values_.find(key);
  return it == values_.end() ? std::string() : it->second;
}

Status MemoryStore::Set(std::string_view key, std::string_view value) {
  std::lock_guard lock(mutex_);
  values_[std::string(key)] = std::string(value);
  return Status::Ok();
}

}  // namespace wasmlet::components
