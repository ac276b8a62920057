// Calls back when a file is written, replaced or created, once it has been quiet for a short
// while (so a copy still in progress is not picked up half-written). Watches the file's
// folder, so a file that does not exist yet, or is replaced by rename, is seen too. inotify.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace wasmlet::server {

class FileWatcher {
 public:
  // A file that keeps changing is still reported once `max_delay` after its first change.
  explicit FileWatcher(std::chrono::milliseconds quiet = std::chrono::milliseconds(200),
                       std::chrono::milliseconds max_delay = std::chrono::milliseconds(2000));
  ~FileWatcher();

  // `changed` runs on the watcher's thread. Watching a path again replaces its callback.
  void Watch(const std::string& path, std::function<void()> changed);
  void Unwatch(const std::string& path);

 private:
  void Run();

  std::chrono::milliseconds quiet_;
  std::chrono::milliseconds max_delay_;
  int inotify_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::mutex mutex_;
  std::map<int, std::string> folders_;                      // watch descriptor -> folder
  std::map<std::string, std::function<void()>> callbacks_;  // absolute path -> callback
  struct Dirty {
    std::chrono::steady_clock::time_point first;  // the first event not yet reported
    std::chrono::steady_clock::time_point last;
  };
  std::map<std::string, Dirty> dirty_;
  std::thread thread_;
};

}  // namespace wasmlet::server
