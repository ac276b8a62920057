// Runs callbacks at deadlines of its clock, on one thread of its own. Used to stop guest calls
// that run too long: the callback interrupts the engine from outside the thread that runs the
// guest.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <thread>

#include "common/clock.h"
#include "common/mutex.h"

namespace wasmlet::engine {

class Watchdog {
 public:
  using Ticket = uint64_t;

  explicit Watchdog(Clock& clock = SystemClock());
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Calls `fire` on the watchdog thread at `deadline` unless disarmed first.
  Ticket Arm(Clock::TimePoint deadline, std::function<void()> fire) EXCLUDES(mutex_);
  // After Disarm returns, the ticket's callback is not running and never will.
  // Returns true if it had already fired.
  bool Disarm(Ticket ticket) EXCLUDES(mutex_);
  Clock& clock() const { return clock_; }

 private:
  void Run() EXCLUDES(mutex_);

  struct Entry {
    Ticket ticket;
    std::function<void()> fire;
  };
  Clock& clock_;
  Mutex mutex_;
  CondVar wake_;
  std::multimap<Clock::TimePoint, Entry> pending_ GUARDED_BY(mutex_);
  std::map<Ticket, std::multimap<Clock::TimePoint, Entry>::iterator> by_ticket_ GUARDED_BY(mutex_);
  Ticket next_ticket_ GUARDED_BY(mutex_) = 1;
  bool stopping_ GUARDED_BY(mutex_) = false;
  // When the thread will wake by itself; Arm wakes it earlier only for an earlier deadline,
  // so that the common case (a call that ends long before its deadline) costs no wake-up.
  Clock::TimePoint sleeping_until_ GUARDED_BY(mutex_) = Clock::TimePoint::max();
  std::thread thread_;
};

}  // namespace wasmlet::engine
