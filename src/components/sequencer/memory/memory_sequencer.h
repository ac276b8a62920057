// Sequencers in process memory, for tests and single-process setups. Lost at exit.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "components/sequencer/sequencer.h"

namespace wasmlet::components {

class MemorySequencer : public SequencerComponent {
 public:
  Result<uint64_t> NextId(std::string_view key) override {
    std::lock_guard lock(mutex_);
    return ++last_[std::string(key)];
  }

 private:
  std::mutex mutex_;
  std::map<std::string, uint64_t> last_;
};

}  // namespace wasmlet::components
