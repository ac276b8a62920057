// A state store in process memory, for tests and throw-away setups. Lost at exit.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>

#include "components/state/state_store.h"

namespace wasmlet::components {

class MemoryStore : public StateStoreComponent {
 public:
  static Result<std::unique_ptr<StateStoreComponent>> Create(const StoreConfig& config);
  Result<std::optional<StateItem>> GetItem(std::string_view key) override;
  Status Apply(const std::vector<StateOperation>& operations) override;

 private:
  struct Entry {
    std::string value;
    uint64_t version = 0;
    Clock::TimePoint expires = Clock::TimePoint::max();
  };
  // The live entry at `key` (an expired one is dropped); nullptr when there is none.
  Entry* Find(std::string_view key, Clock::TimePoint now);

  std::string name_;
  Clock* clock_ = &SystemClock();  // TTLs
  std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace wasmlet::components
