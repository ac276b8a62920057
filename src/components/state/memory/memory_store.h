// A state store in process memory, for tests and throw-away setups. Lost at exit.
#pragma once

#include <map>
#include <mutex>

#include "components/state/state_store.h"

namespace wasmlet::components {

class MemoryStore : public StateStoreComponent {
 public:
  static Result<std::unique_ptr<StateStoreComponent>> Create(const StoreConfig& config);
  Result<std::string> Get(std::string_view key) override;
  Status Set(std::string_view key, std::string_view value) override;

 private:
  std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> values_;
};

}  // namespace wasmlet::components
