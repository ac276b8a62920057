#include "common/clock.h"

#include <algorithm>

namespace wasmlet {
namespace {

class RealClock final : public Clock {
 public:
  TimePoint Now() override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() override { return std::chrono::system_clock::now(); }
  bool WaitUntil(Mutex& mutex, CondVar& cv, TimePoint deadline) override REQUIRES(mutex) {
    if (deadline == TimePoint::max()) {  // wait_until would overflow converting it
      cv.Wait(mutex);
      return true;
    }
    return cv.WaitUntil(mutex, deadline);
  }
};

constexpr auto kManualStart = std::chrono::hours(1);
constexpr auto kManualWallStart = std::chrono::seconds(1704067200);  // 2024-01-01T00:00:00Z

}  // namespace

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

void Pause(Clock& clock, std::stop_token stop, std::chrono::milliseconds d) {
  Mutex mutex;
  CondVar wake;
  bool stopping = false;  // under mutex
  std::stop_callback on_stop(stop, [&] {
    MutexLock lock(mutex);
    stopping = true;
    wake.NotifyAll();
  });
  const auto until = clock.Now() + d;
  MutexLock lock(mutex);
  while (!stopping && clock.WaitUntil(mutex, wake, until)) {
  }
}

ManualClock::ManualClock() : now_ns_(std::chrono::nanoseconds(kManualStart).count()) {}

ManualClock::~ManualClock() = default;

Clock::WallTime ManualClock::WallNow() {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(
      kManualWallStart + (std::chrono::nanoseconds(now_ns_.load()) - kManualStart)));
}

bool ManualClock::WaitUntil(Mutex& mutex, CondVar& cv, TimePoint deadline) {
  Waiter waiter{&mutex, &cv, deadline};
  {
    // The time is read and the waiter registered under mutex_, which Advance moves the time
    // under: either this sees the new time, or Advance sees this waiter and notifies it under
    // `mutex`, which this thread lets go of only inside the wait.
    MutexLock lock(mutex_);
    if (Now() >= deadline) return false;
    waiters_.push_back(&waiter);
  }
  changed_.NotifyAll();
  cv.Wait(mutex);
  bool advancing;
  {
    MutexLock lock(mutex_);
    std::erase(waiters_, &waiter);
    advancing = waiter.notifying > 0;
  }
  changed_.NotifyAll();
  if (advancing) {
    // An Advance will still lock `mutex` to notify this waiter: let go of it until that is done,
    // since the waiter lives on this stack.
    mutex.Unlock();
    {
      MutexLock lock(mutex_);
      while (waiter.notifying > 0) changed_.Wait(mutex_);
    }
    mutex.Lock();
  }
  return Now() < deadline;
}

void ManualClock::Advance(std::chrono::nanoseconds by) {
  std::vector<Waiter*> woken;
  {
    MutexLock lock(mutex_);
    now_ns_ += by.count();
    woken.swap(waiters_);  // each counts again for AwaitWaiters once it waits again
    for (Waiter* waiter : woken) ++waiter->notifying;
  }
  // Without mutex_: a waiter holds its own lock when it takes mutex_, so taking the two in the
  // other order here could deadlock.
  for (Waiter* waiter : woken) {
    waiter->mutex->Lock();
    waiter->cv->NotifyAll();
    waiter->mutex->Unlock();
  }
  {
    MutexLock lock(mutex_);
    for (Waiter* waiter : woken) --waiter->notifying;
  }
  changed_.NotifyAll();
}

bool ManualClock::AwaitWaiter(TimePoint deadline, std::chrono::milliseconds patience) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  MutexLock lock(mutex_);
  auto found = [&]() REQUIRES(mutex_) {
    return std::any_of(waiters_.begin(), waiters_.end(),
                       [&](const Waiter* w) { return w->deadline <= deadline; });
  };
  while (!found()) {
    if (!changed_.WaitUntil(mutex_, give_up)) return found();
  }
  return true;
}

}  // namespace wasmlet
