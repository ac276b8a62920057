// FunctionPool on real event loops and a real engine: the races of the old worker design, each
// pinned by a test (the data-plane issue, item 8). A request reaches a pool from a thread that
// is not a loop here, so it always takes the hand-off path the loops use between each other.
#include "server/functions/function_pool.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "abi/shared_state.h"
#include "e2e/harness.h"
#include "test_support.h"

namespace wasmlet::server {
namespace {

using namespace std::chrono_literals;
using testing::GuestBytes;

engine::Engine& SharedEngine() {
  static std::unique_ptr<engine::Engine> engine = std::move(*engine::CreateEngine());
  return *engine;
}

// Counts the frees of the memory of a shared_ptr made with it (allocate_shared): its object and
// control block go together once no shared_ptr or weak_ptr is left, timers' handlers included.
template <typename T>
struct CountingAllocator {
  using value_type = T;
  explicit CountingAllocator(std::atomic<int>* frees) : frees(frees) {}
  template <typename U>
  CountingAllocator(const CountingAllocator<U>& other) : frees(other.frees) {}
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) {
    ++*frees;
    std::allocator<T>().deallocate(p, n);
  }
  bool operator==(const CountingAllocator& other) const { return frees == other.frees; }
  std::atomic<int>* frees;
};

abi::HttpRequest Op(const std::string& op) {
  abi::HttpRequest request;
  request.headers = {{"x-op", op}};
  return request;
}

class FunctionPoolTest : public ::testing::Test {
 protected:
  void StartLoops(int count) {
    for (int i = 0; i < count; ++i) {
      loops_.push_back(std::make_unique<EventLoop>(
          EventLoop::Options{.name = "loop " + std::to_string(i), .index = i, .engine = &SharedEngine()}));
    }
    for (auto& loop : loops_) {
      ASSERT_TRUE(loop->WaitReady().ok());
      context_.serving.push_back(loop.get());
    }
    ASSERT_TRUE(control_.WaitReady().ok());
    context_.control = &control_;
    context_.metrics = &metrics_;
    context_.queue_timeout = 1000ms;
  }

  void TearDown() override {
    for (auto& pool : pools_) pool->Retire(nullptr);
    Drain();
    pools_.clear();
  }

  // Waits until every loop has run what was posted to it so far.
  void Drain() {
    control_.RunAndWait([] {});
    for (auto& loop : loops_) loop->RunAndWait([] {});
  }

  // A pool of abi_filter with `configuration` as its plugin configuration. With `frees`, that
  // counts when nothing holds the pool any more, not even weakly.
  std::shared_ptr<FunctionPool> MakePool(const std::string& configuration, int instances, Status* started,
                                         std::atomic<int>* frees = nullptr) {
    static const auto module = *SharedEngine().Compile(GuestBytes("abi_filter"));
    auto spec = std::make_shared<abi::PluginSpec>();
    spec->name = spec->vm_id = "f";
    spec->plugin_configuration = configuration;
    abi::HostServices services;
    services.shared = shared_;
    FunctionPool::Params params{
        .config = {}, .spec = spec, .module = module, .services = services, .md5 = "", .cpu_limit = 1000ms};
    auto pool = frees ? std::allocate_shared<FunctionPool>(CountingAllocator<FunctionPool>(frees),
                                                           std::move(params), context_)
                      : std::make_shared<FunctionPool>(std::move(params), context_);
    *started = pool->AddInstances(instances);
    pools_.push_back(pool);
    return pool;
  }

  static Result<abi::HttpResponse> RunAndWait(FunctionPool& pool, abi::HttpRequest request) {
    std::promise<Result<abi::HttpResponse>> answer;
    pool.Run(std::move(request), [&](Result<abi::HttpResponse> r) { answer.set_value(std::move(r)); });
    return answer.get_future().get();
  }

  std::shared_ptr<abi::SharedState> shared_ = std::make_shared<abi::SharedState>(abi::HostLimits{});
  Metrics metrics_;
  EventLoop control_{EventLoop::Options{.name = "control"}};
  std::vector<std::unique_ptr<EventLoop>> loops_;
  PoolContext context_;
  std::vector<std::shared_ptr<FunctionPool>> pools_;
};

// A request given to a version retired a moment before (a reload picked the new one in between)
// goes to its successor at once. It used to wait queue_timeout_ms and get a 503.
TEST_F(FunctionPoolTest, ARequestForARetiredVersionGoesToItsSuccessorAtOnce) {
  StartLoops(2);
  Status started;
  auto old_version = MakePool("", 1, &started);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto new_version = MakePool("", 1, &started);
  ASSERT_TRUE(started.ok()) << started.ToString();
  old_version->Retire(new_version);
  ASSERT_EQ(old_version->Counts().live, 0u);  // no instance of its own is left to run it

  // Queued on the retired version, the request would end at queue_timeout with "no instance of
  // ... became free within 1000 ms" (RESOURCE_EXHAUSTED); an answer from the guest is the
  // successor's.
  auto answer = RunAndWait(*old_version, Op("local"));
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->status, 403u);  // abi_filter's own local response
}

// A resize that fails part-way keeps the instances that ran before and destroys the ones it did
// start. They used to stay behind, retired but never destroyed.
TEST_F(FunctionPoolTest, AResizeThatFailsPartWayLeavesNoInstanceBehind) {
  StartLoops(1);  // one loop: the instances start one after the other, in order
  Status started;
  auto pool = MakePool("starts=3", 2, &started);
  ASSERT_TRUE(started.ok()) << started.ToString();

  Status resized = pool->Resize(4);  // the third instance starts, the fourth refuses
  EXPECT_FALSE(resized.ok());
  EXPECT_NE(resized.message().find("proxy_on_configure"), std::string::npos) << resized.ToString();
  Drain();
  const PoolCounts counts = pool->Counts();
  EXPECT_EQ(counts.live, 2u);
  EXPECT_EQ(counts.retiring, 0u) << "the instance that did start was not destroyed";
  EXPECT_EQ(RunAndWait(*pool, Op("local"))->status, 403u);
}

// An instance that cannot be replaced arms a back-off timer. When the loops stop before it
// fires, it must go with them: it used to fire later, on the watchdog thread, into destroyed
// workers (AddressSanitizer saw the use after free).
TEST_F(FunctionPoolTest, ABackOffTimerDoesNotOutliveTheLoops) {
  StartLoops(1);
  Status started;
  std::atomic<int> frees{0};
  auto pool = MakePool("starts=1", 1, &started, &frees);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto trapped = RunAndWait(*pool, Op("trap"));
  EXPECT_FALSE(trapped.ok());
  Drain();
  EXPECT_EQ(pool->Counts().live, 1u);  // dead, waiting for its restart
  const auto counted = metrics_.Prometheus({});
  EXPECT_NE(counted.find("wasmlet_start_failures_total{id=\"\"} 1"), std::string::npos) << counted;

  pool->Retire(nullptr);
  Drain();
  pools_.clear();
  pool.reset();
  loops_.clear();  // the back-off (100 ms) is still pending: it goes with its loop
  // Its handler held the pool weakly: nothing holds it now, so nothing is left to fire.
  EXPECT_EQ(frees, 1) << "something outlived the loops holding the pool";
}

// Queue notifications arrive from other threads at any moment, also while the instance that
// registered the queue is being destroyed. The notifier used to point into the instance.
TEST_F(FunctionPoolTest, QueueNotificationsDuringTheDestructionOfTheSubscriberAreSafe) {
  StartLoops(1);
  for (int round = 0; round < 20; ++round) {
    Status started;
    auto pool = MakePool("", 1, &started);
    ASSERT_TRUE(started.ok()) << started.ToString();
    auto subscribed = RunAndWait(*pool, Op("subscribe"));
    ASSERT_TRUE(subscribed.ok());
    EXPECT_NE(subscribed->body.find("subscribed=yes"), std::string::npos) << subscribed->body;
    auto queue = shared_->ResolveQueue("f", "jobs");
    ASSERT_TRUE(queue.has_value());

    std::atomic<bool> stop{false};
    std::atomic<int> published{0};
    std::thread publisher([&] {
      while (!stop) {
        shared_->Enqueue(*queue, "an item");
        ++published;
        std::string drained;
        shared_->Dequeue(*queue, drained);  // keep the queue under its limits
      }
    });
    // Notifications are arriving when it goes: the publisher has posted some already.
    while (published < 50) std::this_thread::yield();
    pool->Retire(nullptr);
    Drain();
    stop = true;
    publisher.join();
    EXPECT_EQ(pool->Counts().retiring, 0u);
  }
}

// Ticks and queue notifications reach an idle instance through its loop, with no polling.
TEST_F(FunctionPoolTest, TicksAndQueueNotificationsReachAnIdleInstance) {
  StartLoops(1);
  Status started;
  auto pool = MakePool("tick=20", 1, &started);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(RunAndWait(*pool, Op("subscribe")).ok());
  auto queue = shared_->ResolveQueue("f", "jobs");
  ASSERT_TRUE(queue.has_value());
  EXPECT_EQ(shared_->Enqueue(*queue, "delivered"), abi::WasmResult::kOk);
  Drain();  // the notification was posted to the loop by Enqueue: it has run once this returns
  auto counters = RunAndWait(*pool, Op("counters"));
  ASSERT_TRUE(counters.ok());
  EXPECT_NE(counters->body.find("last_queue_item=delivered"), std::string::npos) << counters->body;
  // A tick comes only to an idle instance (a busy one skips it): look until one came. Between
  // two looks (20 ms apart) the instance idles, as long as a tick period.
  std::string body = counters->body;
  EXPECT_TRUE(testing::Eventually([&] {
    auto again = RunAndWait(*pool, Op("counters"));
    body = again.ok() ? again->body : again.status().ToString();
    return body.find("ticks=0\n") == std::string::npos;
  })) << body;
}

}  // namespace
}  // namespace wasmlet::server
