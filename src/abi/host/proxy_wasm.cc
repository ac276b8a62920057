// The proxy_* host functions of the Proxy-Wasm ABI: every name of 0.1.0, 0.2.0 and 0.2.1,
// Layotto's legacy names for them, and Emscripten's two helpers. Each checks every guest pointer
// before use and answers with the statuses the SDKs tolerate (ABI §9.2).
#include <algorithm>
#include <cctype>
#include <chrono>

#include "abi/host/host_support.h"
#include "common/text.h"

namespace wasmlet::abi {
namespace {

// ---- buffers -----------------------------------------------------------------------------------

// The bytes of a buffer the guest may read now, or nullptr when it is not available.
const std::string* ReadableBuffer(PluginVm& vm, uint32_t type) {
  PluginVm::Stream* stream = vm.effective_stream();
  switch (static_cast<BufferType>(type)) {
    case BufferType::kHttpRequestBody: return stream ? &stream->data->request_body : nullptr;
    case BufferType::kHttpResponseBody: return stream ? &stream->data->response_body : nullptr;
    case BufferType::kHttpCallResponseBody:
    case BufferType::kGrpcReceiveBuffer: return vm.call_response_body(static_cast<BufferType>(type));
    case BufferType::kVmConfiguration: return &vm.spec().vm_configuration;
    case BufferType::kPluginConfiguration: return &vm.spec().plugin_configuration;
    case BufferType::kCallData: return &vm.call_data();
    default: return nullptr;  // no TCP streams
  }
}

// The buffer the guest may write now, or nullptr (then the write is an OK no-op, ABI §9.2).
std::string* WritableBuffer(PluginVm& vm, uint32_t type) {
  PluginVm::Stream* stream = vm.effective_stream();
  switch (static_cast<BufferType>(type)) {
    case BufferType::kHttpRequestBody: return stream ? &stream->data->request_body : nullptr;
    case BufferType::kHttpResponseBody: return stream ? &stream->data->response_body : nullptr;
    // Layotto's proxy_get_id answers through the call-data buffer (ABI §7.3).
    case BufferType::kCallData: return vm.phase() == PluginVm::Phase::kGetId ? &vm.call_data() : nullptr;
    default: return nullptr;
  }
}

R GetBufferBytes(PluginVm& vm, uint32_t type, uint32_t start, uint32_t max_size, uint32_t ptr_out,
                 uint32_t size_out) {
  const std::string* buffer = ReadableBuffer(vm, type);
  if (!buffer) return WasmResult::kNotFound;
  const uint64_t length = buffer->size();
  if (start >= length) return vm.ReturnBytes({}, ptr_out, size_out);
  const uint64_t n = std::min<uint64_t>(max_size, length - start);
  // Copy first: the allocator call inside ReturnBytes may run guest code.
  return vm.ReturnBytes(buffer->substr(start, n), ptr_out, size_out);
}

R SetBufferBytes(PluginVm& vm, uint32_t type, uint32_t start, uint32_t size, uint32_t data_ptr,
                 uint32_t data_size) {
  auto data = vm.Read(data_ptr, data_size);
  if (!data) return kBadMemory;
  std::string* buffer = WritableBuffer(vm, type);
  if (!buffer) return kOk;
  // A clamped splice covers prepend, append, replace, drain and prefix overwrite (ABI §6.4).
  const uint64_t length = buffer->size();
  const uint64_t s = std::min<uint64_t>(start, length);
  const uint64_t k = std::min<uint64_t>(size, length - s);
  const uint64_t after = length - k + data->size();
  if (after > length && after > vm.limits().buffer_bytes)
    return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
  buffer->replace(s, k, *data);
  return kOk;
}

R GetBufferStatus(PluginVm& vm, uint32_t type, uint32_t length_out, uint32_t flags_out) {
  const std::string* buffer = ReadableBuffer(vm, type);
  if (!buffer) return WasmResult::kNotFound;
  if (!vm.WriteU32(length_out, static_cast<uint32_t>(buffer->size())) || !vm.WriteU32(flags_out, 0))
    return kBadMemory;
  return kOk;
}

// ---- header maps -------------------------------------------------------------------------------

HeaderMap* Map(PluginVm& vm, uint32_t type) {
  if (type > static_cast<uint32_t>(MapType::kHttpResponseTrailers)) return vm.call_response_map(type);
  PluginVm::Stream* stream = vm.effective_stream();
  return stream ? &stream->data->maps[type] : nullptr;
}

R GetHeaderMapSize(PluginVm& vm, uint32_t type, uint32_t size_out) {
  HeaderMap* map = Map(vm, type);
  return vm.WriteU32(size_out, map ? static_cast<uint32_t>(map->SerializedSize()) : 0) ? kOk : kBadMemory;
}

R GetHeaderMapPairs(PluginVm& vm, uint32_t type, uint32_t ptr_out, uint32_t size_out) {
  HeaderMap* map = Map(vm, type);
  return vm.ReturnBytes(map ? map->Serialize() : std::string(), ptr_out, size_out);
}

R SetHeaderMapPairs(PluginVm& vm, uint32_t type, uint32_t pairs_ptr, uint32_t pairs_size) {
  auto bytes = vm.Read(pairs_ptr, pairs_size);
  if (!bytes) return kBadMemory;
  auto pairs = ParsePairs({reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()});
  if (!pairs) return WasmResult::kBadArgument;
  if (pairs->size() > vm.limits().header_count)
    return vm.RefuseAtLimit("header_count", vm.limits().header_count);
  for (const auto& [name, value] : *pairs) {
    if (name.size() + value.size() > vm.limits().header_bytes)
      return vm.RefuseAtLimit("header_bytes", vm.limits().header_bytes);
  }
  if (HeaderMap* map = Map(vm, type)) *map = HeaderMap(*pairs);
  return kOk;
}

R GetHeaderMapValue(PluginVm& vm, uint32_t type, uint32_t key_ptr, uint32_t key_size, uint32_t value_ptr_out,
                    uint32_t value_size_out) {
  auto key = vm.Read(key_ptr, key_size);
  if (!key) return kBadMemory;
  HeaderMap* map = Map(vm, type);
  auto value = map ? map->Get(*key) : std::nullopt;
  if (!value) {
    // 0.1.0 answered an absent key with an empty value (ABI §2.1).
    if (vm.abi_version() == "0.1.0") return vm.ReturnBytes({}, value_ptr_out, value_size_out);
    return WasmResult::kNotFound;
  }
  return vm.ReturnBytes(std::string(*value), value_ptr_out, value_size_out);
}

template <void (HeaderMap::*op)(std::string_view, std::string_view)>
R ChangeHeaderMapValue(PluginVm& vm, uint32_t type, uint32_t key_ptr, uint32_t key_size, uint32_t value_ptr,
                       uint32_t value_size) {
  auto key = vm.Read(key_ptr, key_size);
  auto value = vm.Read(value_ptr, value_size);
  if (!key || !value) return kBadMemory;
  HeaderMap* map = Map(vm, type);
  if (!map) return kOk;
  if (key->size() + value->size() > vm.limits().header_bytes)
    return vm.RefuseAtLimit("header_bytes", vm.limits().header_bytes);
  // An add always grows the map; a replace may add the key.
  if (map->size() >= vm.limits().header_count && (op == &HeaderMap::Add || !map->Get(*key)))
    return vm.RefuseAtLimit("header_count", vm.limits().header_count);
  (map->*op)(*key, *value);
  return kOk;
}

R RemoveHeaderMapValue(PluginVm& vm, uint32_t type, uint32_t key_ptr, uint32_t key_size) {
  auto key = vm.Read(key_ptr, key_size);
  if (!key) return kBadMemory;
  if (HeaderMap* map = Map(vm, type)) map->Remove(*key);
  return kOk;
}

// ---- stream control and local responses --------------------------------------------------------

// proxy_continue_request/response and Layotto's resume_* names: the current stream goes on.
R ContinueCurrentStream(PluginVm& vm) {
  if (PluginVm::Stream* stream = vm.effective_stream()) {
    stream->paused = false;
    if (!stream->in_callback) vm.MarkWoken(vm.effective_context()->id);
  }
  return kOk;
}
R ContinueStream(PluginVm& vm, uint32_t /*stream_type*/) { return ContinueCurrentStream(vm); }

// Calls that have nothing to do here (ABI: the safe answer is OK).
R Ignore(PluginVm&) { return kOk; }
R IgnoreStream(PluginVm&, uint32_t /*stream_type*/) { return kOk; }

R SendLocalResponse(PluginVm& vm, uint32_t status_code, uint32_t details_ptr, uint32_t details_size,
                    uint32_t body_ptr, uint32_t body_size, uint32_t headers_ptr, uint32_t headers_size,
                    uint32_t grpc_status) {
  auto details = vm.Read(details_ptr, details_size);
  auto body = vm.Read(body_ptr, body_size);
  auto headers = vm.Read(headers_ptr, headers_size);
  if (!details || !body || !headers) return kBadMemory;
  auto pairs = ParsePairs({reinterpret_cast<const uint8_t*>(headers->data()), headers->size()});
  if (!pairs) return WasmResult::kBadArgument;
  PluginVm::Stream* stream = vm.effective_stream();
  if (!stream) return kOk;  // no stream to answer: too late or too early, ignore (ABI §9.2)
  HttpResponse response;
  response.status = status_code;
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
  if (grpc_status <= kMaxGrpcStatus) {
    response.headers.emplace_back("grpc-status", std::to_string(grpc_status));
    if (!response.details.empty()) response.headers.emplace_back("grpc-message", response.details);
  }
  stream->local_response = std::move(response);
  if (!stream->in_callback) vm.MarkWoken(vm.effective_context()->id);
  return kOk;
}

R GetStatus(PluginVm& vm, uint32_t code_out, uint32_t message_ptr_out, uint32_t message_size_out) {
  // During proxy_on_http_call_response: the answer's HTTP status (0 when the call failed);
  // during proxy_on_grpc_close: the gRPC status and its message.
  if (!vm.WriteU32(code_out, vm.call_status())) return kBadMemory;
  return vm.ReturnBytes(vm.call_status_message(), message_ptr_out, message_size_out);
}

// ---- HTTP callouts ----------------------------------------------------------------------------------

// Bytes that would let a guest's header end its line and write another (request smuggling).
bool Unsafe(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

struct CallTarget {
  std::string target;  // a cluster, or "host:port"
  bool to_address = false;
  std::string path;  // from a URL
};

// A URL as MOSN takes it ("http://127.0.0.1:8080/path?q=1"), or a cluster name.
std::optional<CallTarget> ParseTarget(std::string_view upstream) {
  CallTarget t;
  if (!upstream.starts_with("http://")) {
    t.target = std::string(upstream);
    return t;
  }
  std::string_view rest = upstream.substr(7);
  const size_t slash = rest.find_first_of("/?");
  std::string_view host = rest.substr(0, slash);
  // A host name, an IPv4 address or a bracketed IPv6 one, and a port: nothing else reaches
  // the resolver or the Host header.
  const bool valid = !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '[' ||
           c == ']';
  });
  if (!valid) return std::nullopt;
  t.to_address = true;
  t.target = std::string(host);
  if (host.back() == ']' || host.find(':') == std::string_view::npos) t.target += ":80";
  t.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (t.path.front() == '?') t.path.insert(0, "/");
  return t;
}

R HttpCall(PluginVm& vm, uint32_t upstream_ptr, uint32_t upstream_size, uint32_t headers_ptr,
           uint32_t headers_size, uint32_t body_ptr, uint32_t body_size, uint32_t trailers_ptr,
           uint32_t trailers_size, uint32_t timeout_ms, uint32_t token_out) {
  auto upstream = vm.Read(upstream_ptr, upstream_size);
  auto headers = vm.Read(headers_ptr, headers_size);
  auto body = vm.Read(body_ptr, body_size);
  if (!upstream || !headers || !body || !vm.InBounds(trailers_ptr, trailers_size)) return kBadMemory;
  if (!vm.InBounds(token_out, 4)) return kBadMemory;
  auto pairs = ParsePairs({reinterpret_cast<const uint8_t*>(headers->data()), headers->size()});
  if (!pairs) return WasmResult::kBadArgument;
  if (pairs->size() > vm.limits().header_count)
    return vm.RefuseAtLimit("header_count", vm.limits().header_count);
  if (body->size() > vm.limits().buffer_bytes)
    return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
  auto refuse = [&](const std::string& why) {
    vm.Log(LogLevel::kWarn, "proxy_http_call to '" + Printable(*upstream, 128) + "' refused: " + why);
    return WasmResult::kBadArgument;
  };
  const std::shared_ptr<OutboundHttp>& outbound = vm.services().outbound;
  if (!outbound) return refuse("this host has no outbound calls configured");
  if (upstream->starts_with("https://"))
    return refuse("https is not supported; call a cluster or an http:// URL");
  auto target = ParseTarget(*upstream);
  if (!target) return refuse("not a URL of the form http://host:port/path");
  if (!target->to_address && !outbound->HasCluster(target->target))
    return refuse("no cluster of that name in cluster_manager");

  HttpRequest request;
  request.method.clear();
  request.path.clear();
  for (auto& [name, value] : *pairs) {
    if (name.size() + value.size() > vm.limits().header_bytes)
      return vm.RefuseAtLimit("header_bytes", vm.limits().header_bytes);
    const bool bad_name = name.empty() || Unsafe(name) || name.find_first_of(" \t:") != std::string::npos;
    if ((bad_name && !name.starts_with(':')) || Unsafe(value))
      return refuse("a header name is empty or holds a space, CR, LF or NUL, or a value holds CR, LF or NUL");
    if (name == ":method") {
      request.method = value;
    } else if (name == ":path") {
      request.path = value;
    } else if (name == ":authority") {
      request.authority = value;
    } else if (!name.starts_with(':')) {
      request.headers.emplace_back(std::move(name), std::move(value));
    }
  }
  // MOSN takes what the headers leave out from the URL; a cluster call must name all three.
  if (target->to_address) {
    if (request.method.empty()) request.method = "GET";
    if (request.path.empty()) request.path = target->path;
    if (request.authority.empty()) request.authority = target->target;
  } else if (request.method.empty() || request.path.empty() || request.authority.empty()) {
    return refuse("the headers must hold :method, :path and :authority");
  }
  for (char c : request.method) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return refuse("a bad :method");
  }
  if (request.path.front() != '/' || request.path.find(' ') != std::string::npos)
    return refuse(":path must start with '/' and hold no space");
  if (request.authority.find(' ') != std::string::npos) return refuse(":authority holds a space");
  request.body = std::move(*body);
  const auto limit = vm.spec().max_call_timeout;
  const auto timeout = timeout_ms == 0 ? limit : std::min(limit, std::chrono::milliseconds(timeout_ms));

  const uint32_t token = vm.AddCall(nullptr);
  if (token == 0) {
    vm.Log(LogLevel::kWarn, "proxy_http_call refused: the instance already has " +
                                std::to_string(vm.spec().max_calls_in_flight) + " calls in flight");
    return WasmResult::kInternalFailure;
  }
  auto alive = vm.liveness();
  const auto budget = vm.spec().callback_timeout;
  auto started = outbound->Start(target->target, target->to_address, std::move(request), timeout,
                                 [alive, token, budget](HttpResponse response) {
                                   auto vm = alive.lock();
                                   if (!vm) return;  // the instance is gone
                                   Status status = (*vm)->DeliverHttpCallResponse(
                                       token, &response, (*vm)->clock().Now() + budget);
                                   if (!status.ok()) (*vm)->Log(LogLevel::kError, status.message());
                                 });
  if (!started.ok()) {
    // It never started: the token is taken back before the guest could learn it.
    vm.CancelCall(token);
    vm.Log(LogLevel::kWarn,
           "proxy_http_call to '" + Printable(*upstream, 128) + "' failed: " + started.status().message());
    return WasmResult::kInternalFailure;
  }
  vm.SetCallCancel(token, std::move(*started));
  if (!vm.WriteU32(token_out, token)) return kBadMemory;  // checked above; kept for symmetry
  return kOk;
}

// ---- gRPC callouts ----------------------------------------------------------------------------------

// The cluster a gRPC call names: the upstream as it is, or, from SDKs that pass Envoy's
// serialized GrpcService (the C++ SDK), the cluster_name of its envoy_grpc (field 1, in field 1).
std::string GrpcCluster(std::string_view upstream) {
  auto field_one = [](std::string_view bytes) -> std::optional<std::string_view> {
    if (bytes.size() < 2 || bytes[0] != 0x0a) return std::nullopt;  // field 1, length-delimited
    uint64_t length = 0;
    size_t at = 1;
    for (int shift = 0; at < bytes.size() && shift < 35; shift += 7) {
      const auto byte = static_cast<uint8_t>(bytes[at++]);
      length |= uint64_t{byte & 0x7fu} << shift;
      if (!(byte & 0x80))
        return length <= bytes.size() - at ? std::optional(bytes.substr(at, length)) : std::nullopt;
    }
    return std::nullopt;
  };
  if (auto envoy_grpc = field_one(upstream)) {
    if (auto name = field_one(*envoy_grpc)) return std::string(*name);
  }
  return std::string(upstream);
}

// Reports what a call's callback left wrong (the guest failed in it) to the instance's log.
template <typename Deliver>
auto OnInstance(std::weak_ptr<PluginVm*> alive, Deliver deliver) {
  return [alive = std::move(alive), deliver = std::move(deliver)](auto&&... args) {
    auto vm = alive.lock();
    if (!vm) return;  // the instance is gone
    Status status = deliver(**vm, std::forward<decltype(args)>(args)...);
    if (!status.ok()) (*vm)->Log(LogLevel::kError, status.message());
  };
}

// proxy_grpc_call and proxy_grpc_stream, once the guest's ranges are read. A unary call has a
// message; a stream has none.
R StartGrpc(PluginVm& vm, std::string_view upstream, std::string service, std::string method,
            std::string_view metadata, std::optional<std::string> message, uint32_t timeout_ms,
            uint32_t token_out) {
  const bool unary = message.has_value();
  const char* what = unary ? "proxy_grpc_call" : "proxy_grpc_stream";
  const std::string cluster = GrpcCluster(upstream);
  auto refuse = [&](WasmResult result, const std::string& why) {
    vm.Log(LogLevel::kWarn,
           std::string(what) + " to cluster '" + Printable(cluster, 128) + "' refused: " + why);
    return result;
  };
  const std::shared_ptr<OutboundGrpc>& outbound = vm.services().grpc;
  if (!outbound) return refuse(WasmResult::kInternalFailure, "this host has no outbound calls");
  if (!outbound->HasCluster(cluster))
    return refuse(WasmResult::kParseFailure, "no cluster of that name in cluster_manager");
  auto pairs = ParsePairs({reinterpret_cast<const uint8_t*>(metadata.data()), metadata.size()});
  if (!pairs) return refuse(WasmResult::kBadArgument, "the metadata is not a serialized header map");
  if (pairs->size() > vm.limits().header_count)
    return vm.RefuseAtLimit("header_count", vm.limits().header_count);
  for (const auto& [name, value] : *pairs) {
    if (name.size() + value.size() > vm.limits().header_bytes)
      return vm.RefuseAtLimit("header_bytes", vm.limits().header_bytes);
  }
  if (message && message->size() > vm.limits().buffer_bytes)
    return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);

  OutboundGrpc::Request request;
  request.cluster = cluster;
  request.service = std::move(service);
  request.method = std::move(method);
  request.metadata = std::move(*pairs);
  if (unary) {
    // A unary call always has a deadline: the guest's, at most max_call_timeout (0: that).
    const auto limit = vm.spec().max_call_timeout;
    request.timeout = timeout_ms == 0 ? limit : std::min(limit, std::chrono::milliseconds(timeout_ms));
  }
  const uint32_t token =
      vm.AddCall(nullptr, unary ? PluginVm::CallKind::kGrpcUnary : PluginVm::CallKind::kGrpcStream);
  if (token == 0) {
    return refuse(
        WasmResult::kInternalFailure,
        "the instance already has " + std::to_string(vm.spec().max_calls_in_flight) + " calls in flight");
  }
  const auto budget = vm.spec().callback_timeout;
  auto until = [budget](PluginVm& v) { return v.clock().Now() + budget; };
  OutboundGrpc::Events events;
  events.initial_metadata = OnInstance(vm.liveness(), [token, until](PluginVm& v, HeaderList md) {
    return v.DeliverGrpcMetadata(token, /*trailing=*/false, std::move(md), until(v));
  });
  events.message = OnInstance(vm.liveness(), [token, until](PluginVm& v, std::string m) {
    return v.DeliverGrpcMessage(token, std::move(m), until(v));
  });
  events.trailing_metadata = OnInstance(vm.liveness(), [token, until](PluginVm& v, HeaderList md) {
    return v.DeliverGrpcMetadata(token, /*trailing=*/true, std::move(md), until(v));
  });
  events.close = OnInstance(vm.liveness(), [token, until](PluginVm& v, uint32_t code, std::string m) {
    return v.DeliverGrpcClose(token, code, std::move(m), until(v));
  });
  auto started = outbound->Start(std::move(request), std::move(events));
  if (!started.ok()) {
    vm.CancelCall(token);  // it never started: taken back before the guest could learn it
    const bool bad = started.status().code() == StatusCode::kInvalidArgument;
    return refuse(bad ? WasmResult::kBadArgument : WasmResult::kInternalFailure, started.status().message());
  }
  std::shared_ptr<OutboundGrpc::Call> call = std::move(*started);
  if (unary) {
    if (Status sent = call->Send(std::move(*message), /*end_of_stream=*/true); !sent.ok()) {
      call->Cancel();
      vm.CancelCall(token);
      return refuse(WasmResult::kBadArgument, sent.message());
    }
  }
  vm.SetGrpcCall(token, std::move(call));
  if (!vm.WriteU32(token_out, token)) return kBadMemory;  // checked by the callers; kept for symmetry
  return kOk;
}

R GrpcCall(PluginVm& vm, uint32_t upstream_ptr, uint32_t upstream_size, uint32_t service_ptr,
           uint32_t service_size, uint32_t method_ptr, uint32_t method_size, uint32_t metadata_ptr,
           uint32_t metadata_size, uint32_t message_ptr, uint32_t message_size, uint32_t timeout_ms,
           uint32_t token_out) {
  auto upstream = vm.Read(upstream_ptr, upstream_size);
  auto service = vm.Read(service_ptr, service_size);
  auto method = vm.Read(method_ptr, method_size);
  auto metadata = vm.Read(metadata_ptr, metadata_size);
  auto message = vm.Read(message_ptr, message_size);
  if (!upstream || !service || !method || !metadata || !message || !vm.InBounds(token_out, 4))
    return kBadMemory;
  return StartGrpc(vm, *upstream, std::move(*service), std::move(*method), *metadata, std::move(*message),
                   timeout_ms, token_out);
}

// The 10-parameter shape: no metadata.
R GrpcCallWithoutMetadata(PluginVm& vm, uint32_t upstream_ptr, uint32_t upstream_size, uint32_t service_ptr,
                          uint32_t service_size, uint32_t method_ptr, uint32_t method_size,
                          uint32_t message_ptr, uint32_t message_size, uint32_t timeout_ms,
                          uint32_t token_out) {
  auto upstream = vm.Read(upstream_ptr, upstream_size);
  auto service = vm.Read(service_ptr, service_size);
  auto method = vm.Read(method_ptr, method_size);
  auto message = vm.Read(message_ptr, message_size);
  if (!upstream || !service || !method || !message || !vm.InBounds(token_out, 4)) return kBadMemory;
  return StartGrpc(vm, *upstream, std::move(*service), std::move(*method), {}, std::move(*message),
                   timeout_ms, token_out);
}

R GrpcStream(PluginVm& vm, uint32_t upstream_ptr, uint32_t upstream_size, uint32_t service_ptr,
             uint32_t service_size, uint32_t method_ptr, uint32_t method_size, uint32_t metadata_ptr,
             uint32_t metadata_size, uint32_t token_out) {
  auto upstream = vm.Read(upstream_ptr, upstream_size);
  auto service = vm.Read(service_ptr, service_size);
  auto method = vm.Read(method_ptr, method_size);
  auto metadata = vm.Read(metadata_ptr, metadata_size);
  if (!upstream || !service || !method || !metadata || !vm.InBounds(token_out, 4)) return kBadMemory;
  return StartGrpc(vm, *upstream, std::move(*service), std::move(*method), *metadata, std::nullopt, 0,
                   token_out);
}

// Layotto's proxy_open_grpc_stream: no metadata.
R OpenGrpcStream(PluginVm& vm, uint32_t upstream_ptr, uint32_t upstream_size, uint32_t service_ptr,
                 uint32_t service_size, uint32_t method_ptr, uint32_t method_size, uint32_t token_out) {
  auto upstream = vm.Read(upstream_ptr, upstream_size);
  auto service = vm.Read(service_ptr, service_size);
  auto method = vm.Read(method_ptr, method_size);
  if (!upstream || !service || !method || !vm.InBounds(token_out, 4)) return kBadMemory;
  return StartGrpc(vm, *upstream, std::move(*service), std::move(*method), {}, std::nullopt, 0, token_out);
}

R GrpcSend(PluginVm& vm, uint32_t token, uint32_t message_ptr, uint32_t message_size, uint32_t end_stream) {
  if (message_size > vm.limits().buffer_bytes) {
    if (!vm.InBounds(message_ptr, message_size)) return kBadMemory;
    return vm.RefuseAtLimit("buffer_bytes", vm.limits().buffer_bytes);
  }
  auto message = vm.Read(message_ptr, message_size);
  if (!message) return kBadMemory;
  return vm.GrpcSend(token, std::move(*message), end_stream != 0);
}
R GrpcCancel(PluginVm& vm, uint32_t token) { return vm.GrpcCancel(token); }
R GrpcClose(PluginVm& vm, uint32_t token) { return vm.GrpcClose(token); }

R CallForeignFunction(PluginVm& vm, uint32_t name_ptr, uint32_t name_size, uint32_t args_ptr,
                      uint32_t args_size, uint32_t results_ptr_out, uint32_t results_size_out) {
  if (!vm.InBounds(name_ptr, name_size) || !vm.InBounds(args_ptr, args_size) ||
      !vm.InBounds(results_ptr_out, 4) || !vm.InBounds(results_size_out, 4)) {
    return kBadMemory;
  }
  return WasmResult::kNotFound;
}

// ---- shared data and queues --------------------------------------------------------------------

R SetSharedData(PluginVm& vm, uint32_t key_ptr, uint32_t key_size, uint32_t value_ptr, uint32_t value_size,
                uint32_t cas) {
  auto key = vm.Read(key_ptr, key_size);
  auto value = vm.Read(value_ptr, value_size);
  if (!key || !value) return kBadMemory;
  if (key->empty()) return WasmResult::kNotFound;
  const WasmResult r = vm.services().shared->SetData(vm.spec().vm_id, *key, *value, cas);
  if (r == WasmResult::kInternalFailure)
    return vm.RefuseAtLimit("shared_data_bytes", vm.limits().shared_data_bytes);
  return r;
}

R GetSharedData(PluginVm& vm, uint32_t key_ptr, uint32_t key_size, uint32_t value_ptr_out,
                uint32_t value_size_out, uint32_t cas_out) {
  auto key = vm.Read(key_ptr, key_size);
  if (!key) return kBadMemory;
  if (!vm.InBounds(cas_out, 4)) return kBadMemory;
  auto value = vm.services().shared->GetData(vm.spec().vm_id, *key);
  if (!value) return WasmResult::kNotFound;
  auto r = vm.ReturnBytes(value->bytes, value_ptr_out, value_size_out);
  if (!r.ok() || *r != kOk) return r;
  return vm.WriteU32(cas_out, value->cas) ? kOk : kBadMemory;
}

R RegisterSharedQueue(PluginVm& vm, uint32_t name_ptr, uint32_t name_size, uint32_t id_out) {
  auto name = vm.Read(name_ptr, name_size);
  if (!name) return kBadMemory;
  if (!vm.InBounds(id_out, 4)) return kBadMemory;
  vm.RegisterQueueNotifications();
  const uint32_t id = vm.services().shared->RegisterQueue(vm.spec().vm_id, *name, vm.spec().root_context_id,
                                                          vm.queue_notifier());
  return vm.WriteU32(id_out, id) ? kOk : kBadMemory;
}

R ResolveQueue(PluginVm& vm, std::string_view vm_id, uint32_t name_ptr, uint32_t name_len, uint32_t id_out) {
  auto name = vm.Read(name_ptr, name_len);
  if (!name) return kBadMemory;
  auto id = vm.services().shared->ResolveQueue(vm_id.empty() ? vm.spec().vm_id : vm_id, *name);
  if (!id) return WasmResult::kNotFound;
  return vm.WriteU32(id_out, *id) ? kOk : kBadMemory;
}

R ResolveSharedQueue(PluginVm& vm, uint32_t vm_id_ptr, uint32_t vm_id_size, uint32_t name_ptr,
                     uint32_t name_size, uint32_t id_out) {
  auto vm_id = vm.Read(vm_id_ptr, vm_id_size);
  if (!vm_id) return kBadMemory;
  return ResolveQueue(vm, *vm_id, name_ptr, name_size, id_out);
}

R ResolveOwnSharedQueue(PluginVm& vm, uint32_t name_ptr, uint32_t name_size, uint32_t id_out) {
  return ResolveQueue(vm, {}, name_ptr, name_size, id_out);
}

R EnqueueSharedQueue(PluginVm& vm, uint32_t queue_id, uint32_t value_ptr, uint32_t value_size) {
  auto value = vm.Read(value_ptr, value_size);
  if (!value) return kBadMemory;
  const WasmResult r = vm.services().shared->Enqueue(queue_id, *value);
  if (r == WasmResult::kInternalFailure)
    return vm.RefuseAtLimit("queue_entries or queue_bytes", vm.limits().queue_entries);
  return r;
}

R DequeueSharedQueue(PluginVm& vm, uint32_t queue_id, uint32_t value_ptr_out, uint32_t value_size_out) {
  if (!vm.InBounds(value_ptr_out, 4) || !vm.InBounds(value_size_out, 4)) return kBadMemory;
  std::string value;
  WasmResult r = vm.services().shared->Dequeue(queue_id, value);
  if (r != kOk) return r;
  return vm.ReturnBytes(value, value_ptr_out, value_size_out);
}

R RemoveSharedQueue(PluginVm& vm, uint32_t queue_id) { return vm.services().shared->RemoveQueue(queue_id); }

// ---- metrics -----------------------------------------------------------------------------------

R DefineMetric(PluginVm& vm, uint32_t type, uint32_t name_ptr, uint32_t name_size, uint32_t id_out) {
  auto name = vm.Read(name_ptr, name_size);
  if (!name) return kBadMemory;
  if (type > static_cast<uint32_t>(MetricType::kHistogram)) return WasmResult::kBadArgument;
  if (!vm.InBounds(id_out, 4)) return kBadMemory;
  auto id = vm.services().shared->DefineMetric(vm.spec().vm_id, static_cast<MetricType>(type), *name);
  if (!id) return vm.RefuseAtLimit("metrics", vm.limits().metrics);
  return vm.WriteU32(id_out, *id) ? kOk : kBadMemory;
}

R IncrementMetric(PluginVm& vm, uint32_t id, int64_t delta) {
  return vm.services().shared->IncrementMetric(id, delta);
}
R RecordMetric(PluginVm& vm, uint32_t id, uint64_t value) {
  return vm.services().shared->RecordMetric(id, value);
}
R GetMetric(PluginVm& vm, uint32_t id, uint32_t value_out) {
  if (!vm.InBounds(value_out, 8)) return kBadMemory;
  auto value = vm.services().shared->GetMetric(id);
  if (!value) return WasmResult::kNotFound;
  return vm.WriteU64(value_out, *value) ? kOk : kBadMemory;
}
R RemoveMetric(PluginVm& vm, uint32_t id) { return vm.services().shared->RemoveMetric(id); }

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

R GetProperty(PluginVm& vm, uint32_t path_ptr, uint32_t path_size, uint32_t value_ptr_out,
              uint32_t value_size_out) {
  auto path = vm.Read(path_ptr, path_size);
  if (!path) return kBadMemory;
  if (!vm.InBounds(value_ptr_out, 4) || !vm.InBounds(value_size_out, 4)) return kBadMemory;
  auto value = vm.Property(SplitPath(*path));
  if (!value) return WasmResult::kNotFound;
  return vm.ReturnBytes(*value, value_ptr_out, value_size_out);
}

R SetProperty(PluginVm& vm, uint32_t path_ptr, uint32_t path_size, uint32_t value_ptr, uint32_t value_size) {
  auto path = vm.Read(path_ptr, path_size);
  auto value = vm.Read(value_ptr, value_size);
  if (!path || !value) return kBadMemory;
  const std::string key = PropertyKey(SplitPath(*path));
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

R Done(PluginVm& vm) {
  vm.RequestRootDelete();  // on_delete runs after the current callback (ABI §4.6)
  return kOk;
}

R SetEffectiveContext(PluginVm& vm, uint32_t context_id) { return vm.SetEffectiveContext(context_id); }

R Log(PluginVm& vm, uint32_t level, uint32_t message_ptr, uint32_t message_size) {
  auto message = vm.Read(message_ptr, message_size);
  if (!message) return kBadMemory;
  vm.Log(static_cast<LogLevel>(std::min<uint32_t>(level, static_cast<uint32_t>(LogLevel::kCritical))),
         *message);
  return kOk;
}

R GetLogLevel(PluginVm& vm, uint32_t level_out) {
  return vm.WriteU32(level_out, static_cast<uint32_t>(vm.services().log_level)) ? kOk : kBadMemory;
}

R GetCurrentTimeNanoseconds(PluginVm& vm, uint32_t time_out) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return vm.WriteU64(time_out, std::chrono::duration_cast<std::chrono::nanoseconds>(now).count())
             ? kOk
             : kBadMemory;
}

R SetTickPeriod(PluginVm& vm, uint32_t period_ms) {
  vm.SetTickPeriod(period_ms);
  return kOk;
}

R GetConfiguration(PluginVm& vm, uint32_t ptr_out, uint32_t size_out) {
  // 0.1.0: the configuration of the callback being run.
  std::string_view configuration;
  if (vm.phase() == PluginVm::Phase::kVmStart) configuration = vm.spec().vm_configuration;
  if (vm.phase() == PluginVm::Phase::kConfigure) configuration = vm.spec().plugin_configuration;
  return vm.ReturnBytes(configuration, ptr_out, size_out);
}

// ---- Emscripten's helpers -------------------------------------------------------------------

void NotifyMemoryGrowth(const HostCall&, uint32_t /*memory_index*/) {}
int32_t PthreadEqual(const HostCall&, uint32_t a, uint32_t b) { return a == b; }

}  // namespace

void AddProxyWasmCalls(engine::HostFunctions& h) {
  const auto allow = InAllocator::kAllow;

  // Context, logging, time, timers (ABI §3.1).
  AddHostFunction<Done>(h, "env", "proxy_done");
  AddHostFunction<SetEffectiveContext>(h, "env", "proxy_set_effective_context");
  AddHostFunction<Log>(h, "env", "proxy_log", allow);
  AddHostFunction<GetLogLevel>(h, "env", "proxy_get_log_level", allow);
  AddHostFunction<GetCurrentTimeNanoseconds>(h, "env", "proxy_get_current_time_nanoseconds", allow);
  AddHostFunction<SetTickPeriod>(h, "env", "proxy_set_tick_period_milliseconds");
  // Buffers and header maps.
  AddHostFunction<GetBufferBytes>(h, "env", "proxy_get_buffer_bytes");
  AddHostFunction<SetBufferBytes>(h, "env", "proxy_set_buffer_bytes");
  AddHostFunction<GetBufferStatus>(h, "env", "proxy_get_buffer_status");
  AddHostFunction<GetHeaderMapSize>(h, "env", "proxy_get_header_map_size");
  AddHostFunction<GetHeaderMapPairs>(h, "env", "proxy_get_header_map_pairs");
  AddHostFunction<SetHeaderMapPairs>(h, "env", "proxy_set_header_map_pairs");
  AddHostFunction<GetHeaderMapValue>(h, "env", "proxy_get_header_map_value");
  AddHostFunction<ChangeHeaderMapValue<&HeaderMap::Add>>(h, "env", "proxy_add_header_map_value");
  AddHostFunction<ChangeHeaderMapValue<&HeaderMap::Replace>>(h, "env", "proxy_replace_header_map_value");
  AddHostFunction<RemoveHeaderMapValue>(h, "env", "proxy_remove_header_map_value");
  // Stream control.
  AddHostFunction<ContinueStream>(h, "env", "proxy_continue_stream");
  AddHostFunction<IgnoreStream>(h, "env", "proxy_close_stream");
  AddHostFunction<GetStatus>(h, "env", "proxy_get_status");
  AddHostFunction<SendLocalResponse>(h, "env", "proxy_send_local_response");
  // Callouts.
  AddHostFunction<HttpCall>(h, "env", "proxy_http_call");
  AddHostFunction<GrpcCall>(h, "env", "proxy_grpc_call");
  AddHostFunction<GrpcStream>(h, "env", "proxy_grpc_stream");
  AddHostFunction<GrpcSend>(h, "env", "proxy_grpc_send");
  AddHostFunction<GrpcCancel>(h, "env", "proxy_grpc_cancel");
  AddHostFunction<GrpcClose>(h, "env", "proxy_grpc_close");
  // Shared data, queues, metrics, properties, foreign functions.
  AddHostFunction<SetSharedData>(h, "env", "proxy_set_shared_data");
  AddHostFunction<GetSharedData>(h, "env", "proxy_get_shared_data");
  AddHostFunction<RegisterSharedQueue>(h, "env", "proxy_register_shared_queue");
  AddHostFunction<ResolveSharedQueue>(h, "env", "proxy_resolve_shared_queue");
  AddHostFunction<EnqueueSharedQueue>(h, "env", "proxy_enqueue_shared_queue");
  AddHostFunction<DequeueSharedQueue>(h, "env", "proxy_dequeue_shared_queue");
  AddHostFunction<DefineMetric>(h, "env", "proxy_define_metric");
  AddHostFunction<RecordMetric>(h, "env", "proxy_record_metric");
  AddHostFunction<IncrementMetric>(h, "env", "proxy_increment_metric");
  AddHostFunction<GetMetric>(h, "env", "proxy_get_metric");
  AddHostFunction<GetProperty>(h, "env", "proxy_get_property");
  AddHostFunction<SetProperty>(h, "env", "proxy_set_property");
  AddHostFunction<CallForeignFunction>(h, "env", "proxy_call_foreign_function");

  // 0.1.0 only (ABI §3.2), declared () -> i32 as real 0.1.0 SDKs import them.
  AddHostFunction<ContinueCurrentStream>(h, "env", "proxy_continue_request");
  AddHostFunction<ContinueCurrentStream>(h, "env", "proxy_continue_response");
  AddHostFunction<Ignore>(h, "env", "proxy_clear_route_cache");

  // Layotto's legacy names (ABI §7.5); two names exist in a second shape, resolved by type.
  AddHostFunction<ContinueCurrentStream>(h, "env", "proxy_resume_http_request");
  AddHostFunction<ContinueCurrentStream>(h, "env", "proxy_resume_http_response");
  AddHostFunction<ContinueCurrentStream>(h, "env", "proxy_resume_downstream");
  AddHostFunction<ContinueCurrentStream>(h, "env", "proxy_resume_upstream");
  AddHostFunction<SendLocalResponse>(h, "env", "proxy_send_http_response");
  AddHostFunction<HttpCall>(h, "env", "proxy_dispatch_http_call");
  AddHostFunction<GrpcCallWithoutMetadata>(h, "env", "proxy_grpc_call");
  AddHostFunction<GrpcCallWithoutMetadata>(h, "env", "proxy_dispatch_grpc_call");
  AddHostFunction<OpenGrpcStream>(h, "env", "proxy_open_grpc_stream");
  AddHostFunction<GrpcSend>(h, "env", "proxy_send_grpc_call_message");
  AddHostFunction<GrpcCancel>(h, "env", "proxy_cancel_grpc_call");
  AddHostFunction<GrpcClose>(h, "env", "proxy_close_grpc_call");
  AddHostFunction<RemoveMetric>(h, "env", "proxy_remove_metric");
  AddHostFunction<RemoveSharedQueue>(h, "env", "proxy_remove_shared_queue");
  AddHostFunction<ResolveOwnSharedQueue>(h, "env", "proxy_resolve_shared_queue");
  AddHostFunction<GetConfiguration>(h, "env", "proxy_get_configuration");

  // Emscripten helpers (ABI §1.1).
  AddHostFunction<NotifyMemoryGrowth>(h, "env", "emscripten_notify_memory_growth", allow);
  AddHostFunction<PthreadEqual>(h, "env", "pthread_equal", allow);
}

}  // namespace wasmlet::abi
