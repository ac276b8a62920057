// Locks in process memory, for tests and single-process setups. Lost at exit.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "common/mutex.h"
#include "components/lock/lock_store.h"

namespace wasmlet::components {

class MemoryLock : public LockStoreComponent {
 public:
  explicit MemoryLock(Clock& clock) : clock_(clock) {}
  Result<bool> TryLock(std::string_view resource, std::string_view owner,
                       std::chrono::seconds expire) override EXCLUDES(mutex_);
  Result<UnlockResult> Unlock(std::string_view resource, std::string_view owner) override EXCLUDES(mutex_);
  Result<UnlockResult> Extend(std::string_view resource, std::string_view owner,
                              std::chrono::seconds expire) override EXCLUDES(mutex_);

 private:
  struct Holder {
    std::string owner;
    Clock::TimePoint expires;
  };
  Clock& clock_;  // expiries
  Mutex mutex_;
  std::map<std::string, Holder, std::less<>> held_ GUARDED_BY(mutex_);
};

}  // namespace wasmlet::components
