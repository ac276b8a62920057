#include "server/functions/file_watcher.h"

#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

namespace wasmlet::server {
namespace fs = std::filesystem;

FileWatcher::FileWatcher(EventLoop& loop, std::chrono::milliseconds quiet,
                         std::chrono::milliseconds max_delay, wasmlet::Clock& clock)
    : loop_(loop), quiet_(quiet), max_delay_(max_delay), clock_(clock) {
  inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_ < 0) {
    spdlog::warn("file watching is unavailable ({}); modules will not reload on change",
                 std::strerror(errno));
    return;
  }
  descriptor_.emplace(loop_.io(), inotify_);
  timer_.emplace(loop_.io());
  // On the loop's own thread, like every later use of the two.
  loop_.Post([this, alive = alive_] {
    if (*alive) ReadAndWait();
  });
}

FileWatcher::~FileWatcher() {
  if (inotify_ < 0) return;  // nothing was ever queued on the loop
  auto close = [this] {
    *alive_ = false;
    timer_.reset();
    descriptor_.reset();  // closes the inotify descriptor, and with it every watch
  };
  if (loop_.IsCurrent()) {
    close();
  } else {
    loop_.RunAndWait(close);
  }
}

FileWatcher::Id FileWatcher::Watch(const std::string& path, std::function<void()> changed) {
  if (inotify_ < 0) return 0;
  const fs::path absolute = fs::absolute(path).lexically_normal();
  const std::string folder = absolute.parent_path().string();
  MutexLock lock(mutex_);
  // The folder's watch, made by the first file watched in it (inotify answers the same
  // descriptor for a folder it already watches).
  const int wd =
      inotify_add_watch(inotify_, folder.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY);
  if (wd < 0) {
    spdlog::warn("cannot watch {} for changes: {}; {} will not be reloaded when it changes", folder,
                 std::strerror(errno), path);
    return 0;
  }
  const Id id = next_id_++;
  const FileKey key{wd, absolute.filename().string()};
  files_[key].callbacks.emplace(id, std::move(changed));
  ids_.emplace(id, key);
  ++folder_callbacks_[wd];
  return id;
}

void FileWatcher::Unwatch(Id id) {
  MutexLock lock(mutex_);
  auto it = ids_.find(id);
  if (it == ids_.end()) return;
  const FileKey key = it->second;
  ids_.erase(it);
  if (auto file = files_.find(key); file != files_.end()) {
    file->second.callbacks.erase(id);
    if (file->second.callbacks.empty()) files_.erase(file);
  }
  if (--folder_callbacks_[key.first] == 0) {
    folder_callbacks_.erase(key.first);
    // Fails only when the kernel dropped the watch already (its folder was removed).
    inotify_rm_watch(inotify_, key.first);
  }
}

void FileWatcher::ReadAndWait() {
  // Everything readable is read before the wait: Asio waits for inotify's next edge, and what
  // came before it would otherwise wait for the next change.
  ReadEvents();
  CallDue();
  descriptor_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                          [this, alive = alive_](const boost::system::error_code& ec) {
                            if (!*alive) return;
                            if (ec) {
                              spdlog::error("file watching stopped ({}); modules will not reload on change",
                                            ec.message());
                              return;
                            }
                            ReadAndWait();
                          });
}

void FileWatcher::ReadEvents() {
  std::vector<char> buffer(64 * 1024);
  ssize_t n;
  while ((n = read(inotify_, buffer.data(), buffer.size())) > 0) {
    const auto now = clock_.Now();
    MutexLock lock(mutex_);
    for (char* p = buffer.data(); p < buffer.data() + n;) {
      auto* event = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + event->len;
      if (event->len == 0) continue;  // about the folder itself
      auto file = files_.find(FileKey{event->wd, event->name});
      if (file == files_.end()) continue;
      auto& dirty = file->second.dirty;
      if (dirty) {
        dirty->second = now;
      } else {
        dirty.emplace(now, now);
      }
    }
  }
}

void FileWatcher::CallDue() {
  std::vector<std::function<void()>> due;
  bool changing = false;
  {
    MutexLock lock(mutex_);
    const auto now = clock_.Now();
    for (auto& [key, file] : files_) {
      if (!file.dirty) continue;
      // Quiet long enough, or changing for too long already: a file rewritten every 100 ms
      // would otherwise never be reloaded.
      const auto [first, last] = *file.dirty;
      if (now - last >= quiet_ || now - first >= max_delay_) {
        for (const auto& [id, callback] : file.callbacks) due.push_back(callback);
        file.dirty.reset();
      } else {
        changing = true;
      }
    }
  }
  if (changing && !timer_armed_) {
    timer_armed_ = true;
    timer_->expires_after(quiet_ / 4 + std::chrono::milliseconds(1));
    timer_->async_wait([this, alive = alive_](const boost::system::error_code&) {
      if (!*alive) return;
      timer_armed_ = false;
      CallDue();
    });
  }
  // Outside the lock: a callback may watch or unwatch.
  for (auto& callback : due) callback();
}

}  // namespace wasmlet::server
