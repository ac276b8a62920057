#include "engine/watchdog.h"

namespace wasmlet::engine {

Watchdog::Watchdog() : thread_([this] { Run(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Watchdog::Ticket Watchdog::Arm(Clock::time_point deadline, std::function<void()> fire) {
  std::lock_guard lock(mutex_);
  const Ticket ticket = next_ticket_++;
  auto it = pending_.emplace(deadline, Entry{ticket, std::move(fire)});
  by_ticket_.emplace(ticket, it);
  if (deadline < sleeping_until_) wake_.notify_all();
  return ticket;
}

bool Watchdog::Disarm(Ticket ticket) {
  std::lock_guard lock(mutex_);
  auto it = by_ticket_.find(ticket);
  if (it == by_ticket_.end()) return true;  // fired (callbacks run under the lock)
  pending_.erase(it->second);
  by_ticket_.erase(it);
  return false;
}

void Watchdog::Run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (pending_.empty()) {
      sleeping_until_ = Clock::time_point::max();
      wake_.wait(lock);
      continue;
    }
    auto first = pending_.begin();
    if (Clock::now() < first->first) {
      sleeping_until_ = first->first;
      wake_.wait_until(lock, sleeping_until_);
      sleeping_until_ = Clock::now();  // awake: Arm need not notify
      continue;
    }
    Entry entry = std::move(first->second);
    by_ticket_.erase(entry.ticket);
    pending_.erase(first);
    // Under the lock, so that Disarm can promise the callback is not running.
    entry.fire();
  }
}

}  // namespace wasmlet::engine
