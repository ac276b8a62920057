#include "server/functions/file_watcher.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

namespace wasmlet::server {
namespace fs = std::filesystem;

FileWatcher::FileWatcher(std::chrono::milliseconds quiet, std::chrono::milliseconds max_delay,
                         wasmlet::Clock& clock)
    : quiet_(quiet), max_delay_(max_delay), clock_(clock) {
  inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_ < 0 || pipe(stop_pipe_) != 0) {
    spdlog::warn("file watching is unavailable ({}); modules will not reload on change",
                 std::strerror(errno));
    return;
  }
  thread_ = std::thread([this] { Run(); });
}

FileWatcher::~FileWatcher() {
  if (thread_.joinable()) {
    (void)!write(stop_pipe_[1], "x", 1);
    thread_.join();
  }
  for (int fd : {inotify_, stop_pipe_[0], stop_pipe_[1]}) {
    if (fd >= 0) close(fd);
  }
}

void FileWatcher::Watch(const std::string& path, std::function<void()> changed) {
  if (inotify_ < 0) return;
  const std::string absolute = fs::absolute(path).lexically_normal().string();
  const std::string folder = fs::path(absolute).parent_path().string();
  MutexLock lock(mutex_);
  callbacks_[absolute] = std::move(changed);
  const int wd =
      inotify_add_watch(inotify_, folder.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY);
  if (wd < 0) {
    spdlog::warn("cannot watch {} for changes: {}", folder, std::strerror(errno));
    return;
  }
  folders_[wd] = folder;
}

void FileWatcher::Unwatch(const std::string& path) {
  MutexLock lock(mutex_);
  const std::string absolute = fs::absolute(path).lexically_normal().string();
  callbacks_.erase(absolute);
  dirty_.erase(absolute);
}

void FileWatcher::Run() {
  std::vector<char> buffer(64 * 1024);
  while (true) {
    // Wake for events, for the stop pipe, or when the next quiet period ends.
    int timeout_ms = -1;
    {
      MutexLock lock(mutex_);
      if (!dirty_.empty()) timeout_ms = static_cast<int>(quiet_.count() / 4) + 1;
    }
    pollfd fds[2] = {{inotify_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (poll(fds, 2, timeout_ms) < 0 && errno != EINTR) break;
    if (fds[1].revents) break;
    if (fds[0].revents & POLLIN) {
      ssize_t n;
      while ((n = read(inotify_, buffer.data(), buffer.size())) > 0) {
        for (char* p = buffer.data(); p < buffer.data() + n;) {
          auto* event = reinterpret_cast<inotify_event*>(p);
          p += sizeof(inotify_event) + event->len;
          if (event->len == 0) continue;
          MutexLock lock(mutex_);
          auto folder = folders_.find(event->wd);
          if (folder == folders_.end()) continue;
          const std::string path = (fs::path(folder->second) / event->name).string();
          if (!callbacks_.count(path)) continue;
          const auto now = clock_.Now();
          auto [dirty, added] = dirty_.try_emplace(path, Dirty{now, now});
          dirty->second.last = now;
        }
      }
    }
    // Files quiet long enough: call back, outside the lock.
    std::vector<std::function<void()>> due;
    {
      MutexLock lock(mutex_);
      const auto now = clock_.Now();
      for (auto it = dirty_.begin(); it != dirty_.end();) {
        // Quiet long enough, or changing for too long already: a file rewritten every 100 ms
        // would otherwise never be reloaded.
        if (now - it->second.last >= quiet_ || now - it->second.first >= max_delay_) {
          if (auto cb = callbacks_.find(it->first); cb != callbacks_.end()) due.push_back(cb->second);
          it = dirty_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& callback : due) callback();
  }
}

}  // namespace wasmlet::server
