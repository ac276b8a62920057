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
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::string value;
    uint64_t version = 0;
    Clock::time_point expires = Clock::time_point::max();
  };
  // The live entry at `key` (an expired one is dropped); nullptr when there is none.
  Entry* Find(std::string_view key, Clock::time_point now);

  std::string name_;
  std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace wasmlet::components
