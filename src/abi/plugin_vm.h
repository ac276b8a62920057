// One instance of a plugin's module, driven through the Proxy-Wasm ABI.
//
// A PluginVm owns an engine Instance, its root context and the stream contexts of the
// requests it is handling, and calls the module's exports in the order the ABI requires.
// It lives on its Store's thread; a function's instance serves one request at a time, a proxy
// filter's serves all the streams of its loop, each in its own context. After a guest failure
// (trap, deadline, proc_exit outside start-up) it is failed() and must be replaced.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "abi/abi.h"
#include "abi/header_map.h"
#include "abi/http.h"
#include "abi/services.h"
#include "abi/shared_state.h"
#include "common/status.h"
#include "engine/engine.h"

namespace wasmlet::abi {

// The configuration a plugin instance starts with.
struct PluginSpec {
  std::string name;     // for logs; the route when the module has no proxy_get_id
  std::string root_id;  // answered for the plugin_root_id property
  std::string vm_id;    // namespace of shared data and queues
  uint32_t root_context_id = 1;
  std::string vm_configuration;      // buffer 6, during proxy_on_vm_start
  std::string plugin_configuration;  // buffer 7, during proxy_on_configure
  // Wall-clock budget of start-up (all start exports together).
  std::chrono::milliseconds start_timeout{5000};
  // Wall-clock budget of one callback the host makes on its own (a timer, an outbound call's
  // answer, a queue notification) when the caller gives no deadline.
  std::chrono::milliseconds callback_timeout{5000};
  // Outbound calls (proxy_http_call) one instance may have in flight.
  uint32_t max_calls_in_flight = 256;
  // The longest timeout a guest may give an outbound call; 0 from the guest means this.
  std::chrono::milliseconds max_call_timeout{60000};
  // The state stores the state calls may reach; unset: all of them.
  std::optional<std::vector<std::string>> allowed_stores;
};

// The data of one HTTP stream: what its callbacks read and write. A function's stream owns its
// own; in proxy mode the filter chain owns it and the streams of all its filters share it, so
// that each filter sees what the ones before it changed.
struct StreamData {
  HttpRequest request;  // without headers and body (they are in maps[0] and request_body)
  uint64_t request_body_size = 0;
  HeaderMap maps[4];  // MapType 0..3
  std::string request_body;
  std::string response_body;
  uint32_t response_status = 0;  // once the response phase has begun
  // Proxy mode: where the request went (properties route_name, cluster_name, upstream.address).
  std::string route_name;
  std::string cluster_name;
  std::string upstream_address;
};

// The callbacks of a stream, in the order the host runs them.
enum class StreamPhase {
  kRequestHeaders,
  kRequestBody,
  kRequestTrailers,
  kResponseHeaders,
  kResponseBody,
  kResponseTrailers
};

// What a stream callback decided.
enum class StreamAction {
  kContinue,  // on to the next filter or phase
  kStop,      // paused: StreamRun waits when an outbound call of the stream is in flight
  kLocal,     // the guest answered (TakeLocalResponse)
};

class PluginVm {
 public:
  // Instantiates `module` in `store` and starts it: entry export, proxy_get_id (Layotto),
  // root context create, on_vm_start, on_configure. Fails with a message that names the
  // plugin and the step when any of these fails or returns false.
  static Result<std::unique_ptr<PluginVm>> Create(engine::Store& store,
                                                  std::shared_ptr<const engine::Module> module,
                                                  std::shared_ptr<const PluginSpec> spec,
                                                  HostServices services);
  ~PluginVm();
  PluginVm(const PluginVm&) = delete;
  PluginVm& operator=(const PluginVm&) = delete;

  // The clock of the store's engine: the deadlines of this instance's calls and its log rate are
  // times of it.
  Clock& clock() const { return *clock_; }
  // The id the module reported from proxy_get_id, or the spec's name when it has no such export.
  const std::string& route_id() const { return route_id_; }
  bool reports_id() const { return reports_id_; }
  const PluginSpec& spec() const { return *spec_; }
  bool failed() const { return failed_ || instance_->failed(); }
  std::string_view abi_version() const { return abi_version_; }

  // Runs one HTTP stream through the plugin: request headers, body, trailers; the response
  // (the guest's local response, or 200 with what it wrote to the response body buffer);
  // the response phase over that response; then done, log, delete. An error means the guest
  // failed (the PluginVm is then failed()).
  Result<HttpResponse> HandleHttp(HttpRequest request, engine::Deadline deadline = engine::kNoDeadline);
  // The same, for a function that may wait on outbound calls: `done` is called exactly once, at
  // once when the function did not wait, else later on this thread, after the answer it waited
  // for. `budget` is the guest time the request may use, over all its callbacks.
  using HttpDone = std::function<void(Result<HttpResponse>)>;
  // `post` runs work later on this thread; without it a function that waits fails instead.
  using Post = std::function<void(std::function<void()>)>;
  void HandleHttpAsync(HttpRequest request, std::chrono::milliseconds budget, Post post, HttpDone done);

  // Timers: the period the root context asked for (0 = none), and one tick.
  uint32_t tick_period_ms() const { return tick_period_ms_; }
  Status Tick(engine::Deadline deadline = engine::kNoDeadline);

  // Work the guest caused that must run after its callback returned: on_queue_ready
  // notifications (possibly from other threads) and deferred context deletions.
  bool has_pending_work();
  Status RunPendingWork(engine::Deadline deadline = engine::kNoDeadline);
  // Called, from whichever thread queued it, when work arrives for this instance from outside
  // (a queue it registered became ready), so that its owner can run RunPendingWork on the
  // instance's thread. It may be called after the PluginVm is gone: it must not capture it.
  void set_pending_work_notifier(std::function<void()> notify);

  // ---- Used by the host functions (host_functions.cc, wasi.cc) ----

  struct Stream {
    StreamData* data = nullptr;
    std::unique_ptr<StreamData> owned_data;  // a function's own stream
    std::optional<HttpResponse> local_response;
    bool paused = false;
    bool in_callback = false;  // one of its own phase callbacks is running
    // Called after a callback of another context resumed or answered this paused stream, or an
    // outbound call it made was answered; the owner carries on (later, never from inside it).
    std::function<void()> wake;
    uint32_t calls_in_flight = 0;
    std::string last_host_error;  // why the last Layotto host call failed (wasmlet.last_error)
  };
  struct Context {
    uint32_t id = 0;
    uint32_t parent_id = 0;  // 0 for the root
    std::unique_ptr<Stream> stream;
  };

  // ---- Streams driven one phase at a time (filter chains; functions that call out) ----

  // Creates a stream context over `data` (which must outlive it) and runs
  // proxy_on_context_create. `wake` as in Stream::wake.
  Result<uint32_t> OpenStream(StreamData* data, std::function<void()> wake, engine::Deadline deadline);
  // Runs one phase's callback. `count` is the header count or body size the ABI passes.
  Result<StreamAction> RunStreamPhase(uint32_t id, StreamPhase phase, bool end_of_stream,
                                      engine::Deadline deadline);
  // The state of a paused stream after it was woken: still paused, resumed, or answered.
  StreamAction StreamState(uint32_t id);
  std::optional<HttpResponse> TakeLocalResponse(uint32_t id);
  // Ends the stream: runs done, log and delete (unless the guest failed). Its outbound calls
  // still in flight go on, and their answers come to the root as any call's. Idempotent.
  Status CloseStream(uint32_t id, engine::Deadline deadline);
  // The calls of a stream that are still in flight.
  uint32_t calls_in_flight(uint32_t id);

  // ---- Outbound calls (proxy_http_call, proxy_grpc_call, proxy_grpc_stream) ----

  // The kind of a call is in its token, as the reference host makes them: HTTP calls' tokens
  // are multiples of 4, gRPC unary calls' are 1 more, gRPC streams' 2 more.
  enum class CallKind : uint32_t { kHttp = 0, kGrpcUnary = 1, kGrpcStream = 2 };
  static CallKind KindOf(uint32_t token) { return static_cast<CallKind>(token % 4); }
  // Registers a call the host started for the calling context; returns its token (0: refused,
  // too many in flight, counting the calls that outlived their stream). `cancel` stops it when
  // the instance is destroyed first; no callback follows then.
  uint32_t AddCall(std::function<void()> cancel, CallKind kind = CallKind::kHttp);
  void SetCallCancel(uint32_t token, std::function<void()> cancel);
  // A gRPC call's handle, for proxy_grpc_send and proxy_grpc_close; stopping the call cancels it.
  void SetGrpcCall(uint32_t token, std::shared_ptr<OutboundGrpc::Call> call);
  // Forgets a call that never started (no callback, nothing to cancel).
  void CancelCall(uint32_t token);
  // A stream resumed or answered from outside its own callbacks (its owner is woken after).
  void MarkWoken(uint32_t id);
  // The call's answer (an error: it failed): proxy_on_http_call_response on the root, after
  // which the stream that made it, if it has not ended, is woken. Unknown (cancelled) tokens
  // are ignored.
  Status DeliverHttpCallResponse(uint32_t token, const HttpResponse* response, engine::Deadline deadline);

  // The guest's operations on a gRPC call it holds (ABI status: NOT_FOUND for an unknown
  // token, BAD_ARGUMENT for a send on a unary call or after the request side ended).
  WasmResult GrpcSend(uint32_t token, std::string message, bool end_of_stream);
  // A stream's request side ends; a unary call is cancelled.
  WasmResult GrpcClose(uint32_t token);
  // The call stops; no callback of it follows.
  WasmResult GrpcCancel(uint32_t token);
  // What a gRPC call reports, each delivered on the root context (as the reference host
  // does): on a stream, each event as its callback; on a unary call, exactly one callback at
  // the end: proxy_on_grpc_receive with the one message on success, else proxy_on_grpc_close.
  // After the close the stream that made the call, if it has not ended, is woken. Unknown
  // (cancelled) tokens are ignored.
  Status DeliverGrpcMetadata(uint32_t token, bool trailing, HeaderList metadata, engine::Deadline deadline);
  Status DeliverGrpcMessage(uint32_t token, std::string message, engine::Deadline deadline);
  Status DeliverGrpcClose(uint32_t token, uint32_t status, std::string message, engine::Deadline deadline);

  // What the guest reads during a call's callback: maps 4 and 5 (gRPC metadata) or 6 and 7
  // (HTTP answer), buffer 4 or 5, proxy_get_status. nullptr / 0 outside such a callback.
  HeaderMap* call_response_map(uint32_t type);
  const std::string* call_response_body(BufferType type);
  uint32_t call_status() const { return reply_ == Reply::kNone ? 0 : call_status_; }
  // (Both arms are string_views: `? "" : a_string` would make a temporary std::string.)
  std::string_view call_status_message() const {
    return reply_ == Reply::kNone ? std::string_view() : std::string_view(call_status_message_);
  }
  // Liveness for callbacks that may outlive this PluginVm (expired once it is destroyed).
  std::weak_ptr<PluginVm*> liveness() const { return alive_; }
  enum class Phase { kStartup, kGetId, kVmStart, kConfigure, kOther };

  engine::Instance& instance() { return *instance_; }
  // Host calls made while the instance is still being created (its start section) come
  // before Create has the Instance object; they introduce it.
  void AttachCaller(engine::Instance& caller) {
    if (instance_ == nullptr) instance_ = &caller;
  }
  const HostServices& services() const { return services_; }
  Phase phase() const { return phase_; }
  std::string& call_data() { return call_data_; }
  Context* effective_context();
  Stream* effective_stream();
  WasmResult SetEffectiveContext(uint32_t id);
  void SetTickPeriod(uint32_t ms) { tick_period_ms_ = ms; }
  void RequestRootDelete() { root_done_ = true; }
  std::map<std::string, std::string, std::less<>>& set_properties() { return set_properties_; }
  void RegisterQueueNotifications();
  std::weak_ptr<SharedState::QueueNotifier> queue_notifier() const { return queue_notifier_; }
  void set_exit_code(int32_t code) { exit_code_ = code; }

  // Guest memory, bounds-checked. nullopt when the range is outside memory.
  std::optional<std::string> Read(uint32_t ptr, uint32_t len);
  bool InBounds(uint32_t ptr, uint64_t len) { return instance_->Memory(ptr, len).ok(); }
  bool WriteU32(uint32_t ptr, uint32_t value);
  bool WriteU64(uint32_t ptr, uint64_t value);
  bool Write(uint32_t ptr, std::string_view bytes);
  // Hands `bytes` to the guest through its allocator (ABI §1.4) and writes the address and
  // size through `ptr_out` and `size_out`. Returns kInvalidMemoryAccess for bad out-pointers;
  // an error Status (which traps the guest) when the allocator fails or answers garbage.
  Result<WasmResult> ReturnBytes(std::string_view bytes, uint32_t ptr_out, uint32_t size_out);
  // True while the host is inside a call to the guest's allocator.
  bool in_allocator() const { return in_allocator_; }

  void Log(LogLevel level, std::string_view message);
  // A host call refused at one of HostLimits (`limit` names its field): counted, and logged
  // once per limit per instance so that a guest retrying in a loop cannot flood the log.
  WasmResult RefuseAtLimit(std::string_view limit, uint64_t value);
  const HostLimits& limits() const { return services_.shared->limits(); }
  uint64_t refusals() const { return refusals_; }
  // Bytes held by proxy_set_property values of this instance.
  uint64_t property_bytes() const { return property_bytes_; }
  void add_property_bytes(int64_t delta) { property_bytes_ += delta; }
  // A property by path segments (ABI §6.3), encoded for the guest; nullopt when unknown.
  std::optional<std::string> Property(const std::vector<std::string_view>& path);

 private:
  PluginVm(std::shared_ptr<const PluginSpec> spec, HostServices services);
  Status Start(engine::Deadline deadline);
  Status ResolveExports();
  // Calls a callback for `context_id` (0 = none active) and returns its i32 result, or
  // `if_missing` when the module does not export it. Failures mark the VM failed.
  Result<uint32_t> Callback(const std::optional<engine::ExportedFunction>& fn, const char* name,
                            uint32_t context_id, std::initializer_list<uint32_t> args,
                            uint32_t if_missing = 0);
  Result<uint32_t> Allocate(uint32_t size);
  Status FinishStream(uint32_t id);
  Status DeleteRootIfRequested();
  // After a callback the host made on its own: the streams it resumed or answered are woken.
  void WakeStreams();
  // Hands the calls of a stream that ended over to the root context.
  void DetachCalls(uint32_t context_id);
  // Stops every call in flight; none gets a callback (the instance is going, or failed).
  void CancelAllCalls();
  // proxy_on_http_call_response on the root; no response: the call failed.
  Status DeliverToRoot(uint32_t token, const HttpResponse* response, engine::Deadline deadline);

  std::unique_ptr<engine::Instance> owned_instance_;
  engine::Instance* instance_ = nullptr;  // set by the first host call during instantiation
  std::shared_ptr<const PluginSpec> spec_;
  HostServices services_;
  Clock* clock_ = &SystemClock();  // the store's, set by Create
  std::string route_id_;
  bool reports_id_ = false;
  std::string abi_version_;
  bool failed_ = false;
  engine::Deadline deadline_ = engine::kNoDeadline;

  std::unordered_map<uint32_t, Context> contexts_;
  uint32_t next_context_id_ = 0;
  uint32_t current_context_ = 0;
  uint32_t effective_context_ = 0;
  Phase phase_ = Phase::kStartup;
  std::string call_data_;
  uint32_t tick_period_ms_ = 0;
  bool root_done_ = false;
  bool in_allocator_ = false;
  bool in_guest_ = false;  // a callback is running (the allocator aside)
  std::optional<int32_t> exit_code_;
  std::map<std::string, std::string, std::less<>> set_properties_;
  uint64_t property_bytes_ = 0;
  static constexpr uint32_t kMaxLogLinesPerSecond = 100;
  Clock::TimePoint log_window_start_{};
  uint32_t log_lines_ = 0;
  uint64_t log_dropped_ = 0;
  LogLevel log_dropped_level_ = LogLevel::kTrace;
  uint64_t refusals_ = 0;
  std::vector<std::string> limits_logged_;

  // Filled by other threads through the queue notifier, which holds it too: a notifier that is
  // running while this PluginVm is destroyed still has a live inbox to write to.
  struct Inbox {
    Mutex mutex;
    std::vector<std::pair<uint32_t, uint32_t>> queue_ready GUARDED_BY(mutex);  // (root id, queue id)
    std::function<void()> notify GUARDED_BY(mutex);
  };
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  std::shared_ptr<SharedState::QueueNotifier> queue_notifier_;

  struct Call {
    uint32_t context_id = 0;
    std::function<void()> cancel;
    std::shared_ptr<OutboundGrpc::Call> grpc;
    std::vector<std::string> unary_messages;  // a unary call's answer, delivered at its close
  };
  std::unordered_map<uint32_t, Call> calls_;  // by token
  uint32_t next_token_ = 0;
  std::vector<uint32_t> woken_;  // streams resumed or answered from outside their own callbacks
  // The call callback running now, and what it may read.
  enum class Reply { kNone, kHttp, kGrpcInitialMetadata, kGrpcMessage, kGrpcTrailingMetadata, kGrpcClose };
  Reply reply_ = Reply::kNone;
  std::string reply_body_;
  HeaderMap call_response_maps_[2];
  uint32_t call_status_ = 0;
  std::string call_status_message_;
  // Runs one call callback on the root with `reply` readable; what it set up is cleared after.
  Status ReplyToRoot(Reply reply, const std::function<Result<uint32_t>(uint32_t root)>& invoke,
                     engine::Deadline deadline);
  // After a call's last callback: the stream that made it is woken (every stream, when the
  // guest failed).
  void AfterLastReply(uint32_t context_id);
  // After any call callback: the streams it resumed or answered are woken.
  void AfterCallback();
  // Takes a call out (its stream counts one call less); nullopt when unknown.
  std::optional<Call> TakeCall(uint32_t token);
  std::shared_ptr<PluginVm*> alive_ = std::make_shared<PluginVm*>(this);

  struct Exports {
    std::optional<engine::ExportedFunction> allocator, get_id, on_context_create, on_vm_start, on_configure,
        on_tick, on_done, on_log, on_delete, on_request_headers, on_request_body, on_request_trailers,
        on_response_headers, on_response_body, on_response_trailers, on_queue_ready, on_http_call_response,
        on_grpc_initial_metadata, on_grpc_receive, on_grpc_trailing_metadata, on_grpc_close;
    bool headers_take_eos = true;  // false for 2-param (0.1.0) header callbacks
  } exports_;
};

// A property path's segments joined with '.': how properties are named and kept
// ("request.path", and a guest's own through proxy_set_property).
std::string PropertyKey(const std::vector<std::string_view>& path);

// The host functions every module is linked against: the proxy_* set of every ABI version,
// Layotto's legacy names and extensions, Emscripten's helpers and WASI preview 1 under both
// module names. Built once; shared by every instance.
std::shared_ptr<const engine::HostFunctions> ProxyWasmHostFunctions();

}  // namespace wasmlet::abi
