#include "components/lock/memory/memory_lock.h"

namespace wasmlet::components {

Result<bool> MemoryLock::TryLock(std::string_view resource, std::string_view owner,
                                 std::chrono::seconds expire) {
  MutexLock lock(mutex_);
  const auto now = clock_.Now();
  auto it = held_.find(resource);
  if (it != held_.end() && it->second.expires > now) return false;
  held_.insert_or_assign(std::string(resource), Holder{std::string(owner), now + expire});
  return true;
}

Result<UnlockResult> MemoryLock::Unlock(std::string_view resource, std::string_view owner) {
  MutexLock lock(mutex_);
  auto it = held_.find(resource);
  if (it == held_.end() || it->second.expires <= clock_.Now()) return UnlockResult::kLockDoesNotExist;
  if (it->second.owner != owner) return UnlockResult::kLockBelongsToOthers;
  held_.erase(it);
  return UnlockResult::kSuccess;
}

Result<UnlockResult> MemoryLock::Extend(std::string_view resource, std::string_view owner,
                                       std::chrono::seconds expire) {
  MutexLock lock(mutex_);
  const auto now = clock_.Now();
  auto it = held_.find(resource);
  if (it == held_.end() || it->second.expires <= now) return UnlockResult::kLockDoesNotExist;
  if (it->second.owner != owner) return UnlockResult::kLockBelongsToOthers;
  it->second.expires = now + expire;
  return UnlockResult::kSuccess;
}

}  // namespace wasmlet::components
