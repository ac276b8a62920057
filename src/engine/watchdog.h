// Runs callbacks at deadlines, on one thread of its own. Used to stop guest calls that run
// too long: the callback interrupts the engine from outside the thread that runs the guest.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace wasmlet::engine {

class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;
  using Ticket = uint64_t;

  Watchdog();
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Calls `fire` on the watchdog thread at `deadline` unless disarmed first.
  Ticket Arm(Clock::time_point deadline, std::function<void()> fire);
  // After Disarm returns, the ticket's callback is not running and never will.
  // Returns true if it had already fired.
  bool Disarm(Ticket ticket);

 private:
  void Run();

  struct Entry {
    Ticket ticket;
    std::function<void()> fire;
  };
  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<Clock::time_point, Entry> pending_;
  std::map<Ticket, std::multimap<Clock::time_point, Entry>::iterator> by_ticket_;
  Ticket next_ticket_ = 1;
  bool stopping_ = false;
  // When the thread will wake by itself; Arm wakes it earlier only for an earlier deadline,
  // so that the common case (a call that ends long before its deadline) costs no wake-up.
  Clock::time_point sleeping_until_ = Clock::time_point::max();
  std::thread thread_;
};

}  // namespace wasmlet::engine
