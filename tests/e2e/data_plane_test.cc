// The data plane: requests served on the loop that owns their connection, functions that call
// each other, and the isolation of a slow function from the others. These tests run alone
// (RUN_SERIAL): they compare throughput measured in two phases of the same test.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "e2e/harness.h"

namespace wasmlet::testing {
namespace {

const std::string kGuests = WASMLET_TEST_GUESTS;
const std::string kExamples = WASMLET_EXAMPLES;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// What `clients` keep-alive connections posting to the echo function got in `length`.
struct Load {
  uint64_t answered = 0;
  uint64_t wrong = 0;  // not a 200 with the body sent
  double per_second() const { return static_cast<double>(answered) / seconds; }
  double seconds = 0;
};

Load DriveEcho(uint16_t port, int clients, Clock::duration length) {
  std::atomic<uint64_t> answered{0}, wrong{0};
  const auto start = Clock::now();
  const auto end = start + length;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      Client client(port);
      const std::string body = "hello from client " + std::to_string(c);
      while (Clock::now() < end) {
        auto response = client.Send("POST", "/", {{"id", "echo"}}, body);
        ++answered;
        if (response.status != 200 || response.body != body) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  Load load;
  load.answered = answered;
  load.wrong = wrong;
  load.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return load;
}

json FindFunction(const Wasmlet& server, const std::string& id) {
  json list = Body(Admin(server, "GET", "/wasm/list"));
  for (const auto& f : list) {
    if (f.value("id", "") == id) return f;
  }
  ADD_FAILURE() << "no function " << id << " in " << list.dump();
  return json::object();
}

// Item 4 of the data-plane issue: a function stuck in guest code until its CPU budget, kept
// busy by two clients, must not stall the others: echo keeps at least half its solo rate, and the
// slow function moves to the pool loops. How long the slowest echo request waits is a figure of
// the benchmarks (bench/run.sh, scenario g), not a bound here: a loaded machine decides it.
TEST(DataPlaneTest, AFunctionBurningItsCpuBudgetDoesNotStallTheOthers) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"echo", Plugin("echo", kExamples + "/echo.wasm", 0)},
                  {"slow", Plugin("slow", kGuests + "/abi_filter.wasm", 1, {{"cpu", 200}})}};
  // inline_limit_ms 130, under the 150-200 ms the slow function takes before it is stopped, and
  // over what an echo request has been charged on a loaded serving loop: 11-12 ms of CPU when V8
  // compiles under AddressSanitizer, about 100 ms under ThreadSanitizer (at 4a837ef as well) and
  // 79 ms once in a normal build; why an echo request is charged that much is not known yet. The
  // default 10 ms would move echo to the pool.
  const int inline_limit_ms = 130;
  Wasmlet server(
      dir, LayottoConfig(port, plugins, json::object(), {{"workers", 0}, {"inline_limit_ms", inline_limit_ms}}),
      port);
  EXPECT_EQ(FindFunction(server, "slow").value("placement", ""), "serving");

  const Load solo = DriveEcho(port, 8, 2s);
  ASSERT_GT(solo.answered, 100u);
  EXPECT_EQ(solo.wrong, 0u);

  std::atomic<bool> stop{false};
  std::atomic<int> slow_answers{0}, slow_wrong{0};
  std::vector<std::thread> hogs;
  for (int i = 0; i < 2; ++i) {
    hogs.emplace_back([&] {
      Client client(port);
      while (!stop) {
        auto response = client.Send("GET", "/", {{"id", "slow"}, {"x-op", "spin"}});
        ++slow_answers;
        if (response.status != 504 && response.status != 503) ++slow_wrong;
      }
    });
  }
  const Load shared = DriveEcho(port, 8, 2s);
  stop = true;
  for (auto& t : hogs) t.join();

  EXPECT_EQ(shared.wrong, 0u);
  EXPECT_EQ(slow_wrong, 0) << "the slow function answers 504 (past its budget) or 503 (queue full)";
  EXPECT_GE(slow_answers, 4) << "the slow function was kept busy";
  EXPECT_GE(shared.per_second(), 0.5 * kRateSlackUnderTsan * solo.per_second())
      << "echo alone: " << solo.per_second() << " req/s; beside the slow function: " << shared.per_second();
  // It got there by moving the slow function off the serving loops, and says so.
  const json slow = FindFunction(server, "slow");
  EXPECT_EQ(slow.value("placement", ""), "pool") << slow.dump();
  EXPECT_EQ(slow.value("instances", 0), 1) << "instance_num keeps its meaning after the move";
  EXPECT_NE(server.process().Log().find("now runs on the pool loops"), std::string::npos);
  EXPECT_EQ(FindFunction(server, "echo").value("placement", ""), "serving") << server.process().Log();
}

// A chain of proxy_invoke_service calls within the limit answers; one past it, and a cycle that
// never ends, get an error that names the chain instead of hanging.
TEST(DataPlaneTest, InvokeChainsNestUpToTheDepthLimitAndAnEndlessCycleIsNamed) {
  TempDir dir;
  const uint16_t port = FreePort();
  // Enough instances on the one loop for every level of the chain to nest there.
  json plugins = {{"a", Plugin("a", kGuests + "/relay_a.wasm", 4)},
                  {"b", Plugin("b", kGuests + "/relay_b.wasm", 4)}};
  Wasmlet server(dir, LayottoConfig(port, plugins, json::object(), {{"workers", 1}, {"max_invoke_depth", 8}}),
                 port);

  auto three = Get(port, "/", {{"id", "relay_a"}}, "3", "POST");
  EXPECT_EQ(three.status, 200);
  EXPECT_EQ(three.body, "relay_a(relay_b(relay_a(bottom)))");

  // 8 functions deep is the limit: relay_a with 7 makes 7 calls, 8 functions in all.
  auto deepest = Get(port, "/", {{"id", "relay_a"}}, "7", "POST");
  EXPECT_EQ(deepest.body, "relay_a(relay_b(relay_a(relay_b(relay_a(relay_b(relay_a(bottom)))))))");

  // Ended by the depth limit, which the answer names, not by a timeout.
  auto endless = Get(port, "/", {{"id", "relay_a"}}, "-1", "POST");
  EXPECT_NE(endless.body.find("deeper than 8 functions"), std::string::npos) << endless.body;
  EXPECT_NE(endless.body.find("relay_a -> relay_b -> relay_a -> relay_b -> relay_a -> relay_b -> relay_a -> "
                              "relay_b -> relay_a"),
            std::string::npos)
      << endless.body;
}

// A cycle through functions with too few instances to nest fails at once, naming the cycle,
// where it used to wait for invoke_timeout.
TEST(DataPlaneTest, ACycleWithNoFreeInstanceFailsAtOnceNamingIt) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"a", Plugin("a", kGuests + "/relay_a.wasm", 1)},
                  {"b", Plugin("b", kGuests + "/relay_b.wasm", 1)}};
  Wasmlet server(dir, LayottoConfig(port, plugins, json::object(), {{"workers", 1}}), port);
  // At once: the answer is the cycle check's, not invoke_timeout's ("did not answer within").
  auto cycle = Get(port, "/", {{"id", "relay_a"}}, "5", "POST");
  EXPECT_EQ(cycle.body.find("did not answer within"), std::string::npos) << cycle.body;
  EXPECT_NE(cycle.body.find(
                "is already in this chain of proxy_invoke_service calls (relay_a -> relay_b -> relay_a)"),
            std::string::npos)
      << cycle.body;
  EXPECT_NE(cycle.body.find("instance_num"), std::string::npos) << cycle.body;
}

// A request whose loop has no instance of its function runs on another loop's instance.
TEST(DataPlaneTest, AFunctionWithFewerInstancesThanLoopsServesEveryConnection) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"echo", Plugin("echo", kExamples + "/echo.wasm", 1)}};
  Wasmlet server(dir, LayottoConfig(port, plugins, json::object(), {{"workers", 4}}), port);
  // Connections spread over the 4 loops; 3 of them have no instance of echo.
  const Load load = DriveEcho(port, 16, 1s);
  EXPECT_GT(load.answered, 16u);
  EXPECT_EQ(load.wrong, 0u);
  EXPECT_EQ(FindFunction(server, "echo").value("instances", 0), 1);
}

}  // namespace
}  // namespace wasmlet::testing
