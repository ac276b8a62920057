// Guest for the ABI tests, written with the SDK. The request header `x-op` picks what it does;
// it reports what it saw in the response body, one `key=value` line per fact, so the test can
// check each host function's effect from the outside.
#include <cstdio>
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

int ticks = 0;
int queue_notifications = 0;
std::string last_queue_item;

void Report(std::string_view key, std::string_view value) {
  std::string line(key);
  line += "=";
  line += value;
  line += "\n";
  AppendBuffer(BufferType::kHttpResponseBody, line);
}

std::string StatusText(Status s) { return std::to_string(static_cast<uint32_t>(s)); }

class Root : public RootContext {
 public:
  using RootContext::RootContext;
  bool OnVmStart(size_t) override {
    Log(LogLevel::kInfo, "abi_filter: vm started");
    return true;
  }
  bool OnConfigure(size_t size) override {
    auto config = GetBuffer(BufferType::kPluginConfiguration, 0, size).value_or("");
    if (config == "reject") return false;
    if (config == "fragile") {
      // Starts once; every later instance of this plugin refuses to start (shared data
      // outlives instances), as a function with a broken dependency would.
      auto starts = GetSharedData("starts");
      SetSharedData("starts", starts ? "more" : "one");
      return !starts;
    }
    if (config.rfind("starts=", 0) == 0) {
      // Starts N times in all; later instances refuse (the count is shared data, which
      // outlives instances). Tests start these one at a time.
      const int limit = std::stoi(config.substr(7));
      auto seen = GetSharedData("starts");
      const int count = seen ? std::stoi(seen->value) : 0;
      if (count >= limit) return false;
      SetSharedData("starts", std::to_string(count + 1));
      return true;
    }
    if (config.rfind("tick=", 0) == 0) SetTickPeriodMilliseconds(std::stoi(config.substr(5)));
    return true;
  }
  void OnTick() override { ++ticks; }
  void OnQueueReady(uint32_t queue_id) override {
    ++queue_notifications;
    std::string item;
    if (Dequeue(queue_id, &item) == Status::kOk) last_queue_item = item;
  }
};

class Stream : public StreamContext {
 public:
  using StreamContext::StreamContext;

  Action OnRequestHeaders(uint32_t, bool) override {
    op_ = GetHeader(MapType::kRequestHeaders, "x-op").value_or("");
    if (op_ == "headers") return Headers();
    if (op_ == "local") {
      SendLocalResponse(403, "forbidden by the test policy\n", {{"X-Reason", "policy"}}, "policy");
      return Action::kPause;
    }
    if (op_ == "properties") return Properties();
    if (op_ == "shared") return Shared();
    if (op_ == "queue") return Queue();
    if (op_ == "subscribe") Report("subscribed", RegisterQueue("jobs") ? "yes" : "no");
    if (op_ == "publish") {
      auto id = ResolveQueue("", "jobs");
      Report("published", id && Enqueue(*id, "from the publisher") == Status::kOk ? "yes" : "no");
    }
    if (op_ == "counters") {
      Report("ticks", std::to_string(ticks));
      Report("queue_notifications", std::to_string(queue_notifications));
      Report("last_queue_item", last_queue_item);
    }
    if (op_ == "log") {
      Log(LogLevel::kWarn, "abi_filter: a warning from the guest");
      std::printf("abi_filter: printed to stdout\n");
      std::fflush(stdout);
    }
    if (op_ == "trap") __builtin_trap();
    if (op_ == "hog") {
      // Take memory until the host's limit says no, then fail as an out-of-memory guest would.
      while (__builtin_wasm_memory_grow(0, 16) != static_cast<size_t>(-1)) {
      }
      __builtin_trap();
    }
    if (op_ == "spin") {
      volatile uint64_t n = 0;
      for (;;) n = n + 1;
    }
    if (op_ == "pause") return Action::kPause;
    if (op_ == "response_body") AppendBuffer(BufferType::kHttpResponseBody, "written by the request phase\n");
    return Action::kContinue;
  }

  Action OnRequestBody(size_t size, bool) override {
    if (op_ == "echo") {
      AppendBuffer(BufferType::kHttpResponseBody,
                   "echo=" + GetBuffer(BufferType::kHttpRequestBody).value_or("") + "\n");
      return Action::kContinue;
    }
    if (op_ != "body") return Action::kContinue;
    // Request body "world": prepend, append, then overwrite the first byte.
    PrependBuffer(BufferType::kHttpRequestBody, "hello ");
    AppendBuffer(BufferType::kHttpRequestBody, "!");
    SetBuffer(BufferType::kHttpRequestBody, 0, 1, "H");
    Report("request_body", GetBuffer(BufferType::kHttpRequestBody).value_or("<none>"));
    Report("body_size_argument", std::to_string(size));
    Report("slice", GetBuffer(BufferType::kHttpRequestBody, 6, 5).value_or("<none>"));
    Report("past_end", GetBuffer(BufferType::kHttpRequestBody, 1000, 5).value_or("<none>"));
    return Action::kContinue;
  }

  Action OnResponseHeaders(uint32_t, bool) override {
    AddHeader(MapType::kResponseHeaders, "x-filter", "seen");
    if (op_ == "rewrite") ReplaceHeader(MapType::kResponseHeaders, ":status", "202");
    return Action::kContinue;
  }

  Action OnResponseBody(size_t, bool) override {
    if (op_ == "response_body")
      ReplaceBuffer(BufferType::kHttpResponseBody, "replaced by the response phase\n");
    return Action::kContinue;
  }

  void OnLog() override { Log(LogLevel::kInfo, "abi_filter: stream " + std::to_string(id()) + " finished"); }

 private:
  Action Headers() {
    auto in = GetHeader(MapType::kRequestHeaders, "X-In");  // case-insensitive lookup
    Report("x-in", in.value_or("<absent>"));
    Report("missing", GetHeader(MapType::kRequestHeaders, "x-missing") ? "present" : "absent");
    AddHeader(MapType::kRequestHeaders, "x-added", "1");
    AddHeader(MapType::kRequestHeaders, "x-added", "2");
    ReplaceHeader(MapType::kRequestHeaders, "x-replace", "new");
    ReplaceHeader(MapType::kRequestHeaders, "x-inserted", "by-replace");
    RemoveHeader(MapType::kRequestHeaders, "x-remove");
    RemoveHeader(MapType::kRequestHeaders, "x-never-there");
    for (const auto& [name, value] : GetHeaders(MapType::kRequestHeaders)) Report("header " + name, value);
    // Round trip through set_header_map_pairs: replace the whole map.
    SetHeaders(MapType::kRequestTrailers, {{"t1", "v1"}, {"t2", ""}});
    for (const auto& [name, value] : GetHeaders(MapType::kRequestTrailers)) Report("trailer " + name, value);
    return Action::kContinue;
  }

  Action Properties() {
    Report("plugin_name", GetProperty({"plugin_name"}).value_or("<none>"));
    Report("plugin_root_id", GetProperty({"plugin_root_id"}).value_or("<none>"));
    Report("request.path", GetProperty({"request", "path"}).value_or("<none>"));
    Report("request.method", GetProperty({"request", "method"}).value_or("<none>"));
    Report("request.headers.x-in", GetProperty({"request", "headers", "x-in"}).value_or("<none>"));
    Report("unknown", GetProperty({"no", "such", "property"}) ? "found" : "NOT_FOUND");
    SetProperty({"filter_state", "mine"}, "kept");
    Report("filter_state.mine", GetProperty({"filter_state", "mine"}).value_or("<none>"));
    return Action::kContinue;
  }

  Action Shared() {
    Report("get_missing", GetSharedData("counter") ? "found" : "NOT_FOUND");
    Report("set_unconditional", StatusText(SetSharedData("counter", "1")));
    auto first = GetSharedData("counter");
    Report("value", first ? first->value : "<none>");
    Report("set_with_cas", StatusText(SetSharedData("counter", "2", first ? first->cas : 0)));
    Report("set_with_stale_cas", StatusText(SetSharedData("counter", "3", first ? first->cas : 0)));
    auto now = GetSharedData("counter");
    Report("final", now ? now->value : "<none>");
    Report("cas_changed", now && first && now->cas != first->cas ? "yes" : "no");
    return Action::kContinue;
  }

  Action Queue() {
    auto id = RegisterQueue("jobs");
    Report("registered", id ? "yes" : "no");
    auto resolved = ResolveQueue("", "jobs");
    Report("resolved_same", resolved && id && *resolved == *id ? "yes" : "no");
    Report("resolve_unknown", ResolveQueue("", "nope") ? "found" : "NOT_FOUND");
    std::string item;
    Report("dequeue_empty", StatusText(Dequeue(*id, &item)));
    Enqueue(*id, "first");
    Enqueue(*id, "second");
    Report("dequeue", Dequeue(*id, &item) == Status::kOk ? item : "<failed>");
    Report("enqueue_unknown", StatusText(Enqueue(9999, "x")));
    Report("notified_inline", std::to_string(queue_notifications));
    return Action::kContinue;
  }

  std::string op_;
};

}  // namespace

WASMLET_REGISTER_PLUGIN(Root, Stream)
