// Micro costs of the engine layer, each next to a baseline measured in the same run (the
// machines are shared and noisy, so only ratios compare across runs):
//
//   host->guest call of an exported no-op   vs  a native call through std::function
//   guest->host call of a no-op             vs  a guest->guest call of a no-op
//   instance from a compiled module         vs  compiling the module
//
//   compiling a 1 MiB module                vs  reading its declarations
//   serialising 20 headers (pairs format)   vs  copying the encoded bytes
//
// Run: build/bench/engine_bench   (add --benchmark_repetitions=5 for spread); bench/run.sh runs it too.
#include <benchmark/benchmark.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>

#include "abi/header_map.h"
#include "engine/engine.h"
#include "wasm/module_info.h"

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

// A valid module of about 1 MiB of code: 1000 functions, each 350 x (i32.const 1; drop).
std::vector<uint8_t> LargeModule() {
  auto leb = [](std::vector<uint8_t>& out, uint32_t v) {
    do {
      uint8_t b = v & 0x7f;
      v >>= 7;
      out.push_back(v ? (b | 0x80) : b);
    } while (v);
  };
  auto section = [&](std::vector<uint8_t>& out, uint8_t id, const std::vector<uint8_t>& payload) {
    out.push_back(id);
    leb(out, static_cast<uint32_t>(payload.size()));
    out.insert(out.end(), payload.begin(), payload.end());
  };
  const uint32_t functions = 1000, pairs = 350;
  std::vector<uint8_t> out = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
  section(out, 1, {0x01, 0x60, 0x00, 0x00});
  std::vector<uint8_t> decls;
  leb(decls, functions);
  decls.insert(decls.end(), functions, 0x00);
  section(out, 3, decls);
  std::vector<uint8_t> body = {0x00};
  for (uint32_t i = 0; i < pairs; ++i) body.insert(body.end(), {0x41, 0x01, 0x1a});
  body.push_back(0x0b);
  std::vector<uint8_t> code;
  leb(code, functions);
  for (uint32_t f = 0; f < functions; ++f) {
    leb(code, static_cast<uint32_t>(body.size()));
    code.insert(code.end(), body.begin(), body.end());
  }
  section(out, 10, code);
  return out;
}

void BM_ReadDeclarationsOf1MiBBaseline(benchmark::State& state) {
  static const auto bytes = LargeModule();
  for (auto _ : state) benchmark::DoNotOptimize(wasm::ParseModule(bytes));
}
BENCHMARK(BM_ReadDeclarationsOf1MiBBaseline)->Unit(benchmark::kMicrosecond);

void BM_Compile1MiBModule(benchmark::State& state) {
  static const auto bytes = LargeModule();
  for (auto _ : state) {
    auto module = F().engine->Compile(bytes);
    if (!module.ok()) state.SkipWithError(module.status().ToString().c_str());
  }
  state.counters["module_bytes"] = static_cast<double>(bytes.size());
}
BENCHMARK(BM_Compile1MiBModule)->Unit(benchmark::kMillisecond);

abi::HeaderMap TwentyHeaders() {
  abi::HeaderMap map;
  for (int i = 0; i < 20; ++i)
    map.Add("x-header-" + std::to_string(i), "value number " + std::to_string(i * 7919));
  return map;
}

void BM_CopySerializedHeadersBaseline(benchmark::State& state) {
  const std::string bytes = TwentyHeaders().Serialize();
  for (auto _ : state) {
    std::string copy = bytes;
    benchmark::DoNotOptimize(copy);
  }
}
BENCHMARK(BM_CopySerializedHeadersBaseline);

void BM_SerializeTwentyHeaders(benchmark::State& state) {
  const abi::HeaderMap map = TwentyHeaders();
  for (auto _ : state) benchmark::DoNotOptimize(map.Serialize());
}
BENCHMARK(BM_SerializeTwentyHeaders);

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
    Ratio("compile a 1 MiB module", "BM_Compile1MiBModule", "read its declarations",
          "BM_ReadDeclarationsOf1MiBBaseline");
    Ratio("serialise 20 headers (pairs format)", "BM_SerializeTwentyHeaders", "copy the encoded bytes",
          "BM_CopySerializedHeadersBaseline");
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
