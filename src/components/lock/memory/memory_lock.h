// Locks in process memory, for tests and single-process setups. Lost at exit.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "components/lock/lock_store.h"

namespace wasmlet::components {

class MemoryLock : public LockStoreComponent {
 public:
  explicit MemoryLock(Clock& clock) : clock_(clock) {}
  Result<bool> TryLock(std::string_view resource, std::string_view owner,
                       std::chrono::seconds expire) override;
  Result<UnlockResult> Unlock(std::string_view resource, std::string_view owner) override;

 private:
  struct Holder {
    std::string owner;
    Clock::TimePoint expires;
  };
  Clock& clock_;  // expiries
  std::mutex mutex_;
  std::map<std::string, Holder, std::less<>> held_;
};

}  // namespace wasmlet::components
