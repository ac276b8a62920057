// Calls back when a file is written, replaced or created, once it has been quiet for a short
// while (so a copy still in progress is not picked up half-written). Watches the file's
// folder, so a file that does not exist yet, or is replaced by rename, is seen too. inotify,
// read on an event loop the caller already runs: the watcher has no thread of its own.
#pragma once

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "common/clock.h"
#include "common/mutex.h"
#include "server/runtime/event_loop.h"

namespace wasmlet::server {

class FileWatcher {
 public:
  // Reads inotify on `loop`, where the callbacks run too; the loop must keep running until the
  // watcher is destroyed. A file that keeps changing is still reported once `max_delay` after
  // its first change. Both are times of `clock`, which the watcher looks at whenever inotify or
  // its timer wakes it.
  explicit FileWatcher(EventLoop& loop, std::chrono::milliseconds quiet = std::chrono::milliseconds(200),
                       std::chrono::milliseconds max_delay = std::chrono::milliseconds(2000),
                       wasmlet::Clock& clock = SystemClock());
  // From any thread but the loop's own: waits for a callback running on the loop, and none
  // runs after.
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // What Watch returns, for Unwatch; 0 when the file cannot be watched.
  using Id = uint64_t;
  // `changed` runs on the loop. One path may have several callbacks; each is removed by its own
  // id, and the folder's inotify watch goes with the last callback in that folder.
  Id Watch(const std::string& path, std::function<void()> changed) EXCLUDES(mutex_);
  void Unwatch(Id id) EXCLUDES(mutex_);

 private:
  // A file, as inotify names it: its folder's watch descriptor and its name in that folder.
  using FileKey = std::pair<int, std::string>;
  struct File {
    std::map<Id, std::function<void()>> callbacks;
    // Since the first event not yet reported, and the last one; unset while quiet.
    std::optional<std::pair<wasmlet::Clock::TimePoint, wasmlet::Clock::TimePoint>> dirty;
  };

  // On the loop: reads every event inotify has, calls back what is due, and waits for more.
  void ReadAndWait();
  void ReadEvents() EXCLUDES(mutex_);
  // On the loop: calls back the files quiet long enough (or changing for too long), and wakes
  // again after a fraction of the quiet period while some file is still changing.
  void CallDue() EXCLUDES(mutex_);

  EventLoop& loop_;
  const std::chrono::milliseconds quiet_;
  const std::chrono::milliseconds max_delay_;
  wasmlet::Clock& clock_;
  int inotify_ = -1;  // owned by descriptor_
  // Only on the loop's thread; both go there when the watcher is destroyed.
  std::optional<boost::asio::posix::stream_descriptor> descriptor_;
  std::optional<boost::asio::steady_timer> timer_;
  bool timer_armed_ = false;
  // False once the watcher is being destroyed: handlers already queued on the loop then return
  // without touching it. Read and written on the loop's thread only.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  Mutex mutex_;
  Id next_id_ GUARDED_BY(mutex_) = 1;
  std::map<FileKey, File> files_ GUARDED_BY(mutex_);
  std::map<Id, FileKey> ids_ GUARDED_BY(mutex_);
  std::map<int, size_t> folder_callbacks_ GUARDED_BY(mutex_);  // watch descriptor -> callbacks in it
};

}  // namespace wasmlet::server
