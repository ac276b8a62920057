// SharedState on its own: the limits it counts per VM id, and metric arithmetic a guest drives.
#include "abi/shared_state.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace wasmlet::abi {
namespace {

TEST(SharedStateTest, AMetricStopsAtTheEndsOfItsRangeInsteadOfOverflowing) {
  SharedState shared;
  // Found by fuzz_guest: a counter at 5 incremented by INT64_MAX overflowed (undefined behaviour).
  auto counter = shared.DefineMetric("vm", MetricType::kCounter, "requests");
  ASSERT_TRUE(counter);
  EXPECT_EQ(shared.IncrementMetric(*counter, 5), WasmResult::kOk);
  EXPECT_EQ(shared.IncrementMetric(*counter, INT64_MAX), WasmResult::kOk);
  EXPECT_EQ(shared.GetMetric(*counter), uint64_t{INT64_MAX});
  EXPECT_EQ(shared.IncrementMetric(*counter, -1), WasmResult::kBadArgument);  // counters only grow
  auto gauge = shared.DefineMetric("vm", MetricType::kGauge, "level");
  ASSERT_TRUE(gauge);
  EXPECT_EQ(shared.IncrementMetric(*gauge, -5), WasmResult::kOk);
  EXPECT_EQ(shared.IncrementMetric(*gauge, INT64_MIN), WasmResult::kOk);
  EXPECT_EQ(static_cast<int64_t>(*shared.GetMetric(*gauge)), INT64_MIN);
}

TEST(SharedStateTest, EachVmIdIsChargedForWhatItHoldsAndRefusedPastItsLimits) {
  SharedState shared(
      HostLimits{.shared_data_bytes = 100, .queue_entries = 2, .queue_bytes = 10, .metrics = 1});
  EXPECT_EQ(shared.SetData("a", "k", std::string(90, 'x'), 0), WasmResult::kOk);
  EXPECT_EQ(shared.SetData("a", "k2", std::string(20, 'x'), 0), WasmResult::kInternalFailure);
  EXPECT_EQ(shared.SetData("b", "k2", std::string(20, 'x'), 0), WasmResult::kOk);  // another VM id
  EXPECT_EQ(shared.SetData("a", "k", "small", 0), WasmResult::kOk);                // shrinking frees room
  EXPECT_EQ(shared.SetData("a", "k2", std::string(20, 'x'), 0), WasmResult::kOk);
  EXPECT_EQ(shared.Usage("a").shared_data_bytes, 1u + 5 + 2 + 20);

  const uint32_t queue = shared.RegisterQueue("a", "q", 1, {});
  EXPECT_EQ(shared.Enqueue(queue, "12345"), WasmResult::kOk);
  EXPECT_EQ(shared.Enqueue(queue, "123456"), WasmResult::kInternalFailure);  // 11 bytes > 10
  EXPECT_EQ(shared.Enqueue(queue, "1"), WasmResult::kOk);
  EXPECT_EQ(shared.Enqueue(queue, "2"), WasmResult::kInternalFailure);  // 3 entries > 2
  std::string item;
  EXPECT_EQ(shared.Dequeue(queue, item), WasmResult::kOk);
  EXPECT_EQ(shared.Usage("a").queue_entries, 1u);
  EXPECT_EQ(shared.Usage("a").queue_bytes, 1u);
  EXPECT_EQ(shared.RemoveQueue(queue), WasmResult::kOk);
  EXPECT_EQ(shared.Usage("a").queue_entries, 0u);

  EXPECT_TRUE(shared.DefineMetric("a", MetricType::kCounter, "one"));
  EXPECT_FALSE(shared.DefineMetric("a", MetricType::kCounter, "two"));
  EXPECT_TRUE(shared.DefineMetric("a", MetricType::kCounter, "one"));  // known names cost nothing
}

}  // namespace
}  // namespace wasmlet::abi
