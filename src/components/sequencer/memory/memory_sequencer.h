// Sequencers in process memory, for tests and single-process setups. Lost at exit.
#pragma once

#include <map>
#include <string>

#include "common/mutex.h"
#include "components/sequencer/sequencer.h"

namespace wasmlet::components {

class MemorySequencer : public SequencerComponent {
 public:
  Result<uint64_t> NextId(std::string_view key) override EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    return ++last_[std::string(key)];
  }

 private:
  Mutex mutex_;
  std::map<std::string, uint64_t> last_ GUARDED_BY(mutex_);
};

}  // namespace wasmlet::components
