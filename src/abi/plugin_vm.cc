#include "abi/plugin_vm.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "abi/stream_run.h"
#include "common/text.h"

namespace wasmlet::abi {
namespace {

using engine::ExportedFunction;
using engine::FunctionType;
using engine::ValType;
using engine::Value;

FunctionType I32s(size_t params, size_t results) {
  return FunctionType{std::vector<ValType>(params, ValType::kI32),
                      std::vector<ValType>(results, ValType::kI32)};
}

// Header and body actions above Continue all stop iteration (ABI §5.4).
constexpr uint32_t kContinue = 0;

std::string QueryString(std::string_view path) {
  auto q = path.find('?');
  return q == std::string_view::npos ? std::string() : std::string(path.substr(q + 1));
}

}  // namespace

LogSink DefaultLogSink() {
  return [](LogLevel level, std::string_view plugin, std::string_view message) {
    static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::trace, spdlog::level::debug,
                                                            spdlog::level::info,  spdlog::level::warn,
                                                            spdlog::level::err,   spdlog::level::critical};
    // A guest's text is not trusted: no control characters (a forged log line) or invalid UTF-8.
    spdlog::log(kLevels[static_cast<uint32_t>(level)], "[wasm {}] {}", Printable(plugin, 128),
                Printable(message, 16 << 10));
  };
}

PluginVm::PluginVm(std::shared_ptr<const PluginSpec> spec, HostServices services)
    : spec_(std::move(spec)), services_(std::move(services)) {
  next_context_id_ = spec_->root_context_id + 1;
}

PluginVm::~PluginVm() {
  set_pending_work_notifier(nullptr);
  // Calls still in flight die with the instance, with no callback: the answers' handlers find
  // the instance gone, even one a cancel would run at once.
  alive_.reset();
  CancelAllCalls();
  // Streams waiting in this instance learn that it is gone (their wakes only post).
  for (auto& [id, context] : contexts_) {
    if (context.stream && context.stream->wake) context.stream->wake();
  }
  if (owned_instance_) owned_instance_->set_host_data(nullptr);
}

Result<std::unique_ptr<PluginVm>> PluginVm::Create(engine::Store& store,
                                                   std::shared_ptr<const engine::Module> module,
                                                   std::shared_ptr<const PluginSpec> spec,
                                                   HostServices services) {
  if (!services.shared) return InvalidArgument("PluginVm needs the process's SharedState");
  const std::string name = spec->name;
  auto fail = [&](const Status& status) {
    return Status(status.code(), "plugin '" + name + "': " + status.message());
  };
  const auto deadline = store.clock().Now() + spec->start_timeout;
  std::unique_ptr<PluginVm> vm(new PluginVm(std::move(spec), std::move(services)));
  vm->clock_ = &store.clock();  // before the start section, which may log
  // The module's start section (if any) runs inside Instantiate, already with this PluginVm as
  // its host data, outside any context.
  auto instance = store.Instantiate(std::move(module), ProxyWasmHostFunctions(), deadline, vm.get());
  if (!instance.ok()) return fail(instance.status());
  vm->owned_instance_ = std::move(*instance);
  vm->instance_ = vm->owned_instance_.get();
  Status status = vm->ResolveExports();
  if (status.ok()) status = vm->Start(deadline);
  if (!status.ok()) return fail(status);
  return vm;
}

Status PluginVm::ResolveExports() {
  const wasm::ModuleInfo& info = instance_->module().info();
  std::string_view marker = info.AbiMarker();
  if (!marker.empty())
    abi_version_ = std::string(marker.substr(std::string_view("proxy_abi_version_").size()));
  for (char& c : abi_version_) c = c == '_' ? '.' : c;

  // Every callback's type is checked here, so a wrong signature fails the load with its name.
  std::string error;
  auto bind = [&](const char* name, const FunctionType& type) -> std::optional<ExportedFunction> {
    auto fn = instance_->FindFunction(name);
    if (!fn) return std::nullopt;
    if (*fn->type != type && error.empty()) {
      error = std::string("export ") + name + " has type " + fn->type->ToString() + "; the ABI requires " +
              type.ToString();
    }
    return *fn->type == type ? fn : std::nullopt;
  };
  exports_.on_context_create = bind("proxy_on_context_create", I32s(2, 0));
  exports_.on_vm_start = bind("proxy_on_vm_start", I32s(2, 1));
  exports_.on_configure = bind("proxy_on_configure", I32s(2, 1));
  exports_.on_tick = bind("proxy_on_tick", I32s(1, 0));
  exports_.on_done = bind("proxy_on_done", I32s(1, 1));
  exports_.on_log = bind("proxy_on_log", I32s(1, 0));
  exports_.on_delete = bind("proxy_on_delete", I32s(1, 0));
  exports_.on_request_body = bind("proxy_on_request_body", I32s(3, 1));
  exports_.on_request_trailers = bind("proxy_on_request_trailers", I32s(2, 1));
  exports_.on_response_body = bind("proxy_on_response_body", I32s(3, 1));
  exports_.on_response_trailers = bind("proxy_on_response_trailers", I32s(2, 1));
  exports_.on_queue_ready = bind("proxy_on_queue_ready", I32s(2, 0));
  exports_.on_http_call_response = bind("proxy_on_http_call_response", I32s(5, 0));
  exports_.on_grpc_initial_metadata = bind("proxy_on_grpc_receive_initial_metadata", I32s(3, 0));
  exports_.on_grpc_receive = bind("proxy_on_grpc_receive", I32s(3, 0));
  exports_.on_grpc_trailing_metadata = bind("proxy_on_grpc_receive_trailing_metadata", I32s(3, 0));
  // AssemblyScript's SDK exports it under this name.
  if (!exports_.on_grpc_trailing_metadata)
    exports_.on_grpc_trailing_metadata = bind("proxy_on_grpc_trailing_metadata", I32s(3, 0));
  exports_.on_grpc_close = bind("proxy_on_grpc_close", I32s(3, 0));
  exports_.get_id = bind("proxy_get_id", I32s(0, 0));
  // Header callbacks: the export's own type decides between the 0.1.0 (2) and 0.2.x (3) forms.
  auto request_headers = instance_->FindFunction("proxy_on_request_headers");
  exports_.headers_take_eos = !(request_headers && request_headers->type->params.size() == 2);
  const FunctionType headers_type = I32s(exports_.headers_take_eos ? 3 : 2, 1);
  exports_.on_request_headers = bind("proxy_on_request_headers", headers_type);
  exports_.on_response_headers = bind("proxy_on_response_headers", headers_type);
  if (!error.empty()) return InvalidArgument(error);

  if (marker.empty() && !exports_.get_id) {
    return InvalidArgument(
        "not a Proxy-Wasm module: it exports no proxy_abi_version_* marker and no proxy_get_id; build it "
        "with a "
        "Proxy-Wasm SDK");
  }
  exports_.allocator = bind("proxy_on_memory_allocate", I32s(1, 1));
  if (!exports_.allocator) exports_.allocator = bind("malloc", I32s(1, 1));
  if (!exports_.allocator) {
    return InvalidArgument(
        "the module exports no allocator (proxy_on_memory_allocate or malloc, of type (i32) -> i32), so the "
        "host "
        "cannot hand it data");
  }
  return Status::Ok();
}

Status PluginVm::Start(engine::Deadline deadline) {
  deadline_ = deadline;
  auto run = [&](const char* name, std::span<const Value> args, size_t results) -> Status {
    auto fn = instance_->FindFunction(name);
    if (!fn) return Status::Ok();
    std::vector<Value> out(results);
    Status status = instance_->Call(*fn, args, out, deadline_);
    if (status.code() == StatusCode::kExit && exit_code_ == 0) return Status::Ok();  // WASI command end
    if (!status.ok()) return Status(status.code(), std::string(name) + " failed: " + status.message());
    return Status::Ok();
  };
  // Entry: _initialize (+ main or __main_void), otherwise _start (ABI §2.2).
  const auto& info = instance_->module().info();
  if (info.ExportedFunctionType("_initialize")) {
    if (*info.ExportedFunctionType("_initialize") != I32s(0, 0))
      return InvalidArgument("export _initialize must be () -> ()");
    WASMLET_RETURN_IF_ERROR(run("_initialize", {}, 0));
    const Value zero[2] = {Value::I32(0), Value::I32(0)};
    if (const auto* main = info.ExportedFunctionType("main"); main && *main == I32s(2, 1)) {
      WASMLET_RETURN_IF_ERROR(run("main", zero, 1));
    } else if (const auto* main_void = info.ExportedFunctionType("__main_void");
               main_void && *main_void == I32s(0, 1)) {
      WASMLET_RETURN_IF_ERROR(run("__main_void", {}, 1));
    }
  } else if (const auto* start = info.ExportedFunctionType("_start")) {
    if (*start != I32s(0, 0)) return InvalidArgument("export _start must be () -> ()");
    WASMLET_RETURN_IF_ERROR(run("_start", {}, 0));
  }
  exit_code_.reset();

  // Layotto: the module names its route through the call-data buffer (ABI §7.3).
  if (exports_.get_id) {
    phase_ = Phase::kGetId;
    call_data_.clear();
    auto r = Callback(exports_.get_id, "proxy_get_id", 0, {});
    if (!r.ok()) return r.status();
    if (call_data_.empty()) {
      return InvalidArgument(
          "proxy_get_id wrote no id to the call-data buffer (buffer 8), so the function has no route");
    }
    route_id_ = call_data_;
    reports_id_ = true;
    call_data_.clear();
  } else {
    route_id_ = spec_->name;
  }

  const uint32_t root = spec_->root_context_id;
  contexts_[root] = Context{root, 0, nullptr};
  phase_ = Phase::kStartup;
  auto created = Callback(exports_.on_context_create, "proxy_on_context_create", root, {root, 0});
  if (!created.ok()) return created.status();
  phase_ = Phase::kVmStart;
  auto started = Callback(exports_.on_vm_start, "proxy_on_vm_start", root,
                          {root, static_cast<uint32_t>(spec_->vm_configuration.size())}, 1);
  if (!started.ok()) return started.status();
  if (*started == 0)
    return FailedPrecondition("proxy_on_vm_start returned false: the plugin refused to start");
  phase_ = Phase::kConfigure;
  auto configured = Callback(exports_.on_configure, "proxy_on_configure", root,
                             {root, static_cast<uint32_t>(spec_->plugin_configuration.size())}, 1);
  if (!configured.ok()) return configured.status();
  if (*configured == 0)
    return InvalidArgument("proxy_on_configure returned false: the plugin rejected its configuration");
  phase_ = Phase::kOther;
  deadline_ = engine::kNoDeadline;
  return Status::Ok();
}

Result<uint32_t> PluginVm::Callback(const std::optional<ExportedFunction>& fn, const char* name,
                                    uint32_t context_id, std::initializer_list<uint32_t> args,
                                    uint32_t if_missing) {
  if (!fn) return if_missing;
  if (failed())
    return FailedPrecondition("plugin '" + spec_->name + "' failed earlier; it takes no more calls");
  if (in_guest_) {
    // A host call of this very instance led back to it (a function that invokes, through
    // others, the function it is): its SDK's state is in use, so the call is refused.
    return FailedPrecondition(
        "plugin '" + spec_->name + "' is already in a callback (" + name +
        " would re-enter it); a chain of calls came back to an instance that is running");
  }
  Value values[8];
  size_t n = 0;
  for (uint32_t a : args) values[n++] = Value::I32(static_cast<int32_t>(a));
  Value result;
  const bool has_result = !fn->type->results.empty();
  current_context_ = effective_context_ = context_id;
  in_guest_ = true;
  Status status = instance_->Call(*fn, {values, n}, {&result, has_result ? 1u : 0u}, deadline_);
  in_guest_ = false;
  current_context_ = effective_context_ = 0;
  if (!status.ok()) {
    failed_ = true;
    // A failed instance takes no more callbacks, so its calls could only hold their connections
    // until it is replaced: they stop now, with no callback.
    CancelAllCalls();
    // Streams waiting in this instance learn at once that it failed (their wakes only post).
    for (auto& [id, context] : contexts_) {
      if (context.stream && context.stream->wake && id != context_id) context.stream->wake();
    }
    if (status.code() == StatusCode::kExit) {
      status = Status(StatusCode::kTrap,
                      "the guest called proc_exit(" + std::to_string(exit_code_.value_or(0)) + ")");
    }
    return Status(status.code(), std::string(name) + ": " + status.message());
  }
  return has_result ? static_cast<uint32_t>(result.i32) : 0u;
}

// ---- HTTP --------------------------------------------------------------------------------------

void PluginVm::HandleHttpAsync(HttpRequest request, std::chrono::milliseconds budget, StreamRun::Post post,
                               HttpDone done) {
  if (failed()) {
    return done(FailedPrecondition("plugin '" + spec_->name + "' failed earlier; it takes no more requests"));
  }
  auto data = std::make_unique<StreamData>();
  HeaderMap& request_headers = data->maps[static_cast<int>(MapType::kHttpRequestHeaders)];
  request_headers.Reserve(4 + request.headers.size());
  request_headers.Add(":method", request.method);
  request_headers.Add(":path", request.path);
  request_headers.Add(":authority", request.authority);
  request_headers.Add(":scheme", request.scheme);
  for (const auto& [name, value] : request.headers) request_headers.Add(name, value);
  data->maps[static_cast<int>(MapType::kHttpRequestTrailers)] = HeaderMap(request.trailers);
  // Layotto presents the query string as the body of a request that has none (ABI §7.7).
  data->request_body_size = request.body.size();
  data->request_body = request.body.empty() ? QueryString(request.path) : std::move(request.body);
  // The stream keeps the rest for properties; headers and body live in the maps and buffers.
  request.headers.clear();
  request.body.clear();
  request.trailers.clear();
  data->request = std::move(request);
  // A function's answer, when it did not answer locally: 200 with the response body it wrote.
  auto answer = [](StreamData& stream, std::function<void(HttpResponse)> respond) {
    HttpResponse response;
    response.body = std::move(stream.response_body);
    respond(std::move(response));
  };
  StreamRun::Start({StreamRun::Filter{this, budget}}, std::move(data), answer, std::move(post),
                   std::move(done));
}

Result<HttpResponse> PluginVm::HandleHttp(HttpRequest request, engine::Deadline deadline) {
  std::optional<Result<HttpResponse>> result;
  const auto budget = deadline == engine::kNoDeadline
                          ? std::chrono::milliseconds(std::chrono::hours(24))
                          : std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_->Now());
  // No post: a stream that would wait fails instead, so the answer is there when this returns.
  HandleHttpAsync(std::move(request), budget, nullptr,
                  [&result](Result<HttpResponse> r) { result = std::move(r); });
  if (!result) return Internal("plugin '" + spec_->name + "': the stream did not end");
  return std::move(*result);
}

// ---- streams driven one phase at a time ------------------------------------------------------------

Result<uint32_t> PluginVm::OpenStream(StreamData* data, std::function<void()> wake,
                                      engine::Deadline deadline) {
  if (failed())
    return FailedPrecondition("plugin '" + spec_->name + "' failed earlier; it takes no more requests");
  const uint32_t root = spec_->root_context_id;
  uint32_t id = next_context_id_++;
  while (id == root || id == 0 || contexts_.count(id)) id = next_context_id_++;
  Context& context = contexts_[id];
  context = Context{id, root, std::make_unique<Stream>()};
  context.stream->data = data;
  context.stream->wake = std::move(wake);
  deadline_ = deadline;
  auto r = Callback(exports_.on_context_create, "proxy_on_context_create", id, {id, root});
  deadline_ = engine::kNoDeadline;
  WakeStreams();
  if (!r.ok()) {
    contexts_.erase(id);
    return r.status();
  }
  return id;
}

Result<StreamAction> PluginVm::RunStreamPhase(uint32_t id, StreamPhase phase, bool end_of_stream,
                                              engine::Deadline deadline) {
  auto it = contexts_.find(id);
  if (it == contexts_.end() || !it->second.stream)
    return FailedPrecondition("no stream context " + std::to_string(id));
  Stream& s = *it->second.stream;
  StreamData& d = *s.data;
  const uint32_t eos = end_of_stream ? 1 : 0;
  auto count = [&](MapType type) { return static_cast<uint32_t>(d.maps[static_cast<int>(type)].size()); };
  s.in_callback = true;
  deadline_ = deadline;
  Result<uint32_t> r = kContinue;
  switch (phase) {
    case StreamPhase::kRequestHeaders: {
      const uint32_t n = count(MapType::kHttpRequestHeaders);
      r = exports_.headers_take_eos
              ? Callback(exports_.on_request_headers, "proxy_on_request_headers", id, {id, n, eos})
              : Callback(exports_.on_request_headers, "proxy_on_request_headers", id, {id, n});
      break;
    }
    case StreamPhase::kRequestBody:
      r = Callback(exports_.on_request_body, "proxy_on_request_body", id,
                   {id, static_cast<uint32_t>(d.request_body.size()), eos});
      break;
    case StreamPhase::kRequestTrailers:
      r = Callback(exports_.on_request_trailers, "proxy_on_request_trailers", id,
                   {id, count(MapType::kHttpRequestTrailers)});
      break;
    case StreamPhase::kResponseHeaders: {
      const uint32_t n = count(MapType::kHttpResponseHeaders);
      r = exports_.headers_take_eos
              ? Callback(exports_.on_response_headers, "proxy_on_response_headers", id, {id, n, eos})
              : Callback(exports_.on_response_headers, "proxy_on_response_headers", id, {id, n});
      break;
    }
    case StreamPhase::kResponseBody:
      r = Callback(exports_.on_response_body, "proxy_on_response_body", id,
                   {id, static_cast<uint32_t>(d.response_body.size()), eos});
      break;
    case StreamPhase::kResponseTrailers:
      r = Callback(exports_.on_response_trailers, "proxy_on_response_trailers", id,
                   {id, count(MapType::kHttpResponseTrailers)});
      break;
  }
  deadline_ = engine::kNoDeadline;
  // The context may be gone if the guest failed; look it up again.
  it = contexts_.find(id);
  if (it != contexts_.end() && it->second.stream) it->second.stream->in_callback = false;
  if (!r.ok()) return r.status();
  WakeStreams();  // others this callback resumed (through proxy_set_effective_context)
  if (s.local_response) return StreamAction::kLocal;
  s.paused = *r != kContinue;
  return s.paused ? StreamAction::kStop : StreamAction::kContinue;
}

StreamAction PluginVm::StreamState(uint32_t id) {
  auto it = contexts_.find(id);
  if (it == contexts_.end() || !it->second.stream) return StreamAction::kStop;
  const Stream& s = *it->second.stream;
  if (s.local_response) return StreamAction::kLocal;
  return s.paused ? StreamAction::kStop : StreamAction::kContinue;
}

std::optional<HttpResponse> PluginVm::TakeLocalResponse(uint32_t id) {
  auto it = contexts_.find(id);
  if (it == contexts_.end() || !it->second.stream || !it->second.stream->local_response) return std::nullopt;
  std::optional<HttpResponse> response = std::move(it->second.stream->local_response);
  it->second.stream->local_response.reset();
  it->second.stream->paused = false;
  return response;
}

uint32_t PluginVm::calls_in_flight(uint32_t id) {
  auto it = contexts_.find(id);
  return it == contexts_.end() || !it->second.stream ? 0 : it->second.stream->calls_in_flight;
}

Status PluginVm::CloseStream(uint32_t id, engine::Deadline deadline) {
  if (!contexts_.count(id)) return Status::Ok();
  Status status;
  if (!failed()) {
    deadline_ = deadline;
    status = FinishStream(id);
    deadline_ = engine::kNoDeadline;
  }
  contexts_.erase(id);
  // Its calls still in flight go on: they belong to the plugin, not to the stream (as in Envoy
  // and MOSN), and answer on the root. They still count against max_calls_in_flight.
  DetachCalls(id);
  WakeStreams();
  if (!status.ok()) return Status(status.code(), "plugin '" + spec_->name + "': " + status.message());
  return status;
}

void PluginVm::WakeStreams() {
  if (woken_.empty()) return;
  std::vector<uint32_t> woken;
  woken.swap(woken_);
  for (uint32_t id : woken) {
    auto it = contexts_.find(id);
    if (it == contexts_.end() || !it->second.stream || !it->second.stream->wake) continue;
    auto wake = it->second.stream->wake;  // it may end the stream
    wake();
  }
}

void PluginVm::MarkWoken(uint32_t id) {
  if (std::find(woken_.begin(), woken_.end(), id) == woken_.end()) woken_.push_back(id);
}

// ---- outbound calls ----------------------------------------------------------------------------

uint32_t PluginVm::AddCall(std::function<void()> cancel, CallKind kind) {
  if (calls_.size() >= spec_->max_calls_in_flight) return 0;
  const uint32_t context_id = effective_context_;
  // Tokens are non-zero and unique in this instance; the low two bits say the kind.
  uint32_t token = 0;
  do {
    next_token_ += 4;
    token = next_token_ + static_cast<uint32_t>(kind);
  } while (token == 0 || calls_.count(token));
  calls_[token] = Call{context_id, std::move(cancel), nullptr, {}};
  if (Stream* stream = effective_stream()) ++stream->calls_in_flight;
  return token;
}

void PluginVm::SetCallCancel(uint32_t token, std::function<void()> cancel) {
  if (auto it = calls_.find(token); it != calls_.end()) it->second.cancel = std::move(cancel);
}

void PluginVm::SetGrpcCall(uint32_t token, std::shared_ptr<OutboundGrpc::Call> call) {
  auto it = calls_.find(token);
  if (it == calls_.end()) return;
  it->second.cancel = [call] { call->Cancel(); };
  it->second.grpc = std::move(call);
}

std::optional<PluginVm::Call> PluginVm::TakeCall(uint32_t token) {
  auto it = calls_.find(token);
  if (it == calls_.end()) return std::nullopt;
  if (auto c = contexts_.find(it->second.context_id); c != contexts_.end() && c->second.stream) {
    if (c->second.stream->calls_in_flight > 0) --c->second.stream->calls_in_flight;
  }
  Call call = std::move(it->second);
  calls_.erase(it);
  return call;
}

void PluginVm::CancelCall(uint32_t token) { TakeCall(token); }

void PluginVm::CancelAllCalls() {
  std::unordered_map<uint32_t, Call> calls;
  calls.swap(calls_);
  for (auto& [id, context] : contexts_) {
    if (context.stream) context.stream->calls_in_flight = 0;
  }
  for (auto& [token, call] : calls) {
    if (call.cancel) call.cancel();
  }
}

void PluginVm::DetachCalls(uint32_t context_id) {
  // The root takes them over: a later stream that gets the same id is not woken by them.
  const uint32_t root = spec_->root_context_id;
  for (auto& [token, call] : calls_) {
    if (call.context_id == context_id) call.context_id = root;
  }
}

HeaderMap* PluginVm::call_response_map(uint32_t type) {
  switch (static_cast<MapType>(type)) {
    case MapType::kHttpCallResponseHeaders: return reply_ == Reply::kHttp ? &call_response_maps_[0] : nullptr;
    case MapType::kHttpCallResponseTrailers:
      return reply_ == Reply::kHttp ? &call_response_maps_[1] : nullptr;
    case MapType::kGrpcReceiveInitialMetadata:
      return reply_ == Reply::kGrpcInitialMetadata ? &call_response_maps_[0] : nullptr;
    case MapType::kGrpcReceiveTrailingMetadata:
      return reply_ == Reply::kGrpcTrailingMetadata ? &call_response_maps_[1] : nullptr;
    default: return nullptr;
  }
}

const std::string* PluginVm::call_response_body(BufferType type) {
  if (type == BufferType::kHttpCallResponseBody && reply_ == Reply::kHttp) return &reply_body_;
  if (type == BufferType::kGrpcReceiveBuffer && reply_ == Reply::kGrpcMessage) return &reply_body_;
  return nullptr;
}

void PluginVm::AfterLastReply(uint32_t context_id) {
  // The stream that made the call goes on, or learns that nothing is left to wait for.
  auto c = contexts_.find(context_id);
  if (c != contexts_.end() && c->second.stream && !c->second.stream->in_callback) MarkWoken(context_id);
  AfterCallback();
}

void PluginVm::AfterCallback() {
  // The streams the callback resumed or answered go on; after a failure, every stream learns
  // that its instance is gone.
  if (failed()) {
    for (const auto& [id, context] : contexts_) {
      if (context.stream) MarkWoken(id);
    }
  }
  WakeStreams();
}

Status PluginVm::DeliverHttpCallResponse(uint32_t token, const HttpResponse* response,
                                         engine::Deadline deadline) {
  std::optional<Call> call = TakeCall(token);
  if (!call) return Status::Ok();  // cancelled
  Status status = DeliverToRoot(token, response, deadline);
  if (response && response->local) {
    // The guest sees only that the call failed (no headers); the operator sees why.
    Log(LogLevel::kWarn, "proxy_http_call " + std::to_string(token) + " failed: " + response->details);
  }
  AfterLastReply(call->context_id);
  return status;
}

Status PluginVm::ReplyToRoot(Reply reply, const std::function<Result<uint32_t>(uint32_t root)>& invoke,
                             engine::Deadline deadline) {
  const uint32_t root = spec_->root_context_id;
  Status status;
  if (contexts_.count(root) && !failed()) {
    reply_ = reply;
    deadline_ = deadline;
    status = invoke(root).status();
    deadline_ = engine::kNoDeadline;
    if (status.ok()) status = DeleteRootIfRequested();
  }
  reply_ = Reply::kNone;
  reply_body_.clear();
  call_response_maps_[0] = HeaderMap();
  call_response_maps_[1] = HeaderMap();
  call_status_ = 0;
  call_status_message_.clear();
  return status;
}

Status PluginVm::DeliverToRoot(uint32_t token, const HttpResponse* response, engine::Deadline deadline) {
  // A failed call (no answer from the upstream) has no headers (ABI §3.4).
  if (response && !response->local) {
    call_response_maps_[0].Reserve(response->headers.size() + 1);
    call_response_maps_[0].Add(":status", std::to_string(response->status));
    for (const auto& [name, value] : response->headers) call_response_maps_[0].Add(ToLower(name), value);
    call_response_maps_[1] = HeaderMap(response->trailers);
    reply_body_ = response->body;
    call_status_ = response->status;
  }
  return ReplyToRoot(
      Reply::kHttp,
      [&](uint32_t root) {
        return Callback(exports_.on_http_call_response, "proxy_on_http_call_response", root,
                        {root, token, static_cast<uint32_t>(call_response_maps_[0].size()),
                         static_cast<uint32_t>(reply_body_.size()),
                         static_cast<uint32_t>(call_response_maps_[1].size())});
      },
      deadline);
}

// ---- gRPC calls ----------------------------------------------------------------------------------

WasmResult PluginVm::GrpcSend(uint32_t token, std::string message, bool end_of_stream) {
  auto it = calls_.find(token);
  if (it == calls_.end() || !it->second.grpc) return WasmResult::kNotFound;
  if (KindOf(token) != CallKind::kGrpcStream) return WasmResult::kBadArgument;
  Status status = it->second.grpc->Send(std::move(message), end_of_stream);
  if (!status.ok()) {
    Log(LogLevel::kWarn,
        "proxy_grpc_send on call " + std::to_string(token) + " refused: " + status.message());
    return WasmResult::kBadArgument;
  }
  return WasmResult::kOk;
}

WasmResult PluginVm::GrpcClose(uint32_t token) {
  auto it = calls_.find(token);
  if (it == calls_.end() || !it->second.grpc) return WasmResult::kNotFound;
  if (KindOf(token) != CallKind::kGrpcStream) return GrpcCancel(token);
  (void)it->second.grpc->CloseSend();  // already ended: nothing more to do
  return WasmResult::kOk;
}

WasmResult PluginVm::GrpcCancel(uint32_t token) {
  if (KindOf(token) == CallKind::kHttp) return WasmResult::kNotFound;
  std::optional<Call> call = TakeCall(token);
  if (!call) return WasmResult::kNotFound;
  if (call->cancel) call->cancel();
  return WasmResult::kOk;
}

Status PluginVm::DeliverGrpcMetadata(uint32_t token, bool trailing, HeaderList metadata,
                                     engine::Deadline deadline) {
  // A unary call's callback is its answer alone (as the reference host gives it).
  if (!calls_.count(token) || KindOf(token) != CallKind::kGrpcStream) return Status::Ok();
  HeaderMap& map = call_response_maps_[trailing ? 1 : 0];
  map.Reserve(metadata.size());
  for (auto& [name, value] : metadata) map.Add(ToLower(name), std::move(value));
  const auto& fn = trailing ? exports_.on_grpc_trailing_metadata : exports_.on_grpc_initial_metadata;
  const char* name =
      trailing ? "proxy_on_grpc_receive_trailing_metadata" : "proxy_on_grpc_receive_initial_metadata";
  Status status = ReplyToRoot(
      trailing ? Reply::kGrpcTrailingMetadata : Reply::kGrpcInitialMetadata,
      [&](uint32_t root) {
        return Callback(fn, name, root, {root, token, static_cast<uint32_t>(map.size())});
      },
      deadline);
  AfterCallback();
  return status;
}

Status PluginVm::DeliverGrpcMessage(uint32_t token, std::string message, engine::Deadline deadline) {
  auto it = calls_.find(token);
  if (it == calls_.end()) return Status::Ok();
  if (KindOf(token) == CallKind::kGrpcUnary) {
    if (it->second.unary_messages.size() < 2) it->second.unary_messages.push_back(std::move(message));
    return Status::Ok();
  }
  reply_body_ = std::move(message);
  Status status = ReplyToRoot(
      Reply::kGrpcMessage,
      [&](uint32_t root) {
        return Callback(exports_.on_grpc_receive, "proxy_on_grpc_receive", root,
                        {root, token, static_cast<uint32_t>(reply_body_.size())});
      },
      deadline);
  AfterCallback();
  return status;
}

Status PluginVm::DeliverGrpcClose(uint32_t token, uint32_t code, std::string message,
                                  engine::Deadline deadline) {
  std::optional<Call> call = TakeCall(token);
  if (!call) return Status::Ok();  // cancelled
  if (code != 0)
    Log(LogLevel::kDebug, "gRPC call " + std::to_string(token) + " closed with status " +
                              std::to_string(code) + ": " + Printable(message, 256));
  Status status;
  if (KindOf(token) == CallKind::kGrpcUnary && code == 0 && call->unary_messages.size() == 1) {
    reply_body_ = std::move(call->unary_messages.front());
    status = ReplyToRoot(
        Reply::kGrpcMessage,
        [&](uint32_t root) {
          return Callback(exports_.on_grpc_receive, "proxy_on_grpc_receive", root,
                          {root, token, static_cast<uint32_t>(reply_body_.size())});
        },
        deadline);
  } else {
    if (KindOf(token) == CallKind::kGrpcUnary && code == 0) {
      code = 13;  // INTERNAL: a unary call answers exactly one message
      message = "the server answered a unary call with " + std::to_string(call->unary_messages.size()) +
                " messages";
    }
    call_status_ = code;
    call_status_message_ = std::move(message);
    status = ReplyToRoot(
        Reply::kGrpcClose,
        [&](uint32_t root) {
          return Callback(exports_.on_grpc_close, "proxy_on_grpc_close", root, {root, token, code});
        },
        deadline);
  }
  AfterLastReply(call->context_id);
  return status;
}

Status PluginVm::FinishStream(uint32_t id) {
  auto r = Callback(exports_.on_done, "proxy_on_done", id, {id}, 1);
  if (!r.ok()) return r.status();
  r = Callback(exports_.on_log, "proxy_on_log", id, {id});
  if (!r.ok()) return r.status();
  r = Callback(exports_.on_delete, "proxy_on_delete", id, {id});
  return r.status();
}

// ---- timers and deferred work --------------------------------------------------------------------

Status PluginVm::Tick(engine::Deadline deadline) {
  deadline_ = deadline;
  const uint32_t root = spec_->root_context_id;
  auto r = Callback(exports_.on_tick, "proxy_on_tick", root, {root});
  deadline_ = engine::kNoDeadline;
  WakeStreams();  // streams the tick resumed or answered
  if (!r.ok()) return r.status();
  return DeleteRootIfRequested();
}

void PluginVm::RegisterQueueNotifications() {
  if (queue_notifier_) return;
  queue_notifier_ =
      std::make_shared<SharedState::QueueNotifier>([inbox = inbox_](uint32_t root, uint32_t queue) {
        std::function<void()> notify;
        {
          MutexLock lock(inbox->mutex);
          inbox->queue_ready.emplace_back(root, queue);
          notify = inbox->notify;
        }
        if (notify) notify();
      });
}

void PluginVm::set_pending_work_notifier(std::function<void()> notify) {
  MutexLock lock(inbox_->mutex);
  inbox_->notify = std::move(notify);
}

bool PluginVm::has_pending_work() {
  MutexLock lock(inbox_->mutex);
  return !inbox_->queue_ready.empty() || root_done_;
}

Status PluginVm::RunPendingWork(engine::Deadline deadline) {
  std::vector<std::pair<uint32_t, uint32_t>> ready;
  {
    MutexLock lock(inbox_->mutex);
    ready.swap(inbox_->queue_ready);
  }
  deadline_ = deadline;
  for (const auto& [root, queue] : ready) {
    if (!contexts_.count(root)) continue;
    auto r = Callback(exports_.on_queue_ready, "proxy_on_queue_ready", root, {root, queue});
    if (!r.ok()) {
      deadline_ = engine::kNoDeadline;
      WakeStreams();
      return r.status();
    }
  }
  deadline_ = engine::kNoDeadline;
  WakeStreams();  // streams a notification resumed or answered
  return DeleteRootIfRequested();
}

Status PluginVm::DeleteRootIfRequested() {
  // proxy_done() asked for the root's deletion; it runs only after the callback returned (ABI §4.6).
  if (!root_done_) return Status::Ok();
  root_done_ = false;
  const uint32_t root = spec_->root_context_id;
  auto r = Callback(exports_.on_delete, "proxy_on_delete", root, {root});
  contexts_.erase(root);
  return r.status();
}

// ---- contexts ----------------------------------------------------------------------------------

PluginVm::Context* PluginVm::effective_context() {
  auto it = contexts_.find(effective_context_);
  return it == contexts_.end() ? nullptr : &it->second;
}

PluginVm::Stream* PluginVm::effective_stream() {
  Context* c = effective_context();
  return c ? c->stream.get() : nullptr;
}

WasmResult PluginVm::SetEffectiveContext(uint32_t id) {
  if (!contexts_.count(id)) return WasmResult::kBadArgument;
  effective_context_ = id;
  return WasmResult::kOk;
}

// ---- guest memory ------------------------------------------------------------------------------

std::optional<std::string> PluginVm::Read(uint32_t ptr, uint32_t len) {
  auto range = instance_->Memory(ptr, len);
  if (!range.ok()) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(range->data()), range->size());
}

bool PluginVm::WriteU32(uint32_t ptr, uint32_t value) { return instance_->WriteU32(ptr, value).ok(); }
bool PluginVm::WriteU64(uint32_t ptr, uint64_t value) { return instance_->WriteU64(ptr, value).ok(); }
bool PluginVm::Write(uint32_t ptr, std::string_view bytes) {
  return instance_->WriteMemory(ptr, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}).ok();
}

Result<uint32_t> PluginVm::Allocate(uint32_t size) {
  // The allocator may log or read clocks, but the host's context must survive it untouched.
  const uint32_t saved_current = current_context_, saved_effective = effective_context_;
  in_allocator_ = true;
  Value arg = Value::I32(static_cast<int32_t>(size));
  Value result;
  Status status = instance_->Call(*exports_.allocator, {&arg, 1}, {&result, 1}, deadline_);
  in_allocator_ = false;
  current_context_ = saved_current;
  effective_context_ = saved_effective;
  if (!status.ok()) return Status(status.code(), "the guest's allocator failed: " + status.message());
  const uint32_t ptr = static_cast<uint32_t>(result.i32);
  if (ptr == 0) {
    return Status(StatusCode::kResourceExhausted,
                  "the guest's allocator returned 0 for " + std::to_string(size) + " bytes (out of memory)");
  }
  if (!instance_->Memory(ptr, size).ok()) {
    return Status(StatusCode::kTrap, "the guest's allocator returned address " + std::to_string(ptr) +
                                         " for " + std::to_string(size) + " bytes, outside its " +
                                         std::to_string(instance_->MemorySize()) + "-byte memory");
  }
  return ptr;
}

Result<WasmResult> PluginVm::ReturnBytes(std::string_view bytes, uint32_t ptr_out, uint32_t size_out) {
  // Check the out-pointers before asking the guest for memory.
  if (!instance_->Memory(ptr_out, 4).ok() || !instance_->Memory(size_out, 4).ok()) {
    return WasmResult::kInvalidMemoryAccess;
  }
  uint32_t ptr = 0;
  if (!bytes.empty()) {
    if (bytes.size() > UINT32_MAX) return WasmResult::kBadArgument;
    auto allocated = Allocate(static_cast<uint32_t>(bytes.size()));
    if (!allocated.ok()) return allocated.status();
    ptr = *allocated;
    if (!Write(ptr, bytes)) return WasmResult::kInvalidMemoryAccess;
  }
  if (!WriteU32(ptr_out, ptr) || !WriteU32(size_out, static_cast<uint32_t>(bytes.size()))) {
    return WasmResult::kInvalidMemoryAccess;
  }
  return WasmResult::kOk;
}

WasmResult PluginVm::RefuseAtLimit(std::string_view limit, uint64_t value) {
  ++refusals_;
  services_.shared->CountRefusal(spec_->vm_id);
  if (std::find(limits_logged_.begin(), limits_logged_.end(), limit) == limits_logged_.end()) {
    limits_logged_.emplace_back(limit);
    spdlog::warn(
        "plugin '{}': a host call was refused at the {} limit ({}); the guest got INTERNAL_FAILURE. "
        "Raise wasmlet.guest_limits.{} if the plugin really needs more",
        spec_->name, limit, value, limit);
  }
  return WasmResult::kInternalFailure;
}

void PluginVm::Log(LogLevel level, std::string_view message) {
  if (static_cast<uint32_t>(level) < static_cast<uint32_t>(services_.log_level)) return;
  if (!services_.log) return;
  // At most kMaxLogLinesPerSecond lines a second per instance: a plugin that logs every request
  // under load, or a dead store failing every call, must not flood the disk.
  const auto now = clock_->Now();
  if (now - log_window_start_ >= std::chrono::seconds(1)) {
    if (log_dropped_ > 0) {
      // As loud as the loudest line dropped: dropped debug chatter is no warning.
      services_.log(log_dropped_level_, spec_->name,
                    std::to_string(log_dropped_) + " log lines of this instance were dropped (over " +
                        std::to_string(kMaxLogLinesPerSecond) + " a second)");
    }
    log_window_start_ = now;
    log_lines_ = 0;
    log_dropped_ = 0;
    log_dropped_level_ = LogLevel::kTrace;
  }
  if (++log_lines_ > kMaxLogLinesPerSecond) {
    ++log_dropped_;
    log_dropped_level_ = std::max(log_dropped_level_, level);
    return;
  }
  services_.log(level, spec_->name, message);
}

}  // namespace wasmlet::abi
