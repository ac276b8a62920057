// The server's last log lines, kept in memory for the dashboard and GET /logs: a sink the CLI
// adds to the default logger beside stdout. Two rings: every line, and warnings and errors only,
// so that a guest printing at info level cannot push the last error out of sight.
#pragma once

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "common/mutex.h"

namespace wasmlet::server {

// base_sink's own lock is a no-op: the rings have a Mutex of their own, which the analysis sees.
class LogRing : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  struct Line {
    uint64_t seq = 0;  // 1, 2, ... in the order logged; both rings share the numbering
    std::chrono::system_clock::time_point time;
    std::string level;  // "info", "warning", "error", ...
    std::string message;
  };

  // A line longer than this is kept cut, with "..." after it: a guest that logs megabytes per
  // line must not make the rings hold gigabytes.
  static constexpr size_t kMaxLineBytes = 4096;

  explicit LogRing(size_t lines = 500, size_t problems = 100)
      : capacity_(lines), problem_capacity_(problems) {}

  // Lines numbered after `after`, oldest first; from the ring of warnings and errors only when
  // `problems_only`.
  std::vector<Line> After(uint64_t after, bool problems_only) EXCLUDES(ring_mutex_);

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override EXCLUDES(ring_mutex_);
  void flush_() override {}

 private:
  const size_t capacity_;
  const size_t problem_capacity_;
  Mutex ring_mutex_;
  uint64_t next_seq_ GUARDED_BY(ring_mutex_) = 1;
  std::deque<Line> lines_ GUARDED_BY(ring_mutex_);
  std::deque<Line> problems_ GUARDED_BY(ring_mutex_);
};

}  // namespace wasmlet::server
