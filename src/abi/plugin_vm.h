// One instance of a plugin's module, driven through the Proxy-Wasm ABI.
//
// A PluginVm owns an engine Instance, its root context and the stream contexts of the
// requests it is handling, and calls the module's exports in the order the ABI requires.
// It serves one request at a time and lives on its Store's thread. After a guest failure
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
    HttpRequest request;  // without headers and body (see maps and request_body)
    uint64_t request_body_size = 0;
    HeaderMap maps[4];  // MapType 0..3
    std::string request_body;
    std::string response_body;
    std::optional<HttpResponse> local_response;
    uint32_t response_status = 0;  // once the response phase has begun
    bool paused = false;
    std::string last_host_error;  // why the last Layotto host call failed (wasmlet.last_error)
  };
  struct Context {
    uint32_t id = 0;
    uint32_t parent_id = 0;  // 0 for the root
    std::unique_ptr<Stream> stream;
  };
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

  std::unique_ptr<engine::Instance> owned_instance_;
  engine::Instance* instance_ = nullptr;  // set by the first host call during instantiation
  std::shared_ptr<const PluginSpec> spec_;
  HostServices services_;
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
  std::optional<int32_t> exit_code_;
  std::map<std::string, std::string, std::less<>> set_properties_;
  uint64_t property_bytes_ = 0;
  static constexpr uint32_t kMaxLogLinesPerSecond = 100;
  std::chrono::steady_clock::time_point log_window_start_{};
  uint32_t log_lines_ = 0;
  uint64_t log_dropped_ = 0;
  LogLevel log_dropped_level_ = LogLevel::kTrace;
  uint64_t refusals_ = 0;
  std::vector<std::string> limits_logged_;

  // Filled by other threads through the queue notifier, which holds it too: a notifier that is
  // running while this PluginVm is destroyed still has a live inbox to write to.
  struct Inbox {
    std::mutex mutex;
    std::vector<std::pair<uint32_t, uint32_t>> queue_ready;  // (root id, queue id)
    std::function<void()> notify;
  };
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  std::shared_ptr<SharedState::QueueNotifier> queue_notifier_;

  struct Exports {
    std::optional<engine::ExportedFunction> allocator, get_id, on_context_create, on_vm_start, on_configure,
        on_tick, on_done, on_log, on_delete, on_request_headers, on_request_body, on_request_trailers,
        on_response_headers, on_response_body, on_response_trailers, on_queue_ready;
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
