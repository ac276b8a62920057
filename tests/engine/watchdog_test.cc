// The watchdog on a ManualClock: it fires what is due when the test moves the time, and the
// test waits for the callbacks themselves rather than for an amount of real time.
#include "engine/watchdog.h"

#include <gtest/gtest.h>

#include <vector>

namespace wasmlet::engine {
namespace {

using namespace std::chrono_literals;

// What the watchdog's callbacks did, and a way to wait for it.
class Fired {
 public:
  std::function<void()> Record(int id) {
    return [this, id] {
      MutexLock lock(mutex_);
      order_.push_back(id);
      changed_.NotifyAll();
    };
  }
  // The callbacks fired so far, once there are `count` of them.
  std::vector<int> AwaitCount(size_t count) {
    MutexLock lock(mutex_);
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (order_.size() < count && changed_.WaitUntil(mutex_, give_up)) {
    }
    return order_;
  }

 private:
  Mutex mutex_;
  CondVar changed_;
  std::vector<int> order_ GUARDED_BY(mutex_);
};

TEST(WatchdogTest, FiresInDeadlineOrderWhenTheirTimeComesAndNotBefore) {
  ManualClock clock;
  Watchdog watchdog(clock);
  Fired fired;
  const auto now = clock.Now();
  watchdog.Arm(now + 30ms, fired.Record(3));
  watchdog.Arm(now + 10ms, fired.Record(1));
  watchdog.Arm(now + 20ms, fired.Record(2));

  // The watchdog waits for the first deadline; just before it, nothing fires.
  ASSERT_TRUE(clock.AwaitWaiter(now + 10ms));
  clock.Advance(9ms);
  ASSERT_TRUE(clock.AwaitWaiter(now + 10ms));  // it looked at the new time and waits again
  EXPECT_TRUE(fired.AwaitCount(0).empty());

  clock.Advance(21ms);
  EXPECT_EQ(fired.AwaitCount(3), (std::vector<int>{1, 2, 3}));
}

TEST(WatchdogTest, ADisarmedTicketNeverFires) {
  ManualClock clock;
  Watchdog watchdog(clock);
  Fired fired;
  auto disarmed = watchdog.Arm(clock.Now() + 20ms, fired.Record(1));
  watchdog.Arm(clock.Now() + 30ms, fired.Record(2));
  EXPECT_FALSE(watchdog.Disarm(disarmed));
  clock.Advance(40ms);
  // Deadlines fire in order: once the later one has, the disarmed one had its chance.
  EXPECT_EQ(fired.AwaitCount(1), (std::vector<int>{2}));
}

TEST(WatchdogTest, ADeadlineAlreadyPastFiresAtOnce) {
  ManualClock clock;
  Watchdog watchdog(clock);
  Fired fired;
  auto ticket = watchdog.Arm(clock.Now() - 1ms, fired.Record(1));
  EXPECT_EQ(fired.AwaitCount(1), (std::vector<int>{1}));  // without moving the clock
  EXPECT_TRUE(watchdog.Disarm(ticket));
}

}  // namespace
}  // namespace wasmlet::engine
