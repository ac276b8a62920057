#include "engine/watchdog.h"

#include <gtest/gtest.h>

#include <atomic>

namespace wasmlet::engine {
namespace {

using namespace std::chrono_literals;

TEST(WatchdogTest, FiresInDeadlineOrder) {
  Watchdog watchdog;
  std::mutex mutex;
  std::vector<int> order;
  const auto now = Watchdog::Clock::now();
  watchdog.Arm(now + 30ms, [&] {
    std::lock_guard l(mutex);
    order.push_back(3);
  });
  watchdog.Arm(now + 10ms, [&] {
    std::lock_guard l(mutex);
    order.push_back(1);
  });
  auto t = watchdog.Arm(now + 20ms, [&] {
    std::lock_guard l(mutex);
    order.push_back(2);
  });
  std::this_thread::sleep_for(60ms);
  EXPECT_TRUE(watchdog.Disarm(t));  // already fired
  std::lock_guard l(mutex);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(WatchdogTest, DisarmedTicketNeverFires) {
  Watchdog watchdog;
  std::atomic<bool> fired{false};
  auto t = watchdog.Arm(Watchdog::Clock::now() + 20ms, [&] { fired = true; });
  EXPECT_FALSE(watchdog.Disarm(t));
  std::this_thread::sleep_for(40ms);
  EXPECT_FALSE(fired);
}

}  // namespace
}  // namespace wasmlet::engine
