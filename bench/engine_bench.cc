// Micro costs of the engine layer, each next to a baseline measured in the same run (the
// machines are shared and noisy, so only ratios compare across runs):
//
//   host->guest call of an exported no-op   vs  a native call through std::function
//   guest->host call of a no-op             vs  a guest->guest call of a no-op
//   instance from a compiled module         vs  compiling the module
//
// Run: build/bench/engine_bench   (add --benchmark_repetitions=5 for spread)
#include <benchmark/benchmark.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>

#include "engine/engine.h"

namespace {

using namespace wasmlet;
using namespace wasmlet::engine;

std::vector<uint8_t> GuestBytes() {
  std::ifstream in(std::string(WASMLET_TEST_GUESTS) + "/engine_basics.wasm", std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Fixture {
  std::unique_ptr<Engine> engine = *CreateEngine();
  std::vector<uint8_t> bytes = GuestBytes();
  std::shared_ptr<const Module> module = *engine->Compile(bytes);
  std::unique_ptr<Store> store = *engine->NewStore();
  std::shared_ptr<HostFunctions> host = [] {
    auto h = std::make_shared<HostFunctions>();
    const FunctionType i32i32_i32{{ValType::kI32, ValType::kI32}, {ValType::kI32}};
    h->Add("env", "host_add", i32i32_i32, [](Instance&, std::span<const Value> a, std::span<Value> r) {
      r[0].i32 = a[0].i32 + a[1].i32;
      return Status::Ok();
    });
    h->Add("env", "host_noop", {{}, {}},
           [](Instance&, std::span<const Value>, std::span<Value>) { return Status::Ok(); });
    h->Add("env", "host_fail", {{ValType::kI32}, {ValType::kI32}},
           [](Instance&, std::span<const Value>, std::span<Value>) { return Status::Ok(); });
    h->Add("env", "host_wide", {{ValType::kI64, ValType::kF64}, {ValType::kI64}},
           [](Instance&, std::span<const Value>, std::span<Value>) { return Status::Ok(); });
    return h;
  }();
  std::unique_ptr<Instance> instance = *store->Instantiate(module, host);
};

Fixture& F() {
  static Fixture fixture;
  return fixture;
}

constexpr int kLoop = 10000;

void BM_NativeCallBaseline(benchmark::State& state) {
  std::function<Status(std::span<const Value>, std::span<Value>)> fn =
      [](std::span<const Value>, std::span<Value>) { return Status::Ok(); };
  benchmark::DoNotOptimize(fn);
  for (auto _ : state) {
    Status s = fn({}, {});
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_NativeCallBaseline);

void BM_CallExportedNoop(benchmark::State& state) {
  auto noop = *F().instance->FindFunction("noop");
  for (auto _ : state) {
    Status s = F().instance->Call(noop, {}, {});
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
}
BENCHMARK(BM_CallExportedNoop);

void LoopBenchmark(benchmark::State& state, const char* export_name) {
  auto loop = *F().instance->FindFunction(export_name);
  const Value n = Value::I32(kLoop);
  for (auto _ : state) {
    Status s = F().instance->Call(loop, {&n, 1}, {});
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  // Time per item = time per call made inside the loop.
  state.SetItemsProcessed(state.iterations() * kLoop);
}
void BM_GuestToGuestCallBaseline(benchmark::State& state) { LoopBenchmark(state, "call_guest_loop"); }
void BM_GuestToHostCall(benchmark::State& state) { LoopBenchmark(state, "call_host_loop"); }
BENCHMARK(BM_GuestToGuestCallBaseline);
BENCHMARK(BM_GuestToHostCall);

void BM_CompileModuleBaseline(benchmark::State& state) {
  for (auto _ : state) {
    auto module = F().engine->Compile(F().bytes);
    if (!module.ok()) state.SkipWithError(module.status().ToString().c_str());
  }
}
BENCHMARK(BM_CompileModuleBaseline)->Unit(benchmark::kMicrosecond);

void BM_InstantiateFromCompiledModule(benchmark::State& state) {
  for (auto _ : state) {
    auto instance = F().store->Instantiate(F().module, F().host);
    if (!instance.ok()) state.SkipWithError(instance.status().ToString().c_str());
  }
}
BENCHMARK(BM_InstantiateFromCompiledModule)->Unit(benchmark::kMicrosecond);

// Collects each benchmark's time per operation (per item for the loop benchmarks) so the
// ratios can be printed after the table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      double ns = run.GetAdjustedRealTime() * 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
      auto items = run.counters.find("items_per_second");
      if (items != run.counters.end() && items->second.value > 0) ns = 1e9 / items->second.value;
      ns_[run.run_name.function_name] = ns;
    }
  }
  void PrintRatios() const {
    std::cout << "\nper operation, against the baseline measured in this run:\n";
    Ratio("host->guest call (exported no-op)", "BM_CallExportedNoop", "native std::function call",
          "BM_NativeCallBaseline");
    Ratio("guest->host call (no-op)", "BM_GuestToHostCall", "guest->guest call",
          "BM_GuestToGuestCallBaseline");
    Ratio("instance from compiled module", "BM_InstantiateFromCompiledModule", "compile",
          "BM_CompileModuleBaseline");
  }

 private:
  void Ratio(const char* what, const char* name, const char* base_what, const char* base) const {
    auto a = ns_.find(name);
    auto b = ns_.find(base);
    if (a == ns_.end() || b == ns_.end()) return;
    std::printf("  %-36s %10.1f ns   %-28s %10.1f ns   ratio %8.2f\n", what, a->second, base_what, b->second,
                a->second / b->second);
  }
  std::map<std::string, double> ns_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
