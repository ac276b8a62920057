// The Proxy-Wasm ABI as plugins see it: guest modules built from source with the SDK (and one
// raw C module) driven through a fake HTTP stream by PluginVm::HandleHttp.
#include "abi/plugin_vm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "test_support.h"

namespace wasmlet::abi {
namespace {

using testing::GuestBytes;

engine::Engine& SharedEngine() {
  static std::unique_ptr<engine::Engine> engine = std::move(*engine::CreateEngine());
  return *engine;
}

std::shared_ptr<const engine::Module> Compile(const std::string& guest) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const engine::Module>> cache;
  std::lock_guard lock(mutex);
  auto& module = cache[guest];
  if (!module) {
    auto compiled = SharedEngine().Compile(GuestBytes(guest));
    EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
    if (compiled.ok()) module = *compiled;
  }
  return module;
}

// "key=value" lines of a guest's report. A key may repeat; the map keeps every value in order.
std::multimap<std::string, std::string> Parse(const std::string& body) {
  std::multimap<std::string, std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(pos, end - pos);
    auto eq = line.find('=');
    if (eq != std::string::npos) out.emplace(line.substr(0, eq), line.substr(eq + 1));
    pos = end + 1;
  }
  return out;
}

std::string One(const std::multimap<std::string, std::string>& report, const std::string& key) {
  auto count = report.count(key);
  EXPECT_EQ(count, 1u) << "key '" << key << "' appears " << count << " times";
  auto it = report.find(key);
  return it == report.end() ? "<missing>" : it->second;
}

std::optional<std::string> Header(const HttpResponse& response, const std::string& name) {
  for (const auto& [n, v] : response.headers) {
    if (n == name) return v;
  }
  return std::nullopt;
}

std::shared_ptr<const PluginSpec> Named(const std::string& name) {
  auto spec = std::make_shared<PluginSpec>();
  spec->name = name;
  return spec;
}

struct LogLine {
  LogLevel level;
  std::string plugin;
  std::string message;
};

class FakeStateStore : public StateStore {
 public:
  Result<std::string> GetState(std::string_view store, std::string_view key) override {
    if (store != "inventory") return NotFound("no state store named '" + std::string(store) + "'");
    if (key == "broken") return Internal("connection refused");
    if (key == "book1") return std::string("100");
    return std::string();
  }
};

class FakeInvoker : public FunctionInvoker {
 public:
  Result<std::string> Invoke(const Call& call) override {
    last_caller = std::string(call.caller_id);
    last_method = std::string(call.method);
    if (call.target_id != "callee")
      return NotFound("no function registered under '" + std::string(call.target_id) + "'");
    if (call.param == "fail") return Internal("the callee answered 500");
    return "stock:" + std::string(call.param);
  }
  std::string last_caller;
  std::string last_method;
};

// Keeps the HTTP calls guests start until the test answers them.
class FakeOutbound : public OutboundHttp {
 public:
  struct Started {
    std::string target;
    HttpRequest request;
    Done done;
  };
  bool HasCluster(std::string_view) override { return false; }
  Result<Cancel> Start(std::string_view target, bool to_address, HttpRequest request,
                       std::chrono::milliseconds timeout, Done done) override {
    started.push_back({std::string(target), std::move(request), std::move(done)});
    return Cancel([cancelled = cancelled] { ++*cancelled; });
  }
  std::vector<Started> started;
  // Shared with the cancel functions, which may outlive this fake.
  std::shared_ptr<int> cancelled = std::make_shared<int>(0);
};

class PluginVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(*SharedEngine().NewStore());
    services_.shared = shared_;
    services_.state = state_;
    services_.invoker = invoker_;
    services_.log_level = LogLevel::kTrace;
    services_.log = [this](LogLevel level, std::string_view plugin, std::string_view message) {
      logs_.push_back({level, std::string(plugin), std::string(message)});
    };
  }

  Result<std::unique_ptr<PluginVm>> TryStart(const std::string& guest, PluginSpec spec = {}) {
    if (spec.name.empty()) spec.name = guest;
    if (spec.vm_id.empty()) spec.vm_id = "vm";
    return PluginVm::Create(*store_, Compile(guest), std::make_shared<PluginSpec>(std::move(spec)),
                            services_);
  }

  std::unique_ptr<PluginVm> Start(const std::string& guest, PluginSpec spec = {}) {
    auto vm = TryStart(guest, std::move(spec));
    EXPECT_TRUE(vm.ok()) << vm.status().ToString();
    return vm.ok() ? std::move(*vm) : nullptr;
  }

  HttpResponse Request(PluginVm& vm, const std::string& op, HttpRequest request = {}) {
    request.headers.emplace_back("x-op", op);
    auto response = vm.HandleHttp(request);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? *response : HttpResponse{};
  }

  bool Logged(LogLevel level, const std::string& text) const {
    for (const auto& line : logs_) {
      if (line.level == level && line.message.find(text) != std::string::npos) return true;
    }
    return false;
  }

  std::unique_ptr<engine::Store> store_;
  std::shared_ptr<SharedState> shared_ = std::make_shared<SharedState>();
  std::shared_ptr<FakeStateStore> state_ = std::make_shared<FakeStateStore>();
  std::shared_ptr<FakeInvoker> invoker_ = std::make_shared<FakeInvoker>();
  HostServices services_;
  std::vector<LogLine> logs_;
};

TEST_F(PluginVmTest, StartsTheRootContextAndRejectsABadConfiguration) {
  auto vm = Start("abi_filter");
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->abi_version(), "0.2.1");
  EXPECT_FALSE(vm->reports_id());
  EXPECT_EQ(vm->route_id(), "abi_filter");  // no proxy_get_id: routed by name
  EXPECT_TRUE(Logged(LogLevel::kInfo, "abi_filter: vm started"));

  PluginSpec spec;
  spec.plugin_configuration = "reject";
  auto rejected = TryStart("abi_filter", spec);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.status().message().find("plugin 'abi_filter'"), std::string::npos)
      << rejected.status().message();
  EXPECT_NE(rejected.status().message().find("rejected its configuration"), std::string::npos);
}

TEST_F(PluginVmTest, HeaderMapsGetAddReplaceRemoveAndPairs) {
  auto vm = Start("abi_filter");
  HttpRequest request;
  request.authority = "example.test";
  request.headers = {{"X-In", "hello"}, {"x-replace", "old"}, {"x-remove", "gone"}};
  auto response = Request(*vm, "headers", request);
  auto report = Parse(response.body);
  EXPECT_EQ(One(report, "x-in"), "hello");
  EXPECT_EQ(One(report, "missing"), "absent");
  // The whole map, read back with get_header_map_pairs, in order, names lower-case.
  std::vector<std::string> headers;
  for (const auto& [key, value] : report) {
    if (key.rfind("header ", 0) == 0) headers.push_back(key.substr(7) + ": " + value);
  }
  std::vector<std::string> expected = {":authority: example.test",
                                       ":method: GET",
                                       ":path: /",
                                       ":scheme: http",
                                       "x-added: 1",
                                       "x-added: 2",
                                       "x-in: hello",
                                       "x-inserted: by-replace",
                                       "x-op: headers",
                                       "x-replace: new"};
  std::sort(headers.begin(), headers.end());
  EXPECT_EQ(headers, expected);
  EXPECT_EQ(One(report, "trailer t1"), "v1");
  EXPECT_EQ(One(report, "trailer t2"), "");
  // The response phase ran over the function's response.
  EXPECT_EQ(Header(response, "x-filter"), "seen");
  EXPECT_EQ(response.status, 200u);
}

TEST_F(PluginVmTest, BodyGetReplaceAppendPrepend) {
  auto vm = Start("abi_filter");
  HttpRequest request;
  request.method = "POST";
  request.body = "world";
  auto report = Parse(Request(*vm, "body", request).body);
  EXPECT_EQ(One(report, "request_body"), "Hello world!");  // prepend, append, overwrite a prefix
  EXPECT_EQ(One(report, "body_size_argument"), "5");
  EXPECT_EQ(One(report, "slice"), "world");  // start 6, at most 5 bytes
  EXPECT_EQ(One(report, "past_end"), "");    // start beyond the end: OK and empty
}

TEST_F(PluginVmTest, ResponsePhaseCanReplaceTheBody) {
  auto vm = Start("abi_filter");
  auto response = Request(*vm, "response_body");
  EXPECT_EQ(response.body, "replaced by the response phase\n");
}

TEST_F(PluginVmTest, LocalResponseCarriesStatusHeaderAndBody) {
  auto vm = Start("abi_filter");
  auto response = Request(*vm, "local");
  EXPECT_EQ(response.status, 403u);
  EXPECT_TRUE(response.local);
  EXPECT_EQ(response.body, "forbidden by the test policy\n");
  EXPECT_EQ(Header(response, "x-reason"), "policy");  // stored lower-case
  EXPECT_EQ(Header(response, "x-filter"), "seen");    // filters see local responses too
  EXPECT_FALSE(Header(response, "grpc-status"));
}

TEST_F(PluginVmTest, ResponsePhaseCanRewriteTheStatus) {
  auto vm = Start("abi_filter");
  auto response = Request(*vm, "rewrite");
  EXPECT_EQ(response.status, 202u);
  EXPECT_FALSE(Header(response, ":status"));
}

TEST_F(PluginVmTest, PropertiesOfThePluginAndTheRequest) {
  PluginSpec spec;
  spec.name = "props";
  spec.root_id = "my_root";
  auto vm = Start("abi_filter", spec);
  HttpRequest request;
  request.method = "POST";
  request.path = "/p?q=1";
  request.headers = {{"x-in", "from-header"}};
  auto report = Parse(Request(*vm, "properties", request).body);
  EXPECT_EQ(One(report, "plugin_name"), "props");
  EXPECT_EQ(One(report, "plugin_root_id"), "my_root");
  EXPECT_EQ(One(report, "request.path"), "/p?q=1");
  EXPECT_EQ(One(report, "request.method"), "POST");
  EXPECT_EQ(One(report, "request.headers.x-in"), "from-header");
  EXPECT_EQ(One(report, "unknown"), "NOT_FOUND");
  EXPECT_EQ(One(report, "filter_state.mine"), "kept");
}

TEST_F(PluginVmTest, SharedDataCompareAndSwap) {
  auto vm = Start("abi_filter");
  auto report = Parse(Request(*vm, "shared").body);
  EXPECT_EQ(One(report, "get_missing"), "NOT_FOUND");
  EXPECT_EQ(One(report, "set_unconditional"), "0");
  EXPECT_EQ(One(report, "value"), "1");
  EXPECT_EQ(One(report, "set_with_cas"), "0");
  EXPECT_EQ(One(report, "set_with_stale_cas"), "8");  // CAS_MISMATCH
  EXPECT_EQ(One(report, "final"), "2");
  EXPECT_EQ(One(report, "cas_changed"), "yes");

  // Shared data outlives the instance and is seen by other instances of the same VM id...
  auto other = Start("abi_filter");
  EXPECT_EQ(One(Parse(Request(*other, "shared").body), "get_missing"), "found");
  // ...but not by another VM id.
  PluginSpec spec;
  spec.vm_id = "another_vm";
  auto isolated = Start("abi_filter", spec);
  EXPECT_EQ(One(Parse(Request(*isolated, "shared").body), "get_missing"), "NOT_FOUND");
}

TEST_F(PluginVmTest, QueuesEnqueueDequeueAndNotifyAfterTheCallback) {
  auto vm = Start("abi_filter");
  auto report = Parse(Request(*vm, "queue").body);
  EXPECT_EQ(One(report, "registered"), "yes");
  EXPECT_EQ(One(report, "resolved_same"), "yes");
  EXPECT_EQ(One(report, "resolve_unknown"), "NOT_FOUND");
  EXPECT_EQ(One(report, "dequeue_empty"), "7");  // EMPTY
  EXPECT_EQ(One(report, "dequeue"), "first");
  EXPECT_EQ(One(report, "enqueue_unknown"), "1");  // NOT_FOUND
  EXPECT_EQ(One(report, "notified_inline"), "0");  // never inside the hostcall

  ASSERT_TRUE(vm->has_pending_work());
  ASSERT_TRUE(vm->RunPendingWork().ok());
  EXPECT_FALSE(vm->has_pending_work());
  auto counters = Parse(Request(*vm, "counters").body);
  EXPECT_EQ(One(counters, "queue_notifications"), "2");
  EXPECT_EQ(One(counters, "last_queue_item"), "second");
}

TEST_F(PluginVmTest, TickPeriodAndTicks) {
  PluginSpec spec;
  spec.plugin_configuration = "tick=50";
  auto vm = Start("abi_filter", spec);
  EXPECT_EQ(vm->tick_period_ms(), 50u);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(vm->Tick().ok());
  EXPECT_EQ(One(Parse(Request(*vm, "counters").body), "ticks"), "3");
  EXPECT_EQ(Start("abi_filter")->tick_period_ms(), 0u);
}

TEST_F(PluginVmTest, GuestLogLinesReachTheLogTaggedWithThePlugin) {
  PluginSpec spec;
  spec.name = "logger";
  auto vm = Start("abi_filter", spec);
  Request(*vm, "log");
  EXPECT_TRUE(Logged(LogLevel::kWarn, "abi_filter: a warning from the guest"));
  EXPECT_TRUE(Logged(LogLevel::kInfo, "abi_filter: printed to stdout"));  // WASI fd_write
  EXPECT_TRUE(Logged(LogLevel::kInfo, "finished"));                       // proxy_on_log ran
  for (const auto& line : logs_) EXPECT_EQ(line.plugin, "logger");

  // Lines below the host's level are dropped.
  logs_.clear();
  services_.log_level = LogLevel::kError;
  auto quiet = Start("abi_filter", spec);
  Request(*quiet, "log");
  EXPECT_FALSE(Logged(LogLevel::kWarn, "a warning from the guest"));
}

// An instance logs at most 100 lines a second. On an engine whose clock only the test moves, the
// second ends exactly when the test says so.
TEST_F(PluginVmTest, PastAHundredLinesASecondLinesAreDroppedAndCountedWhenTheSecondEnds) {
  ManualClock clock;
  auto engine = engine::CreateEngine("v8", clock);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto module = (*engine)->Compile(GuestBytes("abi_filter"));
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  auto store = (*engine)->NewStore();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto vm = PluginVm::Create(**store, *module, Named("chatty"), services_);
  ASSERT_TRUE(vm.ok()) << vm.status().ToString();
  // The start logs a line, and each "log" request three (a warning, one on stdout, proxy_on_log's):
  // 121 in the first second, of which the first 100 are kept.
  for (int i = 0; i < 40; ++i) Request(**vm, "log");
  EXPECT_EQ(logs_.size(), 100u);
  clock.Advance(std::chrono::milliseconds(999));
  Request(**vm, "log");
  EXPECT_EQ(logs_.size(), 100u) << "a line was kept before the second ended";
  clock.Advance(std::chrono::milliseconds(1));
  Request(**vm, "log");
  ASSERT_EQ(logs_.size(), 104u) << "the count of the dropped lines, then the request's own";
  EXPECT_EQ(logs_[100].message, "24 log lines of this instance were dropped (over 100 a second)");
  EXPECT_EQ(logs_[100].level, LogLevel::kWarn) << "as loud as the loudest line dropped";
}

TEST_F(PluginVmTest, ATrapFailsTheRequestAndTheVmButNothingElse) {
  auto vm = Start("abi_filter");
  auto bystander = Start("abi_filter");
  HttpRequest request;
  request.headers = {{"x-op", "trap"}};
  auto response = vm->HandleHttp(request);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kTrap);
  EXPECT_NE(response.status().message().find("proxy_on_request_headers"), std::string::npos)
      << response.status().message();
  EXPECT_NE(response.status().message().find("unreachable"), std::string::npos);
  EXPECT_TRUE(vm->failed());
  EXPECT_EQ(vm->HandleHttp({}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Request(*bystander, "local").status, 403u);
}

TEST_F(PluginVmTest, APauseNothingCanResumeIsAServerError) {
  auto vm = Start("abi_filter");
  auto response = Request(*vm, "pause");
  EXPECT_EQ(response.status, 500u);
  EXPECT_NE(response.body.find("paused the request"), std::string::npos);
  EXPECT_FALSE(vm->failed());
}

TEST_F(PluginVmTest, AModuleImportingEveryHostFunctionLinksAndRuns) {
  // The module really imports all 39 functions of 0.2.1 and the four of 0.1.0.
  auto info = wasm::ParseModule(GuestBytes("abi_raw"));
  ASSERT_TRUE(info.ok());
  std::set<std::string> imported;
  for (const auto& import : info->imports) imported.insert(import.module + "." + import.name);
  for (const char* name : {"proxy_done",
                           "proxy_set_effective_context",
                           "proxy_log",
                           "proxy_get_log_level",
                           "proxy_get_current_time_nanoseconds",
                           "proxy_set_tick_period_milliseconds",
                           "proxy_get_buffer_bytes",
                           "proxy_set_buffer_bytes",
                           "proxy_get_buffer_status",
                           "proxy_get_header_map_size",
                           "proxy_get_header_map_pairs",
                           "proxy_set_header_map_pairs",
                           "proxy_get_header_map_value",
                           "proxy_add_header_map_value",
                           "proxy_replace_header_map_value",
                           "proxy_remove_header_map_value",
                           "proxy_continue_stream",
                           "proxy_close_stream",
                           "proxy_get_status",
                           "proxy_send_local_response",
                           "proxy_http_call",
                           "proxy_grpc_call",
                           "proxy_grpc_stream",
                           "proxy_grpc_send",
                           "proxy_grpc_cancel",
                           "proxy_grpc_close",
                           "proxy_set_shared_data",
                           "proxy_get_shared_data",
                           "proxy_register_shared_queue",
                           "proxy_resolve_shared_queue",
                           "proxy_enqueue_shared_queue",
                           "proxy_dequeue_shared_queue",
                           "proxy_define_metric",
                           "proxy_record_metric",
                           "proxy_increment_metric",
                           "proxy_get_metric",
                           "proxy_get_property",
                           "proxy_set_property",
                           "proxy_call_foreign_function",
                           "proxy_get_configuration",
                           "proxy_continue_request",
                           "proxy_continue_response",
                           "proxy_clear_route_cache",
                           "proxy_get_state",
                           "proxy_invoke_service"}) {
    EXPECT_TRUE(imported.count(std::string("env.") + name)) << name;
  }

  auto vm = Start("abi_raw");
  auto response = Request(*vm, "all");
  auto report = Parse(response.body);
  const std::map<std::string, std::string> expected = {
      {"proxy_log", "0"},
      {"proxy_get_log_level", "0"},
      {"proxy_get_current_time_nanoseconds", "0"},
      {"time_is_recent", "1"},
      {"proxy_set_tick_period_milliseconds", "0"},
      {"proxy_set_buffer_bytes", "0"},
      {"proxy_get_buffer_bytes", "0"},
      {"proxy_get_buffer_status", "0"},
      {"proxy_get_buffer_bytes_missing_type", "1"},
      {"proxy_get_header_map_size", "0"},
      {"proxy_get_header_map_pairs", "0"},
      {"proxy_set_header_map_pairs", "0"},
      {"proxy_set_header_map_pairs_empty", "0"},
      {"proxy_set_header_map_pairs_malformed", "2"},
      {"proxy_get_header_map_value", "0"},
      {"proxy_get_header_map_value_absent", "1"},
      {"proxy_add_header_map_value", "0"},
      {"proxy_replace_header_map_value", "0"},
      {"proxy_remove_header_map_value", "0"},
      {"proxy_continue_stream", "0"},
      {"proxy_close_stream", "0"},
      {"proxy_get_status", "0"},
      {"proxy_http_call_without_path", "2"},
      {"proxy_http_call", "2"},
      {"proxy_grpc_call", "10"},
      {"proxy_grpc_stream", "10"},
      {"proxy_grpc_send", "1"},
      {"proxy_grpc_cancel", "1"},
      {"proxy_grpc_close", "1"},
      {"proxy_set_shared_data", "0"},
      {"proxy_get_shared_data", "0"},
      {"proxy_set_shared_data_stale_cas", "8"},
      {"proxy_register_shared_queue", "0"},
      {"proxy_resolve_shared_queue", "0"},
      {"proxy_enqueue_shared_queue", "0"},
      {"proxy_dequeue_shared_queue", "0"},
      {"proxy_dequeue_shared_queue_empty", "7"},
      {"proxy_define_metric", "0"},
      {"proxy_increment_metric", "0"},
      {"proxy_increment_metric_negative", "2"},
      {"proxy_record_metric", "0"},
      {"proxy_get_metric", "0"},
      {"metric_value", "42"},
      {"proxy_get_property", "0"},
      {"proxy_get_property_unknown", "1"},
      {"proxy_set_property", "0"},
      {"proxy_call_foreign_function", "1"},
      {"proxy_set_effective_context_unknown", "2"},
      {"proxy_get_configuration", "0"},
      {"proxy_continue_request", "0"},
      {"proxy_continue_response", "0"},
      {"proxy_clear_route_cache", "0"},
      {"proxy_get_state_without_store", "10"},
      {"proxy_invoke_service_without_invoker", "10"},
      {"legacy_resume_http_request", "0"},
      {"legacy_resume_http_response", "0"},
      {"legacy_resume_downstream", "0"},
      {"legacy_resume_upstream", "0"},
      {"legacy_dispatch_http_call", "2"},
      {"legacy_grpc_call", "10"},
      {"legacy_dispatch_grpc_call", "10"},
      {"legacy_open_grpc_stream", "10"},
      {"legacy_send_grpc_call_message", "1"},
      {"legacy_cancel_grpc_call", "1"},
      {"legacy_close_grpc_call", "1"},
      {"legacy_remove_metric", "0"},
      {"legacy_remove_metric_again", "1"},
      {"legacy_resolve_shared_queue", "0"},
      {"legacy_resolved_same_queue", "1"},
      {"legacy_remove_shared_queue", "0"},
      {"pthread_equal", "1"},
      {"wasi_fd_write", "0"},
      {"wasi_fd_write_bad_fd", "8"},
      {"wasi_clock_time_get", "0"},
      {"wasi_random_get", "0"},
      {"wasi_random_get_too_much", "28"},
      {"wasi_args_sizes_get", "0"},
      {"wasi_environ_sizes_get", "0"},
      {"wasi_fd_fdstat_get", "0"},
      {"wasi_fd_prestat_get", "8"},
      {"wasi_poll_oneoff", "0"},
      {"proxy_done", "0"},
      {"legacy_send_http_response", "0"},
  };
  for (const auto& [name, status] : expected) EXPECT_EQ(One(report, name), status) << name;
  EXPECT_EQ(report.size(), expected.size()) << response.body;
  EXPECT_TRUE(Logged(LogLevel::kInfo, "abi_raw: to stdout"));
  // The well-formed callout got as far as looking for its upstream.
  EXPECT_TRUE(
      Logged(LogLevel::kWarn, "proxy_http_call to 'up' refused: this host has no outbound calls configured"));

  // proxy_done deferred the root's deletion until after the callback.
  EXPECT_TRUE(vm->has_pending_work());
  EXPECT_TRUE(vm->RunPendingWork().ok());
  EXPECT_FALSE(vm->failed());
}

TEST_F(PluginVmTest, AnHttpCallOutlivesItsStreamAndAnswersOnTheRootWhileTheInstanceLives) {
  auto outbound = std::make_shared<FakeOutbound>();
  services_.outbound = outbound;
  PluginSpec spec;
  spec.plugin_configuration = "http://127.0.0.1:22164/haha?name=wasmwasm";
  spec.max_calls_in_flight = 2;
  auto vm = Start("http_call_continue", spec);
  ASSERT_NE(vm, nullptr);
  auto count_answers = [&] {
    return std::count_if(logs_.begin(), logs_.end(), [](const LogLine& line) {
      return line.message.find("http_call_continue: answer") != std::string::npos;
    });
  };

  // The guest calls out and continues: the stream ends at once, and its call goes on.
  EXPECT_EQ(Request(*vm, "").status, 200);
  ASSERT_EQ(outbound->started.size(), 1u);
  EXPECT_EQ(outbound->started[0].target, "127.0.0.1:22164");
  EXPECT_EQ(outbound->started[0].request.path, "/haha?name=wasmwasm");
  EXPECT_EQ(*outbound->cancelled, 0) << "the call was cancelled with its stream";
  EXPECT_EQ(count_answers(), 0) << "the stream's end was answered to the root as a failed call";

  // Its answer comes after the stream is gone, and reaches the root as the upstream gave it.
  HttpResponse answer;
  answer.status = 201;
  answer.headers = {{"X-Answer", "yes"}};
  answer.body = "created\r\nmore";
  outbound->started[0].done(answer);
  EXPECT_TRUE(
      Logged(LogLevel::kInfo, "answer to call 4 on root 1: status=201 headers=2 body=created stream=gone"));
  EXPECT_EQ(count_answers(), 1);

  // Calls that outlive their stream still count against max_calls_in_flight (2 here).
  EXPECT_EQ(Request(*vm, "").status, 200);
  EXPECT_EQ(Request(*vm, "").status, 200);
  EXPECT_EQ(Request(*vm, "").status, 200);
  EXPECT_EQ(outbound->started.size(), 3u);
  EXPECT_TRUE(Logged(LogLevel::kInfo, "http_call_continue: call refused: 10"));
  EXPECT_TRUE(Logged(LogLevel::kWarn, "proxy_http_call refused: the instance already has 2 calls in flight"));

  // The instance goes: its calls are cancelled, and an answer that comes anyway finds no one.
  vm.reset();
  EXPECT_EQ(*outbound->cancelled, 2);
  outbound->started[1].done(answer);
  EXPECT_EQ(count_answers(), 1);
}

TEST_F(PluginVmTest, HostileArgumentsGetInvalidMemoryAccessAndTheHostSurvives) {
  auto vm = Start("abi_raw");
  auto report = Parse(Request(*vm, "hostile").body);
  ASSERT_GT(report.size(), 40u);
  for (const auto& [name, status] : report) {
    const bool wasi = name.rfind("wasi_", 0) == 0;
    EXPECT_EQ(status, wasi ? "21" : "6") << name;  // FAULT / INVALID_MEMORY_ACCESS
  }
  EXPECT_FALSE(vm->failed());
  EXPECT_EQ(Request(*vm, "all").status, 200u);  // and the same instance goes on working
}

TEST_F(PluginVmTest, AGuestAllocatorThatAnswersGarbageIsCaught) {
  auto vm = Start("abi_raw");
  HttpRequest request;
  request.headers = {{"x-op", "garbage"}};
  auto response = vm->HandleHttp(request);
  ASSERT_FALSE(response.ok());
  EXPECT_NE(response.status().message().find("allocator returned address 4294967040"), std::string::npos)
      << response.status().message();
  EXPECT_TRUE(vm->failed());
  EXPECT_EQ(Request(*Start("abi_raw"), "all").status, 200u);
}

TEST_F(PluginVmTest, LayottoFunctionReportsItsIdAndReachesStateAndOtherFunctions) {
  auto vm = Start("layotto_function");
  EXPECT_TRUE(vm->reports_id());
  EXPECT_EQ(vm->route_id(), "id_test");

  auto call = [&](const std::string& query) {
    HttpRequest request;
    request.path = "/?" + query;  // no body: Layotto hands the query string over as the body
    auto response = vm->HandleHttp(request);
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? response->body : "";
  };
  EXPECT_EQ(call("state:book1"), "state status=0 value=100");
  EXPECT_EQ(call("state:nothing"), "state status=0 value=");
  EXPECT_EQ(call("state:broken"), "state status=10 value=");
  EXPECT_TRUE(Logged(LogLevel::kError, "connection refused"));
  EXPECT_EQ(call("invoke:book1"), "invoke status=0 value=stock:book1");
  EXPECT_EQ(invoker_->last_caller, "id_test");
  EXPECT_EQ(invoker_->last_method, "/stock");
  EXPECT_EQ(call("invoke:fail"), "invoke status=10 value=");
}

TEST_F(PluginVmTest, CallbacksRunInTheAbiOrderWithTheRightIds) {
  PluginSpec spec;
  spec.vm_configuration = "vm";
  spec.plugin_configuration = "plugin";
  spec.root_context_id = 7;
  auto vm = Start("abi_raw", spec);
  HttpRequest request;
  request.method = "POST";
  request.body = "abc";
  request.trailers = {{"t", "1"}};
  ASSERT_TRUE(vm->HandleHttp(request).ok());
  request = HttpRequest{};
  request.headers = {{"x-op", "trace"}};
  auto trace = vm->HandleHttp(request);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  EXPECT_EQ(trace->body,
            "create(7,0) vm_start(7,2) configure(7,6) "
            "create(8,7) request_headers(8,4,0) request_body(8,3,0) request_trailers(8,1) "
            "response_headers(8,1,1) done(8) log(8) delete(8) "
            "create(9,7) request_headers(9,5,1) ");
}

TEST_F(PluginVmTest, Abi010ModulesGetTheOldFormsAndWasiCommandsStart) {
  PluginSpec spec;
  spec.vm_configuration = "vmconf";
  spec.plugin_configuration = "pluginconf";
  auto vm = Start("abi_v010", spec);
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->abi_version(), "0.1.0");
  auto response = vm->HandleHttp({});
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->body, "vm=vmconf plugin=pluginconf absent=ok-empty continue=ok");
}

TEST_F(PluginVmTest, TheAllocatorMayLogButNotCallAnythingElse) {
  auto vm = Start("abi_raw");
  auto logged = Parse(Request(*vm, "alloc_log").body);
  EXPECT_EQ(One(logged, "get_pairs_through_allocator"), "0");
  EXPECT_TRUE(Logged(LogLevel::kDebug, "abi_raw: allocating"));

  HttpRequest request;
  request.headers = {{"x-op", "alloc_done"}};
  auto refused = vm->HandleHttp(request);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("the guest's allocator called proxy_done"), std::string::npos)
      << refused.status().message();
}

TEST_F(PluginVmTest, ModulesThatAreNotProxyWasmAreRefusedWithTheReason) {
  // No marker, no proxy_get_id.
  auto bare = SharedEngine().Compile(testing::ModuleBytes().Section(5, {0x01, 0x00, 0x01}).bytes());
  ASSERT_TRUE(bare.ok());
  auto vm = PluginVm::Create(*store_, *bare, Named("bare"), services_);
  ASSERT_FALSE(vm.ok());
  EXPECT_NE(vm.status().message().find("not a Proxy-Wasm module"), std::string::npos)
      << vm.status().message();

  // A callback with the wrong signature is named.
  std::vector<uint8_t> exports = {0x02};
  for (const char* name : {"proxy_abi_version_0_2_1", "proxy_on_vm_start"}) {
    auto n = testing::ModuleBytes::Name(name);
    exports.insert(exports.end(), n.begin(), n.end());
    exports.insert(exports.end(), {0x00, 0x00});
  }
  auto wrong = SharedEngine().Compile(testing::ModuleBytes()
                                          .Section(1, {0x01, 0x60, 0x00, 0x00})
                                          .Section(3, {0x01, 0x00})
                                          .Section(7, exports)
                                          .Section(10, {0x01, 0x02, 0x00, 0x0b})
                                          .bytes());
  ASSERT_TRUE(wrong.ok()) << wrong.status().ToString();
  vm = PluginVm::Create(*store_, *wrong, Named("wrong"), services_);
  ASSERT_FALSE(vm.ok());
  EXPECT_NE(vm.status().message().find(
                "export proxy_on_vm_start has type () -> (); the ABI requires (i32, i32) -> i32"),
            std::string::npos)
      << vm.status().message();
}

}  // namespace
}  // namespace wasmlet::abi
