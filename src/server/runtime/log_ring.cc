#include "server/runtime/log_ring.h"

#include <algorithm>

namespace wasmlet::server {

void LogRing::sink_it_(const spdlog::details::log_msg& msg) {
  const auto level = spdlog::level::to_string_view(msg.level);
  Line line{0, msg.time, std::string(level.data(), level.size()),
            std::string(msg.payload.data(), std::min(msg.payload.size(), kMaxLineBytes))};
  if (msg.payload.size() > kMaxLineBytes) line.message += "...";
  MutexLock lock(ring_mutex_);
  line.seq = next_seq_++;
  if (msg.level >= spdlog::level::warn) {
    problems_.push_back(line);
    if (problems_.size() > problem_capacity_) problems_.pop_front();
  }
  lines_.push_back(std::move(line));
  if (lines_.size() > capacity_) lines_.pop_front();
}

std::vector<LogRing::Line> LogRing::After(uint64_t after, bool problems_only) {
  MutexLock lock(ring_mutex_);
  const auto& ring = problems_only ? problems_ : lines_;
  auto first = std::find_if(ring.begin(), ring.end(), [after](const Line& l) { return l.seq > after; });
  return {first, ring.end()};
}

}  // namespace wasmlet::server
