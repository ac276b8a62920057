// The host functions from the guest's side: tests/fuzz/guest/host_caller.c runs the request body
// as a program of proxy_* and WASI calls with arguments libFuzzer picks (wild pointers and
// lengths included), through a PluginVm of its own, as the server would run a plugin. A trap, a deadline
// or an error answer is the guest's problem and fine; a crash or a sanitizer report in the host
// is a bug.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "abi/plugin_vm.h"
#include "abi/shared_state.h"
#include "engine/engine.h"

namespace {

using namespace wasmlet;

constexpr auto kDeadline = std::chrono::milliseconds(200);

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fuzz_guest: %s\n", what.c_str());
  std::abort();
}

// proxy_get_state: a store that answers any key, fails one, and knows one store.
class FakeStateStore : public abi::StateStore {
 public:
  Result<std::string> GetState(std::string_view store, std::string_view key) override {
    if (store != "s") return NotFound("no state store named '" + std::string(store) + "'");
    if (key == "broken") return Internal("the store failed");
    return std::string(key) + "=value";
  }
};

// proxy_invoke_service: one callee that echoes, every other id unknown.
class FakeInvoker : public abi::FunctionInvoker {
 public:
  Result<std::string> Invoke(const Call& call) override {
    if (call.target_id != "callee")
      return NotFound("no function named '" + std::string(call.target_id) + "'");
    return std::string(call.method) + ":" + std::string(call.param);
  }
};

struct Fixture {
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<engine::Store> store;
  std::shared_ptr<const engine::Module> module;
  std::shared_ptr<const abi::PluginSpec> spec;
  abi::HostServices services;
  int vms_since_gc = 0;
  bool trace = false;

  Fixture() {
    auto created = engine::CreateEngine();
    if (!created.ok()) Die(created.status().ToString());
    engine = std::move(*created);
    auto new_store = engine->NewStore();
    if (!new_store.ok()) Die(new_store.status().ToString());
    store = std::move(*new_store);

    std::ifstream in(WASMLET_FUZZ_GUEST, std::ios::binary);
    const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (bytes.empty()) Die(std::string("cannot read ") + WASMLET_FUZZ_GUEST);
    // A small memory cap, so that growing memory past it is reachable in a few steps.
    auto compiled = engine->Compile(bytes, {.max_memory_bytes = 16 << 20});
    if (!compiled.ok()) Die(compiled.status().ToString());
    module = *compiled;

    auto plugin = std::make_shared<abi::PluginSpec>();
    plugin->name = "fuzz";
    plugin->root_id = "fuzz_root";
    plugin->vm_id = "fuzz_vm";
    plugin->vm_configuration = "vm configuration";
    plugin->plugin_configuration = "plugin configuration";
    spec = plugin;

    services.state = std::make_shared<FakeStateStore>();
    services.invoker = std::make_shared<FakeInvoker>();
    services.log_level = abi::LogLevel::kTrace;  // every proxy_log reaches the sink
    // FUZZ_GUEST_TRACE=1 shows what an input does (for replaying a reproducer).
    trace = std::getenv("FUZZ_GUEST_TRACE") != nullptr;
    services.log = [trace = trace](abi::LogLevel level, std::string_view, std::string_view message) {
      if (trace)
        std::fprintf(stderr, "guest log %d: %.*s\n", int(level), int(message.size()), message.data());
    };
  }

  // A plugin VM of its own for every input, with shared data, queues and metrics of its own:
  // then an input's outcome depends on that input alone, and its reproducer replays it.
  std::unique_ptr<abi::PluginVm> NewVm() {
    // A store keeps what dead instances leave until collected: collect now and then.
    if (++vms_since_gc == 64) {
      store->CollectGarbage();
      vms_since_gc = 0;
    }
    services.shared = std::make_shared<abi::SharedState>();
    auto created = abi::PluginVm::Create(*store, module, spec, services);
    // The program runs only in request callbacks: starting the plugin cannot fail.
    if (!created.ok()) Die("the guest does not start: " + created.status().ToString());
    return std::move(*created);
  }
};

Fixture& TheFixture() {
  static Fixture* fixture = new Fixture();  // lives as long as the fuzzer
  return *fixture;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Host-side warnings (limits reached, bad guest answers) are formatted but written nowhere.
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>()));
  spdlog::set_level(spdlog::level::trace);
  TheFixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = TheFixture();
  std::unique_ptr<abi::PluginVm> vm_owner = f.NewVm();
  abi::PluginVm& vm = *vm_owner;
  abi::HttpRequest request;
  request.method = "POST";
  request.path = "/fuzz?q=1";
  request.authority = "fuzz.local";
  request.headers = {{"content-type", "application/octet-stream"}, {"x-fuzz", "1"}};
  request.body.assign(reinterpret_cast<const char*>(data), size);
  request.trailers = {{"x-trailer", "t"}};  // so that proxy_on_request_trailers runs too
  request.source_address = "127.0.0.1";
  request.source_port = 40000;
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  auto response = vm.HandleHttp(std::move(request), deadline);
  // Timers and queue notifications the program set up, as a worker would run them.
  if (response.ok() && !vm.failed() && vm.tick_period_ms() > 0) (void)vm.Tick(deadline);
  if (!vm.failed() && vm.has_pending_work()) (void)vm.RunPendingWork(deadline);
  if (f.trace) {
    if (response.ok()) {
      std::fprintf(stderr, "response %u (%zu headers): %s\n", response->status, response->headers.size(),
                   response->body.c_str());
    } else {
      std::fprintf(stderr, "error: %s\n", response.status().ToString().c_str());
    }
  }
  return 0;
}
