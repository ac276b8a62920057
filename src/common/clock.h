// Where code that decides by time (timeouts, deadlines, back-offs, expiries, quiet periods) gets
// its time, so that a test can move it (the way LevelDB's Env does). Production runs on
// SystemClock(); a test hands a ManualClock, whose time moves only when the test advances it.
//
// A clock is passed in (a constructor argument or an Options field that defaults to
// SystemClock()), never read from a global: two objects in one test can run on different clocks,
// a test's clock cannot leak into the next test, and what depends on time shows in signatures.
// A deadline is a time of the clock of whoever waits for it: a deadline handed to an engine is
// read from that engine's clock.
//
// Pure measurements (a latency, a log's timestamp) stay on std::chrono: moving them proves
// nothing. See docs/architecture.md, "Time".
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>
#include <vector>

#include "common/mutex.h"

namespace wasmlet {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using WallTime = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;
  // Monotonic time: for deadlines, timeouts, back-offs and rates.
  virtual TimePoint Now() = 0;
  // Calendar time: only for times kept where a restart finds them (a file, another process).
  virtual WallTime WallNow() = 0;
  // Waits on `cv`, letting go of `mutex` meanwhile, until it is notified or this clock reaches
  // `deadline` (TimePoint::max(): no deadline). False when the deadline was reached. A wake
  // may be spurious: wait in a loop that checks the condition, as with CondVar.
  virtual bool WaitUntil(Mutex& mutex, CondVar& cv, TimePoint deadline) REQUIRES(mutex) = 0;
};

// The steady and system clocks of std::chrono; waits are the condition variable's own.
Clock& SystemClock();

// Sleeps `d` on `clock`, or less when `stop` is asked (a reader thread's pause between tries).
void Pause(Clock& clock, std::stop_token stop, std::chrono::milliseconds d);

// A clock for tests: it starts at a fixed time (one hour past the steady clock's epoch, a whole
// number of milliseconds; 2024-01-01 UTC on the calendar) and moves only in Advance.
// Thread-safe.
class ManualClock final : public Clock {
 public:
  ManualClock();
  ~ManualClock() override;
  ManualClock(const ManualClock&) = delete;
  ManualClock& operator=(const ManualClock&) = delete;

  TimePoint Now() override { return TimePoint(std::chrono::nanoseconds(now_ns_.load())); }
  WallTime WallNow() override;
  bool WaitUntil(Mutex& mutex, CondVar& cv, TimePoint deadline) override REQUIRES(mutex);

  // Moves the time on by `by` and wakes every thread waiting on this clock, so that the ones
  // whose deadline came see it. Never call it holding a lock a waiter waits with.
  void Advance(std::chrono::nanoseconds by) EXCLUDES(mutex_);
  // Blocks until a thread waits in WaitUntil for `deadline` or an earlier one (any deadline,
  // when not given), having seen the current time: a thread that waited before the last Advance
  // counts once it waits again. Then a test knows that thread reached its wait before it moves
  // the time or makes the event waited for. False if that does not happen within `patience` of
  // real time, so that a test fails instead of hanging.
  bool AwaitWaiter(TimePoint deadline = TimePoint::max(),
                   std::chrono::milliseconds patience = std::chrono::seconds(30)) EXCLUDES(mutex_);

 private:
  struct Waiter {
    Mutex* mutex;
    CondVar* cv;
    TimePoint deadline;
    int notifying = 0;  // under mutex_: Advances that will still lock `mutex` to notify it
  };

  std::atomic<int64_t> now_ns_;
  Mutex mutex_;
  CondVar changed_;                                  // a waiter came or went, or an Advance is done
  std::vector<Waiter*> waiters_ GUARDED_BY(mutex_);  // since the last Advance
};

}  // namespace wasmlet
