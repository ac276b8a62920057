// Writes the code cache's entries for modules the V8 engine compiled, in the background.
//
// V8 10.2 can serialise a module only once its optimising compiler has finished every function
// (an empty buffer until then), which happens on V8's own threads some time after Compile
// returned, and it offers no signal for it. So each module is tried after kFirstTry and then at
// doubling intervals (a Serialize that fails still walks the module: milliseconds for a large
// one), and given up after kTierUpWait. Thread-safe.
#pragma once

#include <v8.h>

#include <chrono>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "engine/code_cache.h"

namespace wasmlet::engine::v8backend {

class CodeCacheWriter {
 public:
  // The module's code now (empty while V8 cannot serialise it yet); nullopt once the module is
  // gone, which drops it.
  using Serialize = std::function<std::optional<v8::OwnedBuffer>()>;

  explicit CodeCacheWriter(CodeCache& cache);
  // Stops the thread; entries not written by then are dropped.
  ~CodeCacheWriter();
  CodeCacheWriter(const CodeCacheWriter&) = delete;
  CodeCacheWriter& operator=(const CodeCacheWriter&) = delete;

  void Schedule(CodeCache::Key key, Serialize serialize) EXCLUDES(mutex_);
  // Waits until every scheduled entry is written or given up, at most `timeout`, trying every
  // kFirstTry meanwhile. False if some are still pending.
  bool Flush(std::chrono::milliseconds timeout) EXCLUDES(mutex_);

 private:
  struct Pending {
    CodeCache::Key key;
    Serialize serialize;
    std::chrono::steady_clock::time_point give_up;
    std::chrono::steady_clock::time_point next_try;
    std::chrono::milliseconds interval{0};
  };
  // Long enough for the optimising compiler to get through a module of many MB on a busy core.
  static constexpr auto kTierUpWait = std::chrono::minutes(2);
  static constexpr std::chrono::milliseconds kFirstTry{100};
  static constexpr std::chrono::milliseconds kLastInterval{10000};

  void Run() EXCLUDES(mutex_);

  CodeCache& cache_;
  Mutex mutex_;
  CondVar wake_;  // a module to write, or stopping
  CondVar done_;  // a pass over pending_ ended
  std::vector<Pending> pending_ GUARDED_BY(mutex_);
  bool writing_ GUARDED_BY(mutex_) = false;
  bool stopping_ GUARDED_BY(mutex_) = false;
  int flushers_ GUARDED_BY(mutex_) = 0;  // Flush calls waiting
  std::thread thread_;                   // last: it uses everything above
};

}  // namespace wasmlet::engine::v8backend
