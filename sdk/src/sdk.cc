// wasmlet guest SDK: the exports the host calls, dispatched to the registered context classes,
// and the C++ wrappers of the host functions.
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "wasmlet/sdk.h"

namespace wasmlet::sdk {
namespace {

// A gRPC call in flight. `caller` is the context that made it, or kRootCaller once that stream
// is gone: its callbacks then go to the root the host reports on.
inline constexpr uint32_t kRootCaller = 0;
struct GrpcCallRecord {
  uint32_t caller = kRootCaller;
  bool unary = false;  // one callback ends it
};

struct Registry {
  RootFactory root_factory = nullptr;
  StreamFactory stream_factory = nullptr;
  std::unordered_map<uint32_t, std::unique_ptr<RootContext>> roots;
  std::unordered_map<uint32_t, std::unique_ptr<StreamContext>> streams;
  // The context whose callback is running: HttpCall records it as the caller.
  uint32_t current_context = 0;
  // HttpCall token -> id of the context that made the call, until its answer arrives.
  std::unordered_map<uint32_t, uint32_t> http_calls;
  // GrpcCall / GrpcStream token -> the call, until its last callback or GrpcCancel.
  std::unordered_map<uint32_t, GrpcCallRecord> grpc_calls;
};

Registry& registry() {
  static Registry r;
  return r;
}

// Takes ownership of a buffer the host allocated with proxy_on_memory_allocate.
std::string Take(char* data, size_t size) {
  std::string out(data ? data : "", data ? size : 0);
  free(data);
  return out;
}

Status S(proxy_status_t s) { return static_cast<Status>(s); }

std::string Path(std::initializer_list<std::string_view> path) {
  std::string out;
  for (auto segment : path) {
    if (!out.empty()) out.push_back('\0');
    out.append(segment);
  }
  return out;
}

void PutU32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }

// Callout answers nobody could take: an unknown token, or a caller that was gone.
uint32_t dropped_http_call_responses = 0;
// gRPC callbacks nobody could take: an unknown (or cancelled) token, or no context at all.
uint32_t dropped_grpc_callbacks = 0;

}  // namespace

Registrar::Registrar(RootFactory root, StreamFactory stream) {
  registry().root_factory = root;
  registry().stream_factory = stream;
}

void ReportFunctionId(std::string_view id) { SetBuffer(BufferType::kCallData, 0, kToEnd, id); }

void Log(LogLevel level, std::string_view message) {
  proxy_log(static_cast<uint32_t>(level), message.data(), message.size());
}

uint64_t NowNanoseconds() {
  uint64_t ns = 0;
  proxy_get_current_time_nanoseconds(&ns);
  return ns;
}

std::optional<std::string> GetBuffer(BufferType type, size_t start, size_t max_size) {
  char* data = nullptr;
  size_t size = 0;
  if (proxy_get_buffer_bytes(static_cast<uint32_t>(type), start, max_size, &data, &size) != PROXY_OK) {
    return std::nullopt;
  }
  return Take(data, size);
}

Status SetBuffer(BufferType type, size_t start, size_t size, std::string_view data) {
  return S(proxy_set_buffer_bytes(static_cast<uint32_t>(type), start, size, data.data(), data.size()));
}

std::optional<std::string> GetHeader(MapType type, std::string_view name) {
  char* data = nullptr;
  size_t size = 0;
  if (proxy_get_header_map_value(static_cast<uint32_t>(type), name.data(), name.size(), &data, &size) !=
      PROXY_OK) {
    return std::nullopt;
  }
  return Take(data, size);
}

Headers GetHeaders(MapType type) {
  char* data = nullptr;
  size_t size = 0;
  if (proxy_get_header_map_pairs(static_cast<uint32_t>(type), &data, &size) != PROXY_OK) return {};
  return ParseHeaders(Take(data, size));
}

Status SetHeaders(MapType type, const Headers& headers) {
  std::string bytes = SerializeHeaders(headers);
  return S(proxy_set_header_map_pairs(static_cast<uint32_t>(type), bytes.data(), bytes.size()));
}

Status AddHeader(MapType type, std::string_view name, std::string_view value) {
  return S(proxy_add_header_map_value(static_cast<uint32_t>(type), name.data(), name.size(), value.data(),
                                      value.size()));
}

Status ReplaceHeader(MapType type, std::string_view name, std::string_view value) {
  return S(proxy_replace_header_map_value(static_cast<uint32_t>(type), name.data(), name.size(), value.data(),
                                          value.size()));
}

Status RemoveHeader(MapType type, std::string_view name) {
  return S(proxy_remove_header_map_value(static_cast<uint32_t>(type), name.data(), name.size()));
}

Status SendLocalResponse(uint32_t status, std::string_view body, const Headers& headers,
                         std::string_view details) {
  std::string pairs = SerializeHeaders(headers);
  return S(proxy_send_local_response(status, details.data(), details.size(), body.data(), body.size(),
                                     pairs.data(), pairs.size(), -1));
}

Status ContinueRequest() { return S(proxy_continue_stream(PROXY_STREAM_HTTP_REQUEST)); }
Status ContinueResponse() { return S(proxy_continue_stream(PROXY_STREAM_HTTP_RESPONSE)); }

std::optional<std::string> GetProperty(std::initializer_list<std::string_view> path) {
  std::string p = Path(path);
  char* data = nullptr;
  size_t size = 0;
  if (proxy_get_property(p.data(), p.size(), &data, &size) != PROXY_OK) return std::nullopt;
  return Take(data, size);
}

Status SetProperty(std::initializer_list<std::string_view> path, std::string_view value) {
  std::string p = Path(path);
  return S(proxy_set_property(p.data(), p.size(), value.data(), value.size()));
}

std::optional<SharedValue> GetSharedData(std::string_view key) {
  char* data = nullptr;
  size_t size = 0;
  uint32_t cas = 0;
  if (proxy_get_shared_data(key.data(), key.size(), &data, &size, &cas) != PROXY_OK) return std::nullopt;
  return SharedValue{Take(data, size), cas};
}

Status SetSharedData(std::string_view key, std::string_view value, uint32_t cas) {
  return S(proxy_set_shared_data(key.data(), key.size(), value.data(), value.size(), cas));
}

std::optional<uint32_t> RegisterQueue(std::string_view name) {
  uint32_t id = 0;
  if (proxy_register_shared_queue(name.data(), name.size(), &id) != PROXY_OK) return std::nullopt;
  return id;
}

std::optional<uint32_t> ResolveQueue(std::string_view vm_id, std::string_view name) {
  uint32_t id = 0;
  if (proxy_resolve_shared_queue(vm_id.data(), vm_id.size(), name.data(), name.size(), &id) != PROXY_OK) {
    return std::nullopt;
  }
  return id;
}

Status Enqueue(uint32_t queue_id, std::string_view value) {
  return S(proxy_enqueue_shared_queue(queue_id, value.data(), value.size()));
}

Status Dequeue(uint32_t queue_id, std::string* value) {
  char* data = nullptr;
  size_t size = 0;
  Status s = S(proxy_dequeue_shared_queue(queue_id, &data, &size));
  if (s == Status::kOk) *value = Take(data, size);
  return s;
}

Status SetTickPeriodMilliseconds(uint32_t ms) { return S(proxy_set_tick_period_milliseconds(ms)); }

std::optional<uint32_t> HttpCall(std::string_view upstream, const Headers& headers, std::string_view body,
                                 const Headers& trailers, uint32_t timeout_ms, Status* status) {
  const std::string header_bytes = SerializeHeaders(headers);
  const std::string trailer_bytes = SerializeHeaders(trailers);
  uint32_t token = 0;
  const Status s = S(proxy_http_call(upstream.data(), upstream.size(), header_bytes.data(),
                                     header_bytes.size(), body.data(), body.size(), trailer_bytes.data(),
                                     trailer_bytes.size(), timeout_ms, &token));
  if (status) *status = s;
  if (s != Status::kOk) return std::nullopt;
  // Recorded only now that the call has returned: the host never answers from inside it.
  registry().http_calls[token] = registry().current_context;
  return token;
}

uint32_t GetHttpCallStatus() {
  auto status = GetHeader(MapType::kHttpCallResponseHeaders, ":status");
  if (!status || status->empty() || status->size() > 9) return 0;
  uint32_t code = 0;
  for (char c : *status) {
    if (c < '0' || c > '9') return 0;
    code = code * 10 + static_cast<uint32_t>(c - '0');
  }
  return code;
}

std::optional<uint32_t> GetStatusCode() {
  uint32_t code = 0;
  char* message = nullptr;
  size_t message_size = 0;
  if (proxy_get_status(&code, &message, &message_size) != PROXY_OK) return std::nullopt;
  free(message);
  return code;
}

uint32_t DroppedHttpCallResponses() { return dropped_http_call_responses; }

std::optional<uint32_t> GrpcCall(std::string_view cluster, std::string_view service, std::string_view method,
                                 const Headers& metadata, std::string_view message, uint32_t timeout_ms,
                                 Status* status) {
  const std::string metadata_bytes = SerializeHeaders(metadata);
  uint32_t token = 0;
  const Status s = S(proxy_grpc_call(
      cluster.data(), cluster.size(), service.data(), service.size(), method.data(), method.size(),
      metadata_bytes.data(), metadata_bytes.size(), message.data(), message.size(), timeout_ms, &token));
  if (status) *status = s;
  if (s != Status::kOk) return std::nullopt;
  // As for HttpCall: the host never reports from inside the call that starts it.
  registry().grpc_calls[token] = GrpcCallRecord{registry().current_context, true};
  return token;
}

std::optional<uint32_t> GrpcStream(std::string_view cluster, std::string_view service,
                                   std::string_view method, const Headers& metadata, Status* status) {
  const std::string metadata_bytes = SerializeHeaders(metadata);
  uint32_t token = 0;
  const Status s =
      S(proxy_grpc_stream(cluster.data(), cluster.size(), service.data(), service.size(), method.data(),
                          method.size(), metadata_bytes.data(), metadata_bytes.size(), &token));
  if (status) *status = s;
  if (s != Status::kOk) return std::nullopt;
  registry().grpc_calls[token] = GrpcCallRecord{registry().current_context, false};
  return token;
}

Status GrpcSend(uint32_t token, std::string_view message, bool end_of_stream) {
  return S(proxy_grpc_send(token, message.data(), message.size(), end_of_stream ? 1 : 0));
}

Status GrpcClose(uint32_t token) { return S(proxy_grpc_close(token)); }

Status GrpcCancel(uint32_t token) {
  // Forgotten whatever the host says: a callback for it now would be one nobody expects.
  registry().grpc_calls.erase(token);
  return S(proxy_grpc_cancel(token));
}

std::pair<uint32_t, std::string> GetGrpcStatus() {
  uint32_t code = 0;
  char* message = nullptr;
  size_t message_size = 0;
  if (proxy_get_status(&code, &message, &message_size) != PROXY_OK) return {2, ""};  // UNKNOWN
  return {code, Take(message, message_size)};
}

uint32_t DroppedGrpcCallbacks() { return dropped_grpc_callbacks; }

Status GetState(std::string_view store, std::string_view key, std::string* value) {
  char* data = nullptr;
  size_t size = 0;
  Status s = S(proxy_get_state(store.data(), store.size(), key.data(), key.size(), &data, &size));
  if (s == Status::kOk) *value = Take(data, size);
  return s;
}

Status InvokeService(std::string_view id, std::string_view method, std::string_view param,
                     std::string* result) {
  char* data = nullptr;
  size_t size = 0;
  Status s = S(proxy_invoke_service(id.data(), id.size(), method.data(), method.size(), param.data(),
                                    param.size(), &data, &size));
  if (s == Status::kOk) *result = Take(data, size);
  return s;
}

Status GetStateItem(std::string_view store, std::string_view key, StateItem* item) {
  char* value = nullptr;
  size_t value_size = 0;
  char* etag = nullptr;
  size_t etag_size = 0;
  Status s = S(proxy_get_state_item(store.data(), store.size(), key.data(), key.size(), &value, &value_size,
                                    &etag, &etag_size));
  if (s == Status::kOk) {
    item->value = Take(value, value_size);
    item->etag = Take(etag, etag_size);
  }
  return s;
}

namespace {
// A list of keys in the pairs format: the keys as names, empty values.
std::string KeysList(const std::vector<std::string>& keys) {
  Headers asked;
  asked.reserve(keys.size());
  for (const std::string& key : keys) asked.emplace_back(key, "");
  return SerializeHeaders(asked);
}
}  // namespace

Status GetBulkState(std::string_view store, const std::vector<std::string>& keys,
                    std::vector<StateItem>* items) {
  const std::string encoded = KeysList(keys);
  char* data = nullptr;
  size_t size = 0;
  Status s =
      S(proxy_get_bulk_state(store.data(), store.size(), encoded.data(), encoded.size(), &data, &size));
  if (s != Status::kOk) return s;
  items->clear();
  for (auto& [etag, value] : ParseHeaders(Take(data, size)))
    items->push_back(StateItem{std::move(value), std::move(etag)});
  return s;
}

Status SaveState(std::string_view store, std::string_view key, std::string_view value,
                 const StateSaveOptions& options) {
  return S(proxy_save_state(store.data(), store.size(), key.data(), key.size(), value.data(), value.size(),
                            options.etag.data(), options.etag.size(),
                            options.first_write ? WASMLET_STATE_FIRST_WRITE : 0u, options.ttl_seconds));
}

Status DeleteState(std::string_view store, std::string_view key, std::string_view etag) {
  return S(proxy_delete_state(store.data(), store.size(), key.data(), key.size(), etag.data(), etag.size()));
}

StateTransaction& StateTransaction::Save(std::string_view key, std::string_view value,
                                         const StateSaveOptions& options) {
  std::string kind = "upsert";
  if (options.first_write) kind += " first-write";
  if (options.ttl_seconds > 0) kind += " ttl=" + std::to_string(options.ttl_seconds);
  pairs_.emplace_back(std::move(kind), std::string(key));
  pairs_.emplace_back(options.etag, std::string(value));
  return *this;
}

StateTransaction& StateTransaction::Delete(std::string_view key, std::string_view etag) {
  pairs_.emplace_back("delete", std::string(key));
  pairs_.emplace_back(std::string(etag), "");
  return *this;
}

Status StateTransaction::Commit(std::string_view store) const {
  const std::string encoded = SerializeHeaders(pairs_);
  return S(proxy_execute_state_transaction(store.data(), store.size(), encoded.data(), encoded.size()));
}

Status TryLock(std::string_view store, std::string_view resource, std::string_view owner,
               uint32_t expire_seconds, bool* taken) {
  uint32_t raw = 0;
  Status s = S(proxy_try_lock(store.data(), store.size(), resource.data(), resource.size(), owner.data(),
                              owner.size(), expire_seconds, &raw));
  if (s == Status::kOk) *taken = raw != 0;
  return s;
}

Status Unlock(std::string_view store, std::string_view resource, std::string_view owner,
              UnlockResult* result) {
  uint32_t raw = 0;
  Status s = S(proxy_unlock(store.data(), store.size(), resource.data(), resource.size(), owner.data(),
                            owner.size(), &raw));
  if (s == Status::kOk) *result = static_cast<UnlockResult>(raw);
  return s;
}

Status GetNextId(std::string_view store, std::string_view key, uint64_t* id) {
  return S(proxy_get_next_id(store.data(), store.size(), key.data(), key.size(), id));
}

Status GetConfigurationItems(std::string_view store, const std::vector<std::string>& keys, Headers* items) {
  const std::string encoded = KeysList(keys);
  char* bytes = nullptr;
  size_t size = 0;
  Status s = S(proxy_get_configuration_items(store.data(), store.size(), encoded.data(), encoded.size(),
                                             &bytes, &size));
  if (s == Status::kOk) *items = ParseHeaders(Take(bytes, size));
  return s;
}

Status PublishEvent(std::string_view pubsub, std::string_view topic, std::string_view data,
                    const Headers& metadata) {
  const std::string encoded = SerializeHeaders(metadata);
  return S(proxy_publish_event(pubsub.data(), pubsub.size(), topic.data(), topic.size(), data.data(),
                               data.size(), encoded.data(), encoded.size()));
}

Status GetSecret(std::string_view store, std::string_view name, Headers* data) {
  char* bytes = nullptr;
  size_t size = 0;
  Status s = S(proxy_get_secret(store.data(), store.size(), name.data(), name.size(), &bytes, &size));
  if (s == Status::kOk) *data = ParseHeaders(Take(bytes, size));
  return s;
}

Status GetBulkSecret(std::string_view store, std::vector<std::pair<std::string, Headers>>* secrets) {
  char* bytes = nullptr;
  size_t size = 0;
  Status s = S(proxy_get_bulk_secret(store.data(), store.size(), &bytes, &size));
  if (s != Status::kOk) return s;
  secrets->clear();
  for (auto& [name, data] : ParseHeaders(Take(bytes, size)))
    secrets->emplace_back(std::move(name), ParseHeaders(data));
  return s;
}

std::string QueryParam(std::string_view query, std::string_view name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view pair = query.substr(pos, end - pos);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
    pos = end + 1;
  }
  return "";
}

std::string SerializeHeaders(const Headers& headers) {
  if (headers.empty()) return {};
  std::string out;
  PutU32(out, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    PutU32(out, static_cast<uint32_t>(name.size()));
    PutU32(out, static_cast<uint32_t>(value.size()));
  }
  for (const auto& [name, value] : headers) {
    out.append(name).push_back('\0');
    out.append(value).push_back('\0');
  }
  return out;
}

Headers ParseHeaders(std::string_view bytes) {
  Headers headers;
  if (bytes.size() < 4) return headers;
  uint32_t n;
  std::memcpy(&n, bytes.data(), 4);
  if (4 + uint64_t{n} * 8 > bytes.size()) return headers;
  size_t pos = 4 + size_t{n} * 8;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t name_size, value_size;
    std::memcpy(&name_size, bytes.data() + 4 + i * 8, 4);
    std::memcpy(&value_size, bytes.data() + 8 + i * 8, 4);
    if (pos + name_size + 1 + value_size + 1 > bytes.size()) return {};
    headers.emplace_back(std::string(bytes.substr(pos, name_size)),
                         std::string(bytes.substr(pos + name_size + 1, value_size)));
    pos += name_size + 1 + value_size + 1;
  }
  return headers;
}

}  // namespace wasmlet::sdk

// ---- exports -----------------------------------------------------------------------------------

using wasmlet::sdk::registry;

namespace {
wasmlet::sdk::StreamContext* Stream(uint32_t id) {
  auto it = registry().streams.find(id);
  return it == registry().streams.end() ? nullptr : it->second.get();
}
wasmlet::sdk::RootContext* Root(uint32_t id) {
  auto it = registry().roots.find(id);
  return it == registry().roots.end() ? nullptr : it->second.get();
}
uint32_t A(wasmlet::sdk::Action action) { return static_cast<uint32_t>(action); }
// Notes the context a callback concerns, so that HttpCall knows who is calling.
uint32_t Enter(uint32_t id) {
  registry().current_context = id;
  return id;
}
// The gRPC callbacks: to the context that made the call (as the host's effective context), or to
// the root `root_id` when that stream is gone. `last` says whether the call ends with this one.
template <typename Deliver>
void DeliverGrpc(uint32_t root_id, uint32_t token, bool last, Deliver deliver) {
  auto& r = registry();
  auto call = r.grpc_calls.find(token);
  if (call == r.grpc_calls.end()) {  // unknown, cancelled, or already over
    ++wasmlet::sdk::dropped_grpc_callbacks;
    return;
  }
  const uint32_t caller = call->second.caller;
  if (last || call->second.unary) r.grpc_calls.erase(call);
  if (auto* s = Stream(caller)) {
    if (proxy_set_effective_context(caller) == PROXY_OK) {
      Enter(caller);
      deliver(s);
      return;
    }
    // The host no longer knows the stream: it is gone, as far as the call is concerned.
  }
  auto* root = Root(caller);
  if (!root) root = Root(root_id);
  if (!root) {
    ++wasmlet::sdk::dropped_grpc_callbacks;
    return;
  }
  proxy_set_effective_context(root->id());
  Enter(root->id());
  deliver(root);
}
}  // namespace

extern "C" {

WASMLET_EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1() {}

WASMLET_EXPORT(proxy_on_memory_allocate) void* proxy_on_memory_allocate(size_t size) { return malloc(size); }

WASMLET_EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t id, uint32_t parent_id) {
  auto& r = registry();
  Enter(id);
  if (parent_id == 0) {
    if (r.root_factory) r.roots[id] = r.root_factory(id);
  } else if (r.stream_factory) {
    r.streams[id] = r.stream_factory(id, Root(parent_id));
  }
}

WASMLET_EXPORT(proxy_on_vm_start) uint32_t proxy_on_vm_start(uint32_t id, uint32_t size) {
  auto* root = Root(Enter(id));
  return root ? root->OnVmStart(size) : 1;
}

WASMLET_EXPORT(proxy_on_configure) uint32_t proxy_on_configure(uint32_t id, uint32_t size) {
  auto* root = Root(Enter(id));
  return root ? root->OnConfigure(size) : 1;
}

WASMLET_EXPORT(proxy_on_tick) void proxy_on_tick(uint32_t id) {
  if (auto* root = Root(Enter(id))) root->OnTick();
}

WASMLET_EXPORT(proxy_on_queue_ready) void proxy_on_queue_ready(uint32_t id, uint32_t queue_id) {
  if (auto* root = Root(Enter(id))) root->OnQueueReady(queue_id);
}

WASMLET_EXPORT(proxy_on_request_headers)
uint32_t proxy_on_request_headers(uint32_t id, uint32_t n, uint32_t eos) {
  auto* s = Stream(Enter(id));
  return s ? A(s->OnRequestHeaders(n, eos != 0)) : 0;
}
WASMLET_EXPORT(proxy_on_request_body)
uint32_t proxy_on_request_body(uint32_t id, uint32_t size, uint32_t eos) {
  auto* s = Stream(Enter(id));
  return s ? A(s->OnRequestBody(size, eos != 0)) : 0;
}
WASMLET_EXPORT(proxy_on_request_trailers) uint32_t proxy_on_request_trailers(uint32_t id, uint32_t n) {
  auto* s = Stream(Enter(id));
  return s ? A(s->OnRequestTrailers(n)) : 0;
}
WASMLET_EXPORT(proxy_on_response_headers)
uint32_t proxy_on_response_headers(uint32_t id, uint32_t n, uint32_t eos) {
  auto* s = Stream(Enter(id));
  return s ? A(s->OnResponseHeaders(n, eos != 0)) : 0;
}
WASMLET_EXPORT(proxy_on_response_body)
uint32_t proxy_on_response_body(uint32_t id, uint32_t size, uint32_t eos) {
  auto* s = Stream(Enter(id));
  return s ? A(s->OnResponseBody(size, eos != 0)) : 0;
}
WASMLET_EXPORT(proxy_on_response_trailers) uint32_t proxy_on_response_trailers(uint32_t id, uint32_t n) {
  auto* s = Stream(Enter(id));
  return s ? A(s->OnResponseTrailers(n)) : 0;
}

WASMLET_EXPORT(proxy_on_done) uint32_t proxy_on_done(uint32_t id) {
  if (auto* s = Stream(Enter(id))) {
    s->OnDone();
    return 1;
  }
  auto* root = Root(id);
  return root ? root->OnDone() : 1;
}

WASMLET_EXPORT(proxy_on_log) void proxy_on_log(uint32_t id) {
  if (auto* s = Stream(Enter(id))) s->OnLog();
}

WASMLET_EXPORT(proxy_on_http_call_response)
void proxy_on_http_call_response(uint32_t root_id, uint32_t token, uint32_t headers, uint32_t body_size,
                                 uint32_t trailers) {
  auto& r = registry();
  auto call = r.http_calls.find(token);
  if (call == r.http_calls.end()) {  // unknown, or its caller was deleted
    ++wasmlet::sdk::dropped_http_call_responses;
    return;
  }
  const uint32_t caller = call->second;
  r.http_calls.erase(call);
  // The host reports on the root; the caller's hostcalls must act on the caller's context.
  if (auto* s = Stream(caller)) {
    if (proxy_set_effective_context(caller) != PROXY_OK) {
      // Its hostcalls would act on the root: ContinueRequest would resume nothing.
      wasmlet::sdk::Log(
          wasmlet::sdk::LogLevel::kWarn,
          "http call answer dropped: the host refused to switch to stream " + std::to_string(caller));
      ++wasmlet::sdk::dropped_http_call_responses;
      return;
    }
    Enter(caller);
    s->OnHttpCallResponse(token, headers, body_size, trailers);
  } else if (auto* root = Root(caller)) {
    proxy_set_effective_context(caller);
    Enter(caller);
    root->OnHttpCallResponse(token, headers, body_size, trailers);
  } else {
    ++wasmlet::sdk::dropped_http_call_responses;
  }
}

WASMLET_EXPORT(proxy_on_grpc_receive_initial_metadata)
void proxy_on_grpc_receive_initial_metadata(uint32_t root_id, uint32_t token, uint32_t headers) {
  DeliverGrpc(root_id, token, false, [&](auto* c) { c->OnGrpcReceiveInitialMetadata(token, headers); });
}

WASMLET_EXPORT(proxy_on_grpc_receive)
void proxy_on_grpc_receive(uint32_t root_id, uint32_t token, uint32_t message_size) {
  DeliverGrpc(root_id, token, false, [&](auto* c) { c->OnGrpcReceive(token, message_size); });
}

WASMLET_EXPORT(proxy_on_grpc_receive_trailing_metadata)
void proxy_on_grpc_receive_trailing_metadata(uint32_t root_id, uint32_t token, uint32_t trailers) {
  DeliverGrpc(root_id, token, false, [&](auto* c) { c->OnGrpcReceiveTrailingMetadata(token, trailers); });
}

WASMLET_EXPORT(proxy_on_grpc_close)
void proxy_on_grpc_close(uint32_t root_id, uint32_t token, uint32_t status_code) {
  DeliverGrpc(root_id, token, true, [&](auto* c) { c->OnGrpcClose(token, status_code); });
}

WASMLET_EXPORT(proxy_on_delete) void proxy_on_delete(uint32_t id) {
  auto& r = registry();
  const bool stream = r.streams.erase(id) > 0;
  r.roots.erase(id);
  // A later context may reuse the id: its answers must not reach the newcomer.
  std::erase_if(r.http_calls, [id](const auto& call) { return call.second == id; });
  // A stream's gRPC calls end with it (the host cancels them), and their close goes to the root;
  // a root's calls are forgotten.
  if (stream) {
    for (auto& [token, call] : r.grpc_calls) {
      if (call.caller == id) call.caller = wasmlet::sdk::kRootCaller;
    }
  } else {
    std::erase_if(r.grpc_calls, [id](const auto& call) { return call.second.caller == id; });
  }
}

}  // extern "C"
