#include "server/runtime/event_loop.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace wasmlet::server {
namespace {

// Issue 26, bug 3: an exception thrown by the function RunAndWait runs used to be logged by the
// loop and never reach the caller, who then waited forever. It reaches the caller now, and the
// loop goes on serving.
TEST(EventLoopTest, RunAndWaitHandsTheFunctionsExceptionToItsCaller) {
  EventLoop loop(EventLoop::Options{.name = "test"});
  ASSERT_TRUE(loop.WaitReady().ok());
  EXPECT_THROW(loop.RunAndWait([] { throw std::runtime_error("the function failed"); }), std::runtime_error);
  bool ran = false;
  loop.RunAndWait([&] { ran = loop.IsCurrent(); });
  EXPECT_TRUE(ran) << "the loop still runs work after the exception";
}

}  // namespace
}  // namespace wasmlet::server
