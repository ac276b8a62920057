#include "engine/watchdog.h"

namespace wasmlet::engine {

Watchdog::Watchdog(Clock& clock) : clock_(clock), thread_([this] { Run(); }) {}

Watchdog::~Watchdog() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.NotifyAll();
  thread_.join();
}

Watchdog::Ticket Watchdog::Arm(Clock::TimePoint deadline, std::function<void()> fire) {
  MutexLock lock(mutex_);
  const Ticket ticket = next_ticket_++;
  auto it = pending_.emplace(deadline, Entry{ticket, std::move(fire)});
  by_ticket_.emplace(ticket, it);
  if (deadline < sleeping_until_) wake_.NotifyAll();
  return ticket;
}

bool Watchdog::Disarm(Ticket ticket) {
  MutexLock lock(mutex_);
  auto it = by_ticket_.find(ticket);
  if (it == by_ticket_.end()) return true;  // fired (callbacks run under the lock)
  pending_.erase(it->second);
  by_ticket_.erase(it);
  return false;
}

void Watchdog::Run() {
  MutexLock lock(mutex_);
  while (!stopping_) {
    if (pending_.empty()) {
      sleeping_until_ = Clock::TimePoint::max();
      wake_.Wait(mutex_);
      continue;
    }
    auto first = pending_.begin();
    if (clock_.Now() < first->first) {
      sleeping_until_ = first->first;
      clock_.WaitUntil(mutex_, wake_, sleeping_until_);
      sleeping_until_ = clock_.Now();  // awake: Arm need not notify
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
