// The engine contract, exercised through the public interface with guests built from source.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "test_support.h"

namespace wasmlet::engine {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::GuestBytes;
using testing::ModuleBytes;

const FunctionType kI32I32_I32{{ValType::kI32, ValType::kI32}, {ValType::kI32}};
const FunctionType kVoid{{}, {}};
const FunctionType kI32_I32{{ValType::kI32}, {ValType::kI32}};
const FunctionType kI64F64_I64{{ValType::kI64, ValType::kF64}, {ValType::kI64}};

Engine& SharedEngine() {
  static std::unique_ptr<Engine> engine = [] {
    auto created = CreateEngine("v8");
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return std::move(*created);
  }();
  return *engine;
}

// Host functions the engine_basics guest imports. host_add sums its arguments and records
// what it saw; host_fail stops the guest with kExit.
struct HostLog {
  std::atomic<int> calls{0};
  int last_a = 0;
  int last_b = 0;
};

// `host_add`, when given, replaces the default implementation.
std::shared_ptr<HostFunctions> BasicHost(HostLog* log, HostCallback host_add = {}) {
  auto host = std::make_shared<HostFunctions>();
  if (!host_add) {
    host_add = [log](Instance&, std::span<const Value> args, std::span<Value> results) {
      log->calls++;
      log->last_a = args[0].i32;
      log->last_b = args[1].i32;
      results[0].i32 = args[0].i32 + args[1].i32;
      return Status::Ok();
    };
  }
  host->Add("env", "host_add", kI32I32_I32, std::move(host_add));
  host->Add("env", "host_noop", kVoid, [log](Instance&, std::span<const Value>, std::span<Value>) {
    log->calls++;
    return Status::Ok();
  });
  host->Add("env", "host_fail", kI32_I32, [](Instance&, std::span<const Value> args, std::span<Value>) {
    return Status(StatusCode::kExit, "guest exited with code " + std::to_string(args[0].i32));
  });
  host->Add("env", "host_wide", kI64F64_I64,
            [](Instance&, std::span<const Value> args, std::span<Value> results) {
              results[0].i64 = args[0].i64 * 2 + static_cast<int64_t>(args[1].f64 * 10);
              return Status::Ok();
            });
  return host;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto module = engine_->Compile(GuestBytes("engine_basics"));
    ASSERT_TRUE(module.ok()) << module.status().ToString();
    module_ = *module;
    auto store = engine_->NewStore();
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    host_ = BasicHost(&log_);
  }

  std::unique_ptr<Instance> NewInstance(std::shared_ptr<const Module> module = nullptr) {
    auto instance = store_->Instantiate(module ? module : module_, host_);
    EXPECT_TRUE(instance.ok()) << instance.status().ToString();
    return instance.ok() ? std::move(*instance) : nullptr;
  }

  int32_t CallI32(Instance& instance, std::string_view name, std::vector<Value> args = {}) {
    auto results = instance.Call(name, args);
    EXPECT_TRUE(results.ok()) << name << ": " << results.status().ToString();
    return results.ok() && !results->empty() ? (*results)[0].i32 : INT32_MIN;
  }

  Engine* engine_ = &SharedEngine();
  HostLog log_;
  std::shared_ptr<const Module> module_;
  std::unique_ptr<Store> store_;
  std::shared_ptr<HostFunctions> host_;
};

// The same, on an engine of its own whose deadlines are times of a ManualClock: a guest is
// stopped when the test moves the time to its deadline, never because of how long it really ran
// (a busy machine makes that anything). The test's thread runs the guest; another moves the time.
class ManualClockEngineTest : public EngineTest {
 protected:
  void SetUp() override {
    auto created = CreateEngine("v8", clock_);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    own_engine_ = std::move(*created);
    engine_ = own_engine_.get();
    EngineTest::SetUp();
  }
  void TearDown() override {
    store_.reset();  // before its engine
    module_.reset();
  }

  ManualClock clock_;
  std::unique_ptr<Engine> own_engine_;
};

TEST_F(EngineTest, CallsExportsAndReturnsTheirResults) {
  auto instance = NewInstance();
  ASSERT_TRUE(instance);
  EXPECT_EQ(CallI32(*instance, "add", {Value::I32(2), Value::I32(40)}), 42);
  EXPECT_EQ(CallI32(*instance, "add", {Value::I32(INT32_MAX), Value::I32(1)}), INT32_MIN);  // wraps

  auto wide = instance->Call("mul64", std::vector{Value::I64(3'000'000'000), Value::I64(-7)});
  ASSERT_TRUE(wide.ok()) << wide.status().ToString();
  EXPECT_EQ((*wide)[0].type, ValType::kI64);
  EXPECT_EQ((*wide)[0].i64, -21'000'000'000);

  auto half = instance->Call("half", std::vector{Value::F64(3.0)});
  ASSERT_TRUE(half.ok());
  EXPECT_DOUBLE_EQ((*half)[0].f64, 1.5);

  auto none = instance->Call("noop", {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(EngineTest, RejectsCallsThatDoNotMatchTheExport) {
  auto instance = NewInstance();
  auto missing = instance->Call("no_such_export", {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no_such_export"), std::string::npos);

  auto arity = instance->Call("add", std::vector{Value::I32(1)});
  EXPECT_EQ(arity.status().code(), StatusCode::kInvalidArgument);
  auto type = instance->Call("add", std::vector{Value::I32(1), Value::I64(2)});
  EXPECT_EQ(type.status().code(), StatusCode::kInvalidArgument);
  // A refused call is the caller's mistake: the instance stays usable.
  EXPECT_EQ(CallI32(*instance, "add", {Value::I32(1), Value::I32(2)}), 3);
}

TEST_F(EngineTest, GuestCallsHostFunctionWithArgumentsAndResult) {
  auto instance = NewInstance();
  EXPECT_EQ(CallI32(*instance, "call_host", {Value::I32(20), Value::I32(1)}), 42);
  EXPECT_EQ(log_.calls, 1);
  EXPECT_EQ(log_.last_a, 20);
  EXPECT_EQ(log_.last_b, 1);

  auto wide = instance->Call("call_host_wide", std::vector{Value::I64(1LL << 40)});
  ASSERT_TRUE(wide.ok()) << wide.status().ToString();
  EXPECT_EQ((*wide)[0].i64, (1LL << 41) + 5 + 1);
}

TEST_F(EngineTest, HostFunctionSeesTheCallingInstanceAndItsData) {
  int tag_first = 1;
  int tag_second = 2;
  std::vector<int> seen;
  auto host = BasicHost(&log_, [&seen](Instance& caller, std::span<const Value>, std::span<Value> r) {
    seen.push_back(*static_cast<int*>(caller.host_data()));
    r[0].i32 = 0;
    return Status::Ok();
  });
  auto a = store_->Instantiate(module_, host);
  auto b = store_->Instantiate(module_, host);
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->set_host_data(&tag_first);
  (*b)->set_host_data(&tag_second);
  CallI32(**b, "call_host", {Value::I32(0), Value::I32(0)});
  CallI32(**a, "call_host", {Value::I32(0), Value::I32(0)});
  EXPECT_EQ(seen, (std::vector<int>{2, 1}));
}

TEST_F(EngineTest, ReadsAndWritesGuestMemoryWithBoundsChecks) {
  auto instance = NewInstance();
  const uint32_t buffer = static_cast<uint32_t>(CallI32(*instance, "buffer_address"));
  ASSERT_GT(buffer, 0u);

  const std::vector<uint8_t> data = {1, 2, 3, 4, 250};
  ASSERT_TRUE(instance->WriteMemory(buffer, data).ok());
  EXPECT_EQ(CallI32(*instance, "sum_buffer", {Value::I32(5)}), 260);

  CallI32(*instance, "fill_buffer", {Value::I32(7)});
  std::vector<uint8_t> back(4);
  ASSERT_TRUE(instance->ReadMemory(buffer, back).ok());
  EXPECT_EQ(back, (std::vector<uint8_t>{7, 7, 7, 7}));
  auto word = instance->ReadU32(buffer);
  ASSERT_TRUE(word.ok());
  EXPECT_EQ(*word, 0x07070707u);

  const uint64_t size = instance->MemorySize();
  ASSERT_EQ(size % 65536, 0u);
  EXPECT_TRUE(instance->Memory(size, 0).ok());      // empty range at the end is fine
  EXPECT_TRUE(instance->Memory(size - 4, 4).ok());  // last word
  for (auto [offset, length] : std::vector<std::pair<uint64_t, uint64_t>>{
           {size - 3, 4}, {size, 1}, {size + 1, 0}, {0, size + 1}, {UINT64_MAX, 2}, {2, UINT64_MAX}}) {
    auto range = instance->Memory(offset, length);
    EXPECT_EQ(range.status().code(), StatusCode::kOutOfRange) << offset << "+" << length;
  }
  std::vector<uint8_t> out(8);
  EXPECT_EQ(instance->ReadMemory(size - 4, out).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(instance->WriteMemory(size - 4, out).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(instance->WriteU64(size - 7, 1).code(), StatusCode::kOutOfRange);
  // Nothing was written by the refused calls, and the instance still works.
  EXPECT_EQ(CallI32(*instance, "sum_buffer", {Value::I32(4)}), 28);
}

TEST_F(EngineTest, GuestOutOfBoundsAccessIsATrapNotACrash) {
  auto instance = NewInstance();
  auto result = instance->Call("load_at", std::vector{Value::I32(static_cast<int32_t>(0xFFFFFFF0u))});
  EXPECT_EQ(result.status().code(), StatusCode::kTrap);
  EXPECT_NE(result.status().message().find("memory access out of bounds"), std::string::npos)
      << result.status().message();
}

TEST_F(EngineTest, TrapsAreReportedAndTheEngineStaysUsable) {
  auto instance = NewInstance();
  auto unreachable = instance->Call("trap_unreachable", {});
  EXPECT_EQ(unreachable.status().code(), StatusCode::kTrap);
  EXPECT_NE(unreachable.status().message().find("unreachable"), std::string::npos)
      << unreachable.status().message();
  EXPECT_NE(unreachable.status().message().find("trap_unreachable"), std::string::npos);

  // A trapped instance's state is undefined: it refuses further calls.
  EXPECT_TRUE(instance->failed());
  auto refused = instance->Call("add", std::vector{Value::I32(1), Value::I32(2)});
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);

  // The store and the module are fine: a new instance works, and traps again as it should.
  auto fresh = NewInstance();
  EXPECT_EQ(CallI32(*fresh, "divide", {Value::I32(84), Value::I32(2)}), 42);
  auto by_zero = fresh->Call("divide", std::vector{Value::I32(1), Value::I32(0)});
  EXPECT_EQ(by_zero.status().code(), StatusCode::kTrap);
  EXPECT_NE(by_zero.status().message().find("divide by zero"), std::string::npos)
      << by_zero.status().message();
  EXPECT_EQ(CallI32(*NewInstance(), "add", {Value::I32(1), Value::I32(2)}), 3);
}

TEST_F(ManualClockEngineTest, ADeadlineStopsAnInfiniteLoopWhenItComesAndNotBefore) {
  auto instance = NewInstance();
  const auto deadline = clock_.Now() + milliseconds(100);  // whole 10 ms: the engine keeps it
  std::atomic<bool> returned{false};
  bool returned_early = true;
  std::thread time([&] {
    // The watchdog waits for the deadline while the guest spins. 1 ms before it, the watchdog
    // looks at the time and waits on: the guest is still running.
    EXPECT_TRUE(clock_.AwaitWaiter(deadline));
    clock_.Advance(milliseconds(99));
    EXPECT_TRUE(clock_.AwaitWaiter(deadline));
    returned_early = returned;
    clock_.Advance(milliseconds(1));
  });
  auto result = instance->Call("spin", {}, deadline);
  returned = true;
  time.join();
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded) << result.status().ToString();
  EXPECT_FALSE(returned_early);
  EXPECT_TRUE(instance->failed());

  // The store runs guests again at once, with and without deadlines.
  auto fresh = NewInstance();
  EXPECT_EQ(CallI32(*fresh, "add", {Value::I32(2), Value::I32(3)}), 5);
  auto in_time = fresh->Call("fib", std::vector{Value::I32(20)}, clock_.Now() + std::chrono::seconds(5));
  ASSERT_TRUE(in_time.ok()) << in_time.status().ToString();
  EXPECT_EQ((*in_time)[0].i32, 6765);
}

TEST_F(EngineTest, DeadlineThatDoesNotFireLeavesNoTrace) {
  auto instance = NewInstance();
  for (int i = 0; i < 200; ++i) {
    auto r = instance->Call("add", std::vector{Value::I32(i), Value::I32(1)},
                            steady_clock::now() + milliseconds(1));
    // A call may lose the race with a 1 ms deadline; either way the next call is unaffected.
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
      instance = NewInstance();
    }
  }
  EXPECT_EQ(CallI32(*instance, "fib", {Value::I32(15)}), 610);
}

TEST_F(EngineTest, MemoryGrowBeyondTheCapIsRefused) {
  const uint64_t cap_pages = 8;
  auto module = SharedEngine().Compile(GuestBytes("engine_basics"), {.max_memory_bytes = cap_pages * 65536});
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  auto instance = NewInstance(*module);
  const int initial = CallI32(*instance, "memory_pages");
  ASSERT_LT(initial, static_cast<int>(cap_pages));

  EXPECT_EQ(CallI32(*instance, "grow", {Value::I32(1)}), initial);
  // The host sees the grown memory, and what the guest wrote at its new end.
  EXPECT_EQ(instance->MemorySize(), uint64_t(initial + 1) * 65536);
  CallI32(*instance, "poke_last", {Value::I32(0x5a)});
  std::vector<uint8_t> last(1);
  ASSERT_TRUE(instance->ReadMemory(instance->MemorySize() - 1, last).ok());
  EXPECT_EQ(last[0], 0x5a);

  EXPECT_EQ(CallI32(*instance, "grow", {Value::I32(static_cast<int>(cap_pages))}), -1);
  EXPECT_EQ(CallI32(*instance, "memory_pages"), initial + 1);
  const int to_cap = static_cast<int>(cap_pages) - (initial + 1);
  EXPECT_EQ(CallI32(*instance, "grow", {Value::I32(to_cap)}), initial + 1);
  EXPECT_EQ(CallI32(*instance, "grow", {Value::I32(1)}), -1);
  EXPECT_EQ(instance->MemorySize(), cap_pages * 65536);
  EXPECT_FALSE(instance->failed());
}

TEST_F(EngineTest, InitialMemoryAboveTheCapFailsTheCompile) {
  auto module = SharedEngine().Compile(GuestBytes("engine_basics"), {.max_memory_bytes = 65536});
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(module.status().message().find("above the cap"), std::string::npos) << module.status().message();
}

TEST_F(EngineTest, OneCompiledModuleRunsOnTwoThreadsAtOnce) {
  std::atomic<int> ready{0};
  auto worker = [&](int seed, int* checksum, std::string* error) {
    auto store = SharedEngine().NewStore();
    if (!store.ok()) {
      *error = store.status().ToString();
      return;
    }
    HostLog log;
    auto instance = (*store)->Instantiate(module_, BasicHost(&log));
    if (!instance.ok()) {
      *error = instance.status().ToString();
      return;
    }
    ready++;
    while (ready < 2) std::this_thread::yield();  // both threads call at the same time
    int sum = 0;
    for (int i = 0; i < 2000; ++i) {
      auto r = (*instance)->Call("call_host", std::vector{Value::I32(seed), Value::I32(i)});
      if (!r.ok()) {
        *error = r.status().ToString();
        return;
      }
      sum += (*r)[0].i32;
    }
    auto f = (*instance)->Call("fib", std::vector{Value::I32(22)});
    if (!f.ok()) {
      *error = f.status().ToString();
      return;
    }
    *checksum = sum + (*f)[0].i32;
    instance->reset();
  };
  int sum_a = 0, sum_b = 0;
  std::string error_a, error_b;
  std::thread a(worker, 1, &sum_a, &error_a);
  std::thread b(worker, 1000, &sum_b, &error_b);
  a.join();
  b.join();
  EXPECT_EQ(error_a, "");
  EXPECT_EQ(error_b, "");
  // sum over i of 2*(seed + i) plus fib(22) = 17711
  const int base = 2 * (1999 * 2000 / 2);
  EXPECT_EQ(sum_a, base + 2 * 1 * 2000 + 17711);
  EXPECT_EQ(sum_b, base + 2 * 1000 * 2000 + 17711);
}

TEST_F(EngineTest, HostFunctionCanStopTheGuestWithItsOwnStatus) {
  auto instance = NewInstance();
  auto result = instance->Call("call_host_fail", std::vector{Value::I32(3)});
  EXPECT_EQ(result.status().code(), StatusCode::kExit);
  EXPECT_EQ(result.status().message(), "guest exited with code 3");
  // The guest did not run past the failing host call.
  EXPECT_EQ(CallI32(*instance, "after_fail_ran"), 0);
}

TEST_F(EngineTest, MissingOrMistypedImportIsNamed) {
  auto empty = std::make_shared<HostFunctions>();
  auto missing = store_->Instantiate(module_, empty);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("env.host_add (i32, i32) -> i32"), std::string::npos)
      << missing.status().message();
  EXPECT_NE(missing.status().message().find("does not provide"), std::string::npos);

  auto mistyped = std::make_shared<HostFunctions>();
  mistyped->Add("env", "host_add", kI32_I32,
                [](Instance&, std::span<const Value>, std::span<Value>) { return Status::Ok(); });
  auto wrong = store_->Instantiate(module_, mistyped);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("provides it as (i32) -> i32"), std::string::npos)
      << wrong.status().message();
}

TEST_F(EngineTest, HostFunctionsCanCallAnotherInstanceOfTheSameStore) {
  // As proxy_invoke_service does in-process: the host, inside a guest call, calls another guest.
  auto callee = NewInstance();
  Instance* callee_ptr = callee.get();
  auto host =
      BasicHost(&log_, [callee_ptr](Instance& caller, std::span<const Value> args, std::span<Value> r) {
        EXPECT_NE(&caller, callee_ptr);
        auto sum = callee_ptr->Call("add", std::vector{args[0], args[1]});
        if (!sum.ok()) return sum.status();
        r[0] = (*sum)[0];
        return Status::Ok();
      });
  auto caller = store_->Instantiate(module_, host);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(CallI32(**caller, "call_host", {Value::I32(5), Value::I32(6)}), 22);
}

TEST_F(ManualClockEngineTest, OuterDeadlineStopsANestedRunawayCall) {
  auto callee = NewInstance();
  Instance* callee_ptr = callee.get();
  StatusCode inner_code = StatusCode::kOk;
  std::atomic<bool> inner_called{false};
  auto host = BasicHost(&log_, [&](Instance&, std::span<const Value>, std::span<Value>) {
    inner_called = true;
    inner_called.notify_all();
    auto r = callee_ptr->Call("spin", {});  // no deadline of its own
    inner_code = r.status().code();
    return r.status();
  });
  auto caller = store_->Instantiate(module_, host);
  ASSERT_TRUE(caller.ok());
  std::thread time([&] {
    inner_called.wait(false);  // the caller is in its host call, which runs the callee
    clock_.Advance(milliseconds(80));
  });
  auto result = (*caller)->Call("call_host", std::vector{Value::I32(1), Value::I32(2)},
                                clock_.Now() + milliseconds(80));
  inner_called = true;  // releases the time thread even if the host was never called
  inner_called.notify_all();
  time.join();
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(inner_code, StatusCode::kDeadlineExceeded);
  EXPECT_EQ(CallI32(*NewInstance(), "add", {Value::I32(1), Value::I32(1)}), 2);
}

// A nested call with a budget shorter than what its caller has left stops at its own deadline,
// and its caller goes on; one with a longer budget is stopped with its caller, at the caller's.
TEST_F(ManualClockEngineTest, ANestedCallStopsAtTheEarlierOfItsOwnDeadlineAndItsCallers) {
  auto callee = NewInstance();
  Instance* callee_ptr = callee.get();
  milliseconds inner_budget{0};
  StatusCode inner_code = StatusCode::kOk;
  Clock::TimePoint::duration inner_took{};
  std::atomic<int> inner_calls{0};
  auto host = BasicHost(&log_, [&](Instance&, std::span<const Value>, std::span<Value>) {
    const auto inner_start = clock_.Now();
    ++inner_calls;
    inner_calls.notify_all();
    auto r = callee_ptr->Call("spin", {}, inner_start + inner_budget);
    inner_took = clock_.Now() - inner_start;
    inner_code = r.status().code();
    return Status::Ok();  // the caller carries on after its callee was stopped
  });
  auto caller = store_->Instantiate(module_, host);
  ASSERT_TRUE(caller.ok());

  inner_budget = milliseconds(50);
  auto start = clock_.Now();
  std::thread time([&] {
    EXPECT_TRUE(clock_.AwaitWaiter(start + inner_budget));  // the callee's own deadline is armed
    clock_.Advance(inner_budget);
  });
  auto result =
      (*caller)->Call("call_host", std::vector{Value::I32(1), Value::I32(2)}, start + milliseconds(5000));
  time.join();
  EXPECT_EQ(inner_code, StatusCode::kDeadlineExceeded);
  EXPECT_EQ(inner_took, milliseconds(50)) << "stopped at its own deadline";
  EXPECT_TRUE(result.ok()) << result.status().ToString();

  callee = NewInstance();  // the stopped one is failed
  callee_ptr = callee.get();
  inner_budget = milliseconds(60000);
  start = clock_.Now();
  time = std::thread([&] {
    for (int seen = inner_calls; seen < 2; seen = inner_calls) inner_calls.wait(seen);
    clock_.Advance(milliseconds(80));
  });
  result = (*caller)->Call("call_host", std::vector{Value::I32(1), Value::I32(2)}, start + milliseconds(80));
  inner_calls = 2;  // releases the time thread even if the host was never called
  inner_calls.notify_all();
  time.join();
  EXPECT_EQ(inner_code, StatusCode::kDeadlineExceeded);
  EXPECT_EQ(inner_took, milliseconds(80)) << "stopped with its caller, at the caller's deadline";
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded);
}

TEST_F(EngineTest, StartSectionRunsAfterInstantiationWithMemoryReachable) {
  // (module (import "env" "host_note" (func (param i32)))
  //   (memory 1) (start $init)
  //   (func $init (i32.store (i32.const 0) (i32.const 7)) (call 0 (i32.const 42)))
  //   (func (export "peek") (result i32) (i32.load (i32.const 0))))
  // It exports no memory: the host must reach it anyway.
  ModuleBytes m;
  std::vector<uint8_t> imports = {0x01};
  for (auto part : {ModuleBytes::Name("env"), ModuleBytes::Name("host_note")})
    imports.insert(imports.end(), part.begin(), part.end());
  imports.insert(imports.end(), {0x00, 0x01});
  std::vector<uint8_t> exports = {0x01};
  auto peek = ModuleBytes::Name("peek");
  exports.insert(exports.end(), peek.begin(), peek.end());
  exports.insert(exports.end(), {0x00, 0x02});
  m.Section(1, {0x03, 0x60, 0x00, 0x00, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x01, 0x7f})
      .Section(2, imports)
      .Section(3, {0x02, 0x00, 0x02})
      .Section(5, {0x01, 0x00, 0x01})
      .Section(7, exports)
      .Section(8, {0x01})
      .Section(10, {0x02, 0x0d, 0x00, 0x41, 0x00, 0x41, 0x07, 0x36, 0x02, 0x00, 0x41, 0x2a,
                    0x10, 0x00, 0x0b, 0x07, 0x00, 0x41, 0x00, 0x28, 0x02, 0x00, 0x0b});
  auto module = SharedEngine().Compile(m.bytes());
  ASSERT_TRUE(module.ok()) << module.status().ToString();

  int noted = 0;
  uint32_t memory_word = 0;
  auto host = std::make_shared<HostFunctions>();
  host->Add("env", "host_note", FunctionType{{ValType::kI32}, {}},
            [&](Instance& caller, std::span<const Value> args, std::span<Value>) {
              noted = args[0].i32;
              auto word = caller.ReadU32(0);
              if (!word.ok()) return word.status();
              memory_word = *word;
              return Status::Ok();
            });
  auto instance = store_->Instantiate(*module, host);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  EXPECT_EQ(noted, 42);
  EXPECT_EQ(memory_word, 7u);
  EXPECT_EQ(CallI32(**instance, "peek"), 7);
  EXPECT_EQ((*instance)->MemorySize(), 65536u);
}

TEST_F(EngineTest, StartFunctionThatTrapsFailsInstantiation) {
  // (module (start 0) (func unreachable))
  ModuleBytes m;
  m.Section(1, {0x01, 0x60, 0x00, 0x00})
      .Section(3, {0x01, 0x00})
      .Section(8, {0x00})
      .Section(10, {0x01, 0x03, 0x00, 0x00, 0x0b});
  auto module = SharedEngine().Compile(m.bytes());
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  auto instance = store_->Instantiate(*module, std::make_shared<HostFunctions>());
  ASSERT_FALSE(instance.ok());
  EXPECT_EQ(instance.status().code(), StatusCode::kTrap);
  EXPECT_NE(instance.status().message().find("start function"), std::string::npos)
      << instance.status().message();
}

TEST_F(EngineTest, InvalidBytesFailTheCompileWithAMessage) {
  auto garbage =
      SharedEngine().Compile(std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
  EXPECT_EQ(garbage.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(garbage.status().message().find("not a WebAssembly module"), std::string::npos);

  // Well framed, but a function body that does not type-check: caught by the engine.
  ModuleBytes m;
  m.Section(1, {0x01, 0x60, 0x00, 0x01, 0x7f})  // () -> i32
      .Section(3, {0x01, 0x00})
      .Section(10, {0x01, 0x02, 0x00, 0x0b});  // body returns nothing
  auto bad_body = SharedEngine().Compile(m.bytes());
  EXPECT_EQ(bad_body.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_body.status().message().find("does not compile"), std::string::npos)
      << bad_body.status().message();
}

TEST(EngineFactoryTest, UnknownEngineNameIsRefused) {
  auto engine = CreateEngine("wasmtime");
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("v8"), std::string::npos);
}

}  // namespace
}  // namespace wasmlet::engine
