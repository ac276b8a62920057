// Calls back when a file is written, replaced or created, once it has been quiet for a short
// while (so a copy still in progress is not picked up half-written). Watches the file's
// folder, so a file that does not exist yet, or is replaced by rename, is seen too. inotify.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/mutex.h"

namespace wasmlet::server {

class FileWatcher {
 public:
  // A file that keeps changing is still reported once `max_delay` after its first change. Both
  // are times of `clock`, which the watcher looks at whenever inotify or its poll wakes it.
  explicit FileWatcher(std::chrono::milliseconds quiet = std::chrono::milliseconds(200),
                       std::chrono::milliseconds max_delay = std::chrono::milliseconds(2000),
                       wasmlet::Clock& clock = SystemClock());
  ~FileWatcher();

  // `changed` runs on the watcher's thread. Watching a path again replaces its callback.
  void Watch(const std::string& path, std::function<void()> changed) EXCLUDES(mutex_);
  void Unwatch(const std::string& path) EXCLUDES(mutex_);

 private:
  void Run() EXCLUDES(mutex_);

  std::chrono::milliseconds quiet_;
  std::chrono::milliseconds max_delay_;
  wasmlet::Clock& clock_;
  int inotify_ = -1;
  int stop_pipe_[2] = {-1, -1};
  Mutex mutex_;
  std::map<int, std::string> folders_ GUARDED_BY(mutex_);                      // watch descriptor -> folder
  std::map<std::string, std::function<void()>> callbacks_ GUARDED_BY(mutex_);  // absolute path -> callback
  struct Dirty {
    wasmlet::Clock::TimePoint first;  // the first event not yet reported
    wasmlet::Clock::TimePoint last;
  };
  std::map<std::string, Dirty> dirty_ GUARDED_BY(mutex_);
  std::thread thread_;
};

}  // namespace wasmlet::server
