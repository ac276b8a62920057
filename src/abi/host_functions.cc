// The proxy_* host functions: every name of ABI 0.1.0, 0.2.0 and 0.2.1, Layotto's legacy
// names and extensions, and Emscripten's two helpers. Each checks every guest pointer before
// use and answers with the statuses the SDKs tolerate (ABI §9.2).
#include <chrono>

#include "abi/plugin_vm.h"
#include "abi/wasi.h"
#include "common/text.h"

namespace wasmlet::abi {
namespace {

using engine::FunctionType;
using engine::HostFunctions;
using engine::Instance;
using engine::ValType;
using engine::Value;
using R = Result<WasmResult>;

constexpr WasmResult kOk = WasmResult::kOk;
constexpr WasmResult kBadMemory = WasmResult::kInvalidMemoryAccess;

// Arguments of a host call, read as the unsigned 32-bit values the ABI means.
struct Args {
  std::span<const Value> values;
  uint32_t operator[](size_t i) const { return static_cast<uint32_t>(values[i].i32); }
  int64_t i64(size_t i) const { return values[i].i64; }
};

using ProxyFunction = R (*)(PluginVm& vm, const Args& a);

// Host functions the guest's allocator may call (ABI §1.4); everything else is refused there.
enum class InAllocator { kRefuse, kAllow };

void Add(HostFunctions& host, const char* name, FunctionType type, ProxyFunction fn,
         InAllocator in_allocator = InAllocator::kRefuse) {
  host.Add("env", name, std::move(type),
           [fn, name, in_allocator](Instance& caller, std::span<const Value> args,
                                    std::span<Value> results) -> Status {
             auto* vm = static_cast<PluginVm*>(caller.host_data());
             if (vm == nullptr) {  // an instance wasmlet's ABI layer does not drive
               if (!results.empty()) results[0].i32 = static_cast<int32_t>(WasmResult::kInternalFailure);
               return Status::Ok();
             }
             vm->AttachCaller(caller);
             if (vm->in_allocator() && in_allocator == InAllocator::kRefuse) {
               return Status(StatusCode::kTrap,
                             std::string("the guest's allocator called ") + name +
                                 "; only logging, clocks and poll_oneoff may run inside it");
             }
             R r = fn(*vm, Args{args});
             if (!r.ok()) return r.status();
             if (!results.empty()) results[0].i32 = static_cast<int32_t>(*r);
             return Status::Ok();
           });
}

// (i32 x params) -> i32, the shape of almost every proxy_* function.
void AddI32(HostFunctions& host, const char* name, size_t params, ProxyFunction fn,
            InAllocator in_allocator = InAllocator::kRefuse) {
  Add(host, name, FunctionType{std::vector<ValType>(params, ValType::kI32), {ValType::kI32}}, fn,
      in_allocator);
}

// ---- buffers -----------------------------------------------------------------------------------

// The bytes of a buffer the guest may read now, or nullptr when it is not available.
const std::string* ReadableBuffer(PluginVm& vm, uint32_t type) {
  PluginVm::Stream* stream = vm.effective_stream();
  switch (static_cast<BufferType>(type)) {
    case BufferType::kHttpRequestBody: return stream ? &stream->request_body : nullptr;
    case BufferType::kHttpResponseBody: return stream ? &stream->response_body : nullptr;
    case BufferType::kVmConfiguration: return &vm.spec().vm_configuration;
    case BufferType::kPluginConfiguration: return &vm.spec().plugin_configuration;
    case BufferType::kCallData: return &vm.call_data();
    default: return nullptr;  // no TCP streams, callouts or gRPC yet
  }
}

// The buffer the guest may write now, or nullptr (then the write is an OK no-op, ABI §9.2).
std::string* WritableBuffer(PluginVm& vm, uint32_t type) {
  PluginVm::Stream* stream = vm.effective_stream();
  switch (static_cast<BufferType>(type)) {
    case BufferType::kHttpRequestBody: return stream ? &stream->request_body : nullptr;
    case BufferType::kHttpResponseBody: return stream ? &stream->response_body : nullptr;
    // Layotto's proxy_get_id answers through the call-data buffer (ABI §7.3).
    case BufferType::kCallData: return vm.phase() == PluginVm::Phase::kGetId ? &vm.call_data() : nullptr;
    default: return nullptr;
  }
}

R GetBufferBytes(PluginVm& vm, const Args& a) {
  const std::string* buffer = ReadableBuffer(vm, a[0]);
  if (!buffer) return WasmResult::kNotFound;
  const uint64_t start = a[1], max_size = a[2], length = buffer->size();
  if (start >= length) return vm.ReturnBytes({}, a[3], a[4]);
  const uint64_t n = std::min(max_size, length - start);
  // Copy first: the allocator call inside ReturnBytes may run guest code.
  return vm.ReturnBytes(buffer->substr(start, n), a[3], a[4]);
}

R SetBufferBytes(PluginVm& vm, const Args& a) {
  auto data = vm.Read(a[3], a[4]);
  if (!data) return kBadMemory;
  std::string* buffer = WritableBuffer(vm, a[0]);
  if (!buffer) return kOk;
  // A clamped splice covers prepend, append, replace, drain and prefix overwrite (ABI §6.4).
  const uint64_t length = buffer->size();
  const uint64_t s = std::min<uint64_t>(a[1], length);
  const uint64_t k = std::min<uint64_t>(a[2], length - s);
  const uint64_t after = length - k + data->size();
  if (after > length && after > vm.limits().buffer_bytes)
    return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
  buffer->replace(s, k, *data);
  return kOk;
}

R GetBufferStatus(PluginVm& vm, const Args& a) {
  const std::string* buffer = ReadableBuffer(vm, a[0]);
  if (!buffer) return WasmResult::kNotFound;
  if (!vm.WriteU32(a[1], static_cast<uint32_t>(buffer->size())) || !vm.WriteU32(a[2], 0)) return kBadMemory;
  return kOk;
}

// ---- header maps -------------------------------------------------------------------------------

HeaderMap* Map(PluginVm& vm, uint32_t type) {
  PluginVm::Stream* stream = vm.effective_stream();
  if (!stream || type > static_cast<uint32_t>(MapType::kHttpResponseTrailers)) return nullptr;
  return &stream->maps[type];
}

R GetHeaderMapSize(PluginVm& vm, const Args& a) {
  HeaderMap* map = Map(vm, a[0]);
  return vm.WriteU32(a[1], map ? static_cast<uint32_t>(map->SerializedSize()) : 0) ? kOk : kBadMemory;
}

R GetHeaderMapPairs(PluginVm& vm, const Args& a) {
  HeaderMap* map = Map(vm, a[0]);
  return vm.ReturnBytes(map ? map->Serialize() : std::string(), a[1], a[2]);
}

R SetHeaderMapPairs(PluginVm& vm, const Args& a) {
  auto bytes = vm.Read(a[1], a[2]);
  if (!bytes) return kBadMemory;
  auto pairs = ParsePairs({reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()});
  if (!pairs) return WasmResult::kBadArgument;
  if (pairs->size() > vm.limits().header_count)
    return vm.RefuseAtLimit("header_count", vm.limits().header_count);
  for (const auto& [name, value] : *pairs) {
    if (name.size() + value.size() > vm.limits().header_bytes)
      return vm.RefuseAtLimit("header_bytes", vm.limits().header_bytes);
  }
  if (HeaderMap* map = Map(vm, a[0])) *map = HeaderMap(*pairs);
  return kOk;
}

R GetHeaderMapValue(PluginVm& vm, const Args& a) {
  auto key = vm.Read(a[1], a[2]);
  if (!key) return kBadMemory;
  HeaderMap* map = Map(vm, a[0]);
  auto value = map ? map->Get(*key) : std::nullopt;
  if (!value) {
    // 0.1.0 answered an absent key with an empty value (ABI §2.1).
    if (vm.abi_version() == "0.1.0") return vm.ReturnBytes({}, a[3], a[4]);
    return WasmResult::kNotFound;
  }
  return vm.ReturnBytes(std::string(*value), a[3], a[4]);
}

template <void (HeaderMap::*op)(std::string_view, std::string_view)>
R ChangeHeaderMapValue(PluginVm& vm, const Args& a) {
  auto key = vm.Read(a[1], a[2]);
  auto value = vm.Read(a[3], a[4]);
  if (!key || !value) return kBadMemory;
  HeaderMap* map = Map(vm, a[0]);
  if (!map) return kOk;
  if (key->size() + value->size() > vm.limits().header_bytes)
    return vm.RefuseAtLimit("header_bytes", vm.limits().header_bytes);
  // An add always grows the map; a replace may add the key.
  if (map->size() >= vm.limits().header_count && (op == &HeaderMap::Add || !map->Get(*key)))
    return vm.RefuseAtLimit("header_count", vm.limits().header_count);
  (map->*op)(*key, *value);
  return kOk;
}

R RemoveHeaderMapValue(PluginVm& vm, const Args& a) {
  auto key = vm.Read(a[1], a[2]);
  if (!key) return kBadMemory;
  if (HeaderMap* map = Map(vm, a[0])) map->Remove(*key);
  return kOk;
}

// ---- stream control and local responses --------------------------------------------------------

R ContinueStream(PluginVm& vm, const Args&) {
  if (PluginVm::Stream* stream = vm.effective_stream()) stream->paused = false;
  return kOk;
}

R Ok(PluginVm&, const Args&) { return kOk; }

R SendLocalResponse(PluginVm& vm, const Args& a) {
  auto details = vm.Read(a[1], a[2]);
  auto body = vm.Read(a[3], a[4]);
  auto headers = vm.Read(a[5], a[6]);
  if (!details || !body || !headers) return kBadMemory;
  auto pairs = ParsePairs({reinterpret_cast<const uint8_t*>(headers->data()), headers->size()});
  if (!pairs) return WasmResult::kBadArgument;
  PluginVm::Stream* stream = vm.effective_stream();
  if (!stream) return kOk;  // no stream to answer: too late or too early, ignore (ABI §9.2)
  HttpResponse response;
  response.status = a[0];
  response.body = std::move(*body);
  response.details = std::move(*details);
  response.local = true;
  if (pairs->size() > vm.limits().header_count)
    return vm.RefuseAtLimit("header_count", vm.limits().header_count);
  for (const auto& [name, value] : *pairs) {
    if (name.size() + value.size() > vm.limits().header_bytes)
      return vm.RefuseAtLimit("header_bytes", vm.limits().header_bytes);
  }
  if (response.body.size() > vm.limits().buffer_bytes)
    return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
  for (auto& [name, value] : *pairs) response.headers.emplace_back(ToLower(name), std::move(value));
  if (a[7] <= kMaxGrpcStatus) {
    response.headers.emplace_back("grpc-status", std::to_string(a[7]));
    if (!response.details.empty()) response.headers.emplace_back("grpc-message", response.details);
  }
  stream->local_response = std::move(response);
  return kOk;
}

R GetStatus(PluginVm& vm, const Args& a) {
  // No callout has completed yet (callouts come with the server): code 0, no message.
  if (!vm.WriteU32(a[0], 0)) return kBadMemory;
  return vm.ReturnBytes({}, a[1], a[2]);
}

// ---- callouts (none reachable yet) -------------------------------------------------------------

R HttpCall(PluginVm& vm, const Args& a) {
  auto upstream = vm.Read(a[0], a[1]);
  auto headers = vm.Read(a[2], a[3]);
  if (!upstream || !headers || !vm.InBounds(a[4], a[5]) || !vm.InBounds(a[6], a[7])) return kBadMemory;
  if (!vm.InBounds(a[9], 4)) return kBadMemory;
  auto pairs = ParsePairs({reinterpret_cast<const uint8_t*>(headers->data()), headers->size()});
  if (!pairs) return WasmResult::kBadArgument;
  HeaderMap map(*pairs);
  if (!map.Get(":method") || !map.Get(":path") || !map.Get(":authority")) return WasmResult::kBadArgument;
  vm.Log(LogLevel::kWarn, "proxy_http_call to '" + *upstream + "': no upstreams are configured");
  return WasmResult::kBadArgument;  // unknown upstream (ABI §9.2)
}

// proxy_grpc_call (12 or 10 params), proxy_grpc_stream (9), proxy_open_grpc_stream (7): (ptr, len)
// pairs, perhaps a timeout, and the token out-pointer last.
R GrpcStart(PluginVm& vm, const Args& a) {
  const size_t token = a.values.size() - 1;
  for (size_t i = 0; i + 1 < (token & ~size_t{1}) + 1; i += 2) {
    if (!vm.InBounds(a[i], a[i + 1])) return kBadMemory;
  }
  if (!vm.InBounds(a[token], 4)) return kBadMemory;
  return WasmResult::kInternalFailure;  // no gRPC upstreams yet (ABI §9.2)
}
R GrpcSend(PluginVm& vm, const Args& a) {
  return vm.InBounds(a[1], a[2]) ? WasmResult::kNotFound : kBadMemory;
}
R GrpcToken(PluginVm&, const Args&) { return WasmResult::kNotFound; }
R CallForeignFunction(PluginVm& vm, const Args& a) {
  if (!vm.InBounds(a[0], a[1]) || !vm.InBounds(a[2], a[3]) || !vm.InBounds(a[4], 4) ||
      !vm.InBounds(a[5], 4)) {
    return kBadMemory;
  }
  return WasmResult::kNotFound;
}

// ---- shared data and queues --------------------------------------------------------------------

R SetSharedData(PluginVm& vm, const Args& a) {
  auto key = vm.Read(a[0], a[1]);
  auto value = vm.Read(a[2], a[3]);
  if (!key || !value) return kBadMemory;
  if (key->empty()) return WasmResult::kNotFound;
  const WasmResult r = vm.services().shared->SetData(vm.spec().vm_id, *key, *value, a[4]);
  if (r == WasmResult::kInternalFailure)
    return vm.RefuseAtLimit("shared_data_bytes", vm.limits().shared_data_bytes);
  return r;
}

R GetSharedData(PluginVm& vm, const Args& a) {
  auto key = vm.Read(a[0], a[1]);
  if (!key) return kBadMemory;
  if (!vm.InBounds(a[4], 4)) return kBadMemory;
  auto value = vm.services().shared->GetData(vm.spec().vm_id, *key);
  if (!value) return WasmResult::kNotFound;
  auto r = vm.ReturnBytes(value->bytes, a[2], a[3]);
  if (!r.ok() || *r != kOk) return r;
  return vm.WriteU32(a[4], value->cas) ? kOk : kBadMemory;
}

R RegisterSharedQueue(PluginVm& vm, const Args& a) {
  auto name = vm.Read(a[0], a[1]);
  if (!name) return kBadMemory;
  if (!vm.InBounds(a[2], 4)) return kBadMemory;
  vm.RegisterQueueNotifications();
  const uint32_t id = vm.services().shared->RegisterQueue(vm.spec().vm_id, *name, vm.spec().root_context_id,
                                                          vm.queue_notifier());
  return vm.WriteU32(a[2], id) ? kOk : kBadMemory;
}

R ResolveQueue(PluginVm& vm, std::string_view vm_id, uint32_t name_ptr, uint32_t name_len, uint32_t id_out) {
  auto name = vm.Read(name_ptr, name_len);
  if (!name) return kBadMemory;
  auto id = vm.services().shared->ResolveQueue(vm_id.empty() ? vm.spec().vm_id : vm_id, *name);
  if (!id) return WasmResult::kNotFound;
  return vm.WriteU32(id_out, *id) ? kOk : kBadMemory;
}

R ResolveSharedQueue(PluginVm& vm, const Args& a) {
  auto vm_id = vm.Read(a[0], a[1]);
  if (!vm_id) return kBadMemory;
  return ResolveQueue(vm, *vm_id, a[2], a[3], a[4]);
}

R ResolveOwnSharedQueue(PluginVm& vm, const Args& a) { return ResolveQueue(vm, {}, a[0], a[1], a[2]); }

R EnqueueSharedQueue(PluginVm& vm, const Args& a) {
  auto value = vm.Read(a[1], a[2]);
  if (!value) return kBadMemory;
  const WasmResult r = vm.services().shared->Enqueue(a[0], *value);
  if (r == WasmResult::kInternalFailure)
    return vm.RefuseAtLimit("queue_entries or queue_bytes", vm.limits().queue_entries);
  return r;
}

R DequeueSharedQueue(PluginVm& vm, const Args& a) {
  if (!vm.InBounds(a[1], 4) || !vm.InBounds(a[2], 4)) return kBadMemory;
  std::string value;
  WasmResult r = vm.services().shared->Dequeue(a[0], value);
  if (r != kOk) return r;
  return vm.ReturnBytes(value, a[1], a[2]);
}

R RemoveSharedQueue(PluginVm& vm, const Args& a) { return vm.services().shared->RemoveQueue(a[0]); }

// ---- metrics -----------------------------------------------------------------------------------

R DefineMetric(PluginVm& vm, const Args& a) {
  auto name = vm.Read(a[1], a[2]);
  if (!name) return kBadMemory;
  if (a[0] > static_cast<uint32_t>(MetricType::kHistogram)) return WasmResult::kBadArgument;
  if (!vm.InBounds(a[3], 4)) return kBadMemory;
  auto id = vm.services().shared->DefineMetric(vm.spec().vm_id, static_cast<MetricType>(a[0]), *name);
  if (!id) return vm.RefuseAtLimit("metrics", vm.limits().metrics);
  return vm.WriteU32(a[3], *id) ? kOk : kBadMemory;
}

R IncrementMetric(PluginVm& vm, const Args& a) {
  return vm.services().shared->IncrementMetric(a[0], a.i64(1));
}
R RecordMetric(PluginVm& vm, const Args& a) {
  return vm.services().shared->RecordMetric(a[0], static_cast<uint64_t>(a.i64(1)));
}
R GetMetric(PluginVm& vm, const Args& a) {
  if (!vm.InBounds(a[1], 8)) return kBadMemory;
  auto value = vm.services().shared->GetMetric(a[0]);
  if (!value) return WasmResult::kNotFound;
  return vm.WriteU64(a[1], *value) ? kOk : kBadMemory;
}
R RemoveMetric(PluginVm& vm, const Args& a) { return vm.services().shared->RemoveMetric(a[0]); }

// ---- properties --------------------------------------------------------------------------------

// "request\0path" and "request\0path\0" are the same path (ABI §6.3).
std::vector<std::string_view> SplitPath(std::string_view path) {
  if (!path.empty() && path.back() == '\0') path.remove_suffix(1);
  std::vector<std::string_view> segments;
  while (true) {
    auto nul = path.find('\0');
    segments.push_back(path.substr(0, nul));
    if (nul == std::string_view::npos) break;
    path.remove_prefix(nul + 1);
  }
  return segments;
}

R GetProperty(PluginVm& vm, const Args& a) {
  auto path = vm.Read(a[0], a[1]);
  if (!path) return kBadMemory;
  if (!vm.InBounds(a[2], 4) || !vm.InBounds(a[3], 4)) return kBadMemory;
  auto value = vm.Property(SplitPath(*path));
  if (!value) return WasmResult::kNotFound;
  return vm.ReturnBytes(*value, a[2], a[3]);
}

R SetProperty(PluginVm& vm, const Args& a) {
  auto path = vm.Read(a[0], a[1]);
  auto value = vm.Read(a[2], a[3]);
  if (!path || !value) return kBadMemory;
  std::string key;
  for (auto segment : SplitPath(*path)) {
    if (!key.empty()) key.push_back('.');
    key.append(segment);
  }
  auto& properties = vm.set_properties();
  auto it = properties.find(key);
  const uint64_t before = it == properties.end() ? 0 : key.size() + it->second.size();
  const uint64_t after = key.size() + value->size();
  if (after > before && vm.property_bytes() - before + after > vm.limits().property_bytes)
    return vm.RefuseAtLimit("property_bytes", vm.limits().property_bytes);
  vm.add_property_bytes(static_cast<int64_t>(after) - static_cast<int64_t>(before));
  properties[key] = std::move(*value);
  return kOk;
}

// ---- context, logging, time, configuration -----------------------------------------------------

R Done(PluginVm& vm, const Args&) {
  vm.RequestRootDelete();  // on_delete runs after the current callback (ABI §4.6)
  return kOk;
}

R SetEffectiveContext(PluginVm& vm, const Args& a) { return vm.SetEffectiveContext(a[0]); }

R Log(PluginVm& vm, const Args& a) {
  auto message = vm.Read(a[1], a[2]);
  if (!message) return kBadMemory;
  vm.Log(static_cast<LogLevel>(std::min<uint32_t>(a[0], static_cast<uint32_t>(LogLevel::kCritical))),
         *message);
  return kOk;
}

R GetLogLevel(PluginVm& vm, const Args& a) {
  return vm.WriteU32(a[0], static_cast<uint32_t>(vm.services().log_level)) ? kOk : kBadMemory;
}

R GetCurrentTimeNanoseconds(PluginVm& vm, const Args& a) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return vm.WriteU64(a[0], std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()) ? kOk
                                                                                              : kBadMemory;
}

R SetTickPeriod(PluginVm& vm, const Args& a) {
  vm.SetTickPeriod(a[0]);
  return kOk;
}

R GetConfiguration(PluginVm& vm, const Args& a) {
  // 0.1.0: the configuration of the callback being run.
  std::string_view configuration;
  if (vm.phase() == PluginVm::Phase::kVmStart) configuration = vm.spec().vm_configuration;
  if (vm.phase() == PluginVm::Phase::kConfigure) configuration = vm.spec().plugin_configuration;
  return vm.ReturnBytes(configuration, a[0], a[1]);
}

// ---- Layotto extensions (ABI §7.4) -------------------------------------------------------------

// A Layotto host call that failed: logged, kept for the stream's wasmlet.last_error property
// (so a function can say why in its answer), and INTERNAL_FAILURE for the guest.
WasmResult LayottoCallFailed(PluginVm& vm, const std::string& message) {
  vm.Log(LogLevel::kError, message);
  if (PluginVm::Stream* stream = vm.effective_stream()) stream->last_host_error = message;
  return WasmResult::kInternalFailure;
}

constexpr size_t kMaxStateKeyBytes = 64 << 10;

R GetState(PluginVm& vm, const Args& a) {
  auto store = vm.Read(a[0], a[1]);
  auto key = vm.Read(a[2], a[3]);
  if (!store || !key) return kBadMemory;
  if (!vm.InBounds(a[4], 4) || !vm.InBounds(a[5], 4)) return kBadMemory;
  const std::string call = "proxy_get_state('" + Printable(*store, 64) + "', '" + Printable(*key, 64) + "')";
  if (store->size() > kMaxStateKeyBytes || key->size() > kMaxStateKeyBytes)
    return LayottoCallFailed(vm, call + ": a store name or key over 64 KiB");
  if (!vm.services().state) return LayottoCallFailed(vm, call + ": no state stores are configured");
  auto value = vm.services().state->GetState(*store, *key);
  if (!value.ok()) return LayottoCallFailed(vm, call + ": " + value.status().message());
  return vm.ReturnBytes(*value, a[4], a[5]);
}

R InvokeService(PluginVm& vm, const Args& a) {
  auto id = vm.Read(a[0], a[1]);
  auto method = vm.Read(a[2], a[3]);
  auto param = vm.Read(a[4], a[5]);
  if (!id || !method || !param) return kBadMemory;
  if (!vm.InBounds(a[6], 4) || !vm.InBounds(a[7], 4)) return kBadMemory;
  const std::string call = "proxy_invoke_service('" + Printable(*id, 64) + "')";
  if (!vm.services().invoker) return LayottoCallFailed(vm, call + ": no function invoker is configured");
  auto result = vm.services().invoker->Invoke({*id, *method, *param, vm.route_id()});
  if (!result.ok()) return LayottoCallFailed(vm, call + ": " + result.status().message());
  return vm.ReturnBytes(*result, a[6], a[7]);
}

std::shared_ptr<const HostFunctions> Build() {
  auto host = std::make_shared<HostFunctions>();
  HostFunctions& h = *host;
  const auto allow = InAllocator::kAllow;
  const FunctionType i32_i64_to_i32{{ValType::kI32, ValType::kI64}, {ValType::kI32}};

  // Context, logging, time, timers (ABI §3.1).
  AddI32(h, "proxy_done", 0, Done);
  AddI32(h, "proxy_set_effective_context", 1, SetEffectiveContext);
  AddI32(h, "proxy_log", 3, Log, allow);
  AddI32(h, "proxy_get_log_level", 1, GetLogLevel, allow);
  AddI32(h, "proxy_get_current_time_nanoseconds", 1, GetCurrentTimeNanoseconds, allow);
  AddI32(h, "proxy_set_tick_period_milliseconds", 1, SetTickPeriod);
  // Buffers and header maps.
  AddI32(h, "proxy_get_buffer_bytes", 5, GetBufferBytes);
  AddI32(h, "proxy_set_buffer_bytes", 5, SetBufferBytes);
  AddI32(h, "proxy_get_buffer_status", 3, GetBufferStatus);
  AddI32(h, "proxy_get_header_map_size", 2, GetHeaderMapSize);
  AddI32(h, "proxy_get_header_map_pairs", 3, GetHeaderMapPairs);
  AddI32(h, "proxy_set_header_map_pairs", 3, SetHeaderMapPairs);
  AddI32(h, "proxy_get_header_map_value", 5, GetHeaderMapValue);
  AddI32(h, "proxy_add_header_map_value", 5, ChangeHeaderMapValue<&HeaderMap::Add>);
  AddI32(h, "proxy_replace_header_map_value", 5, ChangeHeaderMapValue<&HeaderMap::Replace>);
  AddI32(h, "proxy_remove_header_map_value", 3, RemoveHeaderMapValue);
  // Stream control.
  AddI32(h, "proxy_continue_stream", 1, ContinueStream);
  AddI32(h, "proxy_close_stream", 1, Ok);
  AddI32(h, "proxy_get_status", 3, GetStatus);
  AddI32(h, "proxy_send_local_response", 8, SendLocalResponse);
  // Callouts.
  AddI32(h, "proxy_http_call", 10, HttpCall);
  AddI32(h, "proxy_grpc_call", 12, GrpcStart);
  AddI32(h, "proxy_grpc_stream", 9, GrpcStart);
  AddI32(h, "proxy_grpc_send", 4, GrpcSend);
  AddI32(h, "proxy_grpc_cancel", 1, GrpcToken);
  AddI32(h, "proxy_grpc_close", 1, GrpcToken);
  // Shared data, queues, metrics, properties, foreign functions.
  AddI32(h, "proxy_set_shared_data", 5, SetSharedData);
  AddI32(h, "proxy_get_shared_data", 5, GetSharedData);
  AddI32(h, "proxy_register_shared_queue", 3, RegisterSharedQueue);
  AddI32(h, "proxy_resolve_shared_queue", 5, ResolveSharedQueue);
  AddI32(h, "proxy_enqueue_shared_queue", 3, EnqueueSharedQueue);
  AddI32(h, "proxy_dequeue_shared_queue", 3, DequeueSharedQueue);
  AddI32(h, "proxy_define_metric", 4, DefineMetric);
  Add(h, "proxy_record_metric", i32_i64_to_i32, RecordMetric);
  Add(h, "proxy_increment_metric", i32_i64_to_i32, IncrementMetric);
  AddI32(h, "proxy_get_metric", 2, GetMetric);
  AddI32(h, "proxy_get_property", 4, GetProperty);
  AddI32(h, "proxy_set_property", 4, SetProperty);
  AddI32(h, "proxy_call_foreign_function", 6, CallForeignFunction);

  // 0.1.0 only (ABI §3.2), declared () -> i32 as real 0.1.0 SDKs import them.
  AddI32(h, "proxy_get_configuration", 2, GetConfiguration);
  AddI32(h, "proxy_continue_request", 0, ContinueStream);
  AddI32(h, "proxy_continue_response", 0, ContinueStream);
  AddI32(h, "proxy_clear_route_cache", 0, Ok);

  // Layotto's legacy names (ABI §7.5); two names exist in a second shape, resolved by type.
  AddI32(h, "proxy_resume_http_request", 0, ContinueStream);
  AddI32(h, "proxy_resume_http_response", 0, ContinueStream);
  AddI32(h, "proxy_resume_downstream", 0, ContinueStream);
  AddI32(h, "proxy_resume_upstream", 0, ContinueStream);
  AddI32(h, "proxy_send_http_response", 8, SendLocalResponse);
  AddI32(h, "proxy_dispatch_http_call", 10, HttpCall);
  AddI32(h, "proxy_grpc_call", 10, GrpcStart);
  AddI32(h, "proxy_dispatch_grpc_call", 10, GrpcStart);
  AddI32(h, "proxy_open_grpc_stream", 7, GrpcStart);
  AddI32(h, "proxy_send_grpc_call_message", 4, GrpcSend);
  AddI32(h, "proxy_cancel_grpc_call", 1, GrpcToken);
  AddI32(h, "proxy_close_grpc_call", 1, GrpcToken);
  AddI32(h, "proxy_remove_metric", 1, RemoveMetric);
  AddI32(h, "proxy_remove_shared_queue", 1, RemoveSharedQueue);
  AddI32(h, "proxy_resolve_shared_queue", 3, ResolveOwnSharedQueue);
  AddI32(h, "proxy_get_state", 6, GetState);
  AddI32(h, "proxy_invoke_service", 8, InvokeService);

  // Emscripten helpers (ABI §1.1).
  h.Add("env", "emscripten_notify_memory_growth", FunctionType{{ValType::kI32}, {}},
        [](Instance&, std::span<const Value>, std::span<Value>) { return Status::Ok(); });
  h.Add("env", "pthread_equal", FunctionType{{ValType::kI32, ValType::kI32}, {ValType::kI32}},
        [](Instance&, std::span<const Value> args, std::span<Value> results) {
          results[0].i32 = args[0].i32 == args[1].i32;
          return Status::Ok();
        });

  AddWasi(h, "wasi_snapshot_preview1");
  AddWasi(h, "wasi_unstable");
  return host;
}

}  // namespace

std::shared_ptr<const engine::HostFunctions> ProxyWasmHostFunctions() {
  static const std::shared_ptr<const engine::HostFunctions> functions = Build();
  return functions;
}

}  // namespace wasmlet::abi
