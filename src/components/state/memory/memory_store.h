// A state store in process memory, for tests and throw-away setups. Lost at exit.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>

#include "common/mutex.h"
#include "components/state/state_store.h"

namespace wasmlet::components {

class MemoryStore : public StateStoreComponent {
 public:
  static Result<std::unique_ptr<StateStoreComponent>> Create(const StoreConfig& config);
  Result<std::optional<StateItem>> GetItem(std::string_view key) override EXCLUDES(mutex_);
  Status Apply(const std::vector<StateOperation>& operations) override EXCLUDES(mutex_);

 private:
  struct Entry {
    std::string value;
    uint64_t version = 0;
    Clock::TimePoint expires = Clock::TimePoint::max();
  };
  // The live entry at `key` (an expired one is dropped); nullptr when there is none.
  Entry* Find(std::string_view key, Clock::TimePoint now) REQUIRES(mutex_);

  std::string name_;
  Clock* clock_ = &SystemClock();  // TTLs
  Mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_ GUARDED_BY(mutex_);
};

}  // namespace wasmlet::components
