// wasmlet guest SDK for C++: write a Proxy-Wasm plugin or a Layotto-style function as two
// classes, a RootContext (one per plugin) and a StreamContext (one per request).
//
//   class MyStream : public wasmlet::sdk::StreamContext {
//    public:
//     using StreamContext::StreamContext;
//     wasmlet::sdk::Action OnRequestBody(size_t size, bool end_of_stream) override {
//       auto body = wasmlet::sdk::GetBuffer(wasmlet::sdk::BufferType::kHttpRequestBody);
//       wasmlet::sdk::AppendBuffer(wasmlet::sdk::BufferType::kHttpResponseBody, "hello " +
//       body.value_or("")); return wasmlet::sdk::Action::kContinue;
//     }
//   };
//   WASMLET_REGISTER_PLUGIN(wasmlet::sdk::RootContext, MyStream)
//   WASMLET_FUNCTION_ID("id_1")   // optional: route requests with header `id: id_1` here
//
// Build with wasmlet_add_guest(NAME SDK SOURCES my.cc) (cmake/WasmGuest.cmake), or with
// sdk/cmake/wasm32-wasi.cmake as the toolchain file and sdk/src/sdk.cc among the sources.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wasmlet/abi.h"

namespace wasmlet::sdk {

enum class Status : uint32_t {
  kOk = 0,
  kNotFound = 1,
  kBadArgument = 2,
  kSerializationFailure = 3,
  kParseFailure = 4,
  kInvalidMemoryAccess = 6,
  kEmpty = 7,
  kCasMismatch = 8,
  kInternalFailure = 10,
  kBrokenConnection = 11,
  kUnimplemented = 12,
};
enum class Action : uint32_t { kContinue = 0, kPause = 1 };
enum class LogLevel : uint32_t { kTrace, kDebug, kInfo, kWarn, kError, kCritical };
enum class BufferType : uint32_t {
  kHttpRequestBody = 0,
  kHttpResponseBody = 1,
  kHttpCallResponseBody = 4,  // readable in OnHttpCallResponse
  kGrpcReceiveBuffer = 5,     // readable in OnGrpcReceive: the message received
  kVmConfiguration = 6,
  kPluginConfiguration = 7,
  kCallData = 8,
};
enum class MapType : uint32_t {
  kRequestHeaders = 0,
  kRequestTrailers = 1,
  kResponseHeaders = 2,
  kResponseTrailers = 3,
  kGrpcReceiveInitialMetadata = 4,   // readable in OnGrpcReceiveInitialMetadata
  kGrpcReceiveTrailingMetadata = 5,  // readable in OnGrpcReceiveTrailingMetadata
  kHttpCallResponseHeaders = 6,      // readable in OnHttpCallResponse
  kHttpCallResponseTrailers = 7,
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// Start and size values that mean "to the end" for SetBuffer.
inline constexpr size_t kToEnd = 0x7FFFFFFF;

// ---- host calls --------------------------------------------------------------------------------

void Log(LogLevel level, std::string_view message);
uint64_t NowNanoseconds();

std::optional<std::string> GetBuffer(BufferType type, size_t start = 0, size_t max_size = kToEnd);
Status SetBuffer(BufferType type, size_t start, size_t size, std::string_view data);  // a splice
inline Status AppendBuffer(BufferType type, std::string_view data) {
  return SetBuffer(type, kToEnd, 0, data);
}
inline Status PrependBuffer(BufferType type, std::string_view data) { return SetBuffer(type, 0, 0, data); }
inline Status ReplaceBuffer(BufferType type, std::string_view data) {
  return SetBuffer(type, 0, kToEnd, data);
}

std::optional<std::string> GetHeader(MapType type, std::string_view name);
Headers GetHeaders(MapType type);
Status SetHeaders(MapType type, const Headers& headers);
Status AddHeader(MapType type, std::string_view name, std::string_view value);
Status ReplaceHeader(MapType type, std::string_view name, std::string_view value);
Status RemoveHeader(MapType type, std::string_view name);

// Answers the request directly; the plugin's callback should then return kPause.
Status SendLocalResponse(uint32_t status, std::string_view body, const Headers& headers = {},
                         std::string_view details = {});
// Resume a stream paused in a request callback, or in a response callback.
Status ContinueRequest();
Status ContinueResponse();

// A property by path, e.g. GetProperty({"request", "path"}); nullopt when unknown.
std::optional<std::string> GetProperty(std::initializer_list<std::string_view> path);
Status SetProperty(std::initializer_list<std::string_view> path, std::string_view value);

struct SharedValue {
  std::string value;
  uint32_t cas = 0;
};
std::optional<SharedValue> GetSharedData(std::string_view key);
Status SetSharedData(std::string_view key, std::string_view value, uint32_t cas = 0);

std::optional<uint32_t> RegisterQueue(std::string_view name);
std::optional<uint32_t> ResolveQueue(std::string_view vm_id, std::string_view name);
Status Enqueue(uint32_t queue_id, std::string_view value);
// kOk with the value, kEmpty when the queue is empty, kNotFound for an unknown queue.
Status Dequeue(uint32_t queue_id, std::string* value);

Status SetTickPeriodMilliseconds(uint32_t ms);

// Starts an asynchronous HTTP request to `upstream`, a cluster name or a URL such as
// http://127.0.0.1:8080/x. `headers` needs :method, :path and :authority unless the upstream is
// a URL the host can derive them from. Returns the call's token, or nullopt when the host
// refused (the host's answer, e.g. kBadArgument for an unknown upstream, goes to `*status`).
// The answer arrives later as OnHttpCallResponse on the context that made the call, root or
// stream; if that context is gone by then, the answer is dropped (see DroppedHttpCallResponses).
std::optional<uint32_t> HttpCall(std::string_view upstream, const Headers& headers, std::string_view body,
                                 const Headers& trailers, uint32_t timeout_ms, Status* status = nullptr);
// Inside OnHttpCallResponse: the answer's `:status` header as a number, 0 when the call failed
// (headers == 0) or the header is absent or not a number.
uint32_t GetHttpCallStatus();
// The host's status of the callout being reported (proxy_get_status); nullopt if it has none.
std::optional<uint32_t> GetStatusCode();
// How many callout answers this module dropped: unknown tokens, or tokens whose context was gone.
uint32_t DroppedHttpCallResponses();

// gRPC calls to `cluster` (a cluster name; the host speaks gRPC over cleartext HTTP/2). Messages
// are bytes the guest has serialized itself; `metadata` are sent as request headers. Both return
// the call's token, or nullopt when the host refused (its answer goes to `*status`, e.g.
// kParseFailure for an unknown cluster or an empty service or method).
//
// The events arrive on the context that made the call, root or stream (the SDK switches the
// host's effective context to it); once that context is gone they go to the root context. A
// unary call (GrpcCall) reports exactly once: OnGrpcReceive with the answer when it succeeded,
// else OnGrpcClose with the gRPC status. A stream (GrpcStream) reports its initial metadata,
// each message and its trailing metadata as they arrive, then OnGrpcClose (a stream that failed
// may report only that).
std::optional<uint32_t> GrpcCall(std::string_view cluster, std::string_view service, std::string_view method,
                                 const Headers& metadata, std::string_view message, uint32_t timeout_ms,
                                 Status* status = nullptr);
std::optional<uint32_t> GrpcStream(std::string_view cluster, std::string_view service,
                                   std::string_view method, const Headers& metadata,
                                   Status* status = nullptr);
// Sends one message on a stream; with `end_of_stream` the sending side ends (half-close).
// kBadArgument for a unary call's token, kNotFound for an unknown one.
Status GrpcSend(uint32_t token, std::string_view message, bool end_of_stream);
// Ends a stream's sending side without a message; its answers still arrive.
Status GrpcClose(uint32_t token);
// Cancels a call: no callback follows for it.
Status GrpcCancel(uint32_t token);
// Inside OnGrpcClose: the gRPC status code and message; {2 (UNKNOWN), ""} if the host has none.
std::pair<uint32_t, std::string> GetGrpcStatus();
// How many gRPC callbacks this module dropped: unknown (e.g. cancelled) tokens, or no context.
uint32_t DroppedGrpcCallbacks();

// Layotto extensions. On failure the Status is kInternalFailure (or kInvalidMemoryAccess).
Status GetState(std::string_view store, std::string_view key, std::string* value);
Status InvokeService(std::string_view id, std::string_view method, std::string_view param,
                     std::string* result);

// wasmlet's state calls. Every item has an ETag, a version the store changes with each write.
// A write that names an ETag applies only while the item is still at it; otherwise it answers
// kCasMismatch and changes nothing. Other answers: kNotFound for a store this function may not
// use, kBrokenConnection when the store cannot be reached, kBadArgument for a malformed call,
// kInternalFailure for other store errors. Why a call failed is in the property
// `wasmlet.last_error`.
struct StateItem {
  std::string value;
  std::string etag;  // empty: there is no item
  bool exists() const { return !etag.empty(); }
};
struct StateSaveOptions {
  std::string etag;          // the version this save expects; empty: none
  bool first_write = false;  // without an ETag, only create: kCasMismatch when the key exists
  uint32_t ttl_seconds = 0;  // the item expires after this long; 0: never
};
Status GetStateItem(std::string_view store, std::string_view key, StateItem* item);
// The items of `keys`, in their order (an absent one has an empty ETag).
Status GetBulkState(std::string_view store, const std::vector<std::string>& keys,
                    std::vector<StateItem>* items);
Status SaveState(std::string_view store, std::string_view key, std::string_view value,
                 const StateSaveOptions& options = {});
// Deletes the item (with an ETag: only while it is at that version). No item is not an error.
Status DeleteState(std::string_view store, std::string_view key, std::string_view etag = {});
// Saves and deletes applied together or not at all.
class StateTransaction {
 public:
  StateTransaction& Save(std::string_view key, std::string_view value, const StateSaveOptions& options = {});
  StateTransaction& Delete(std::string_view key, std::string_view etag = {});
  Status Commit(std::string_view store) const;

 private:
  Headers pairs_;  // two pairs per operation (docs/proxy-wasm-abi.md 11.5)
};

// Locks (Layotto's lock API): TryLock sets `*taken` when `owner` now holds `resource` for
// `expire_seconds` (> 0); false when someone holds it, its owner included (not re-entrant).
// Unlock releases it if `owner` holds it, and says what it found. Statuses as for state calls.
enum class UnlockResult : uint32_t { kSuccess = 0, kLockDoesNotExist = 1, kLockBelongsToOthers = 2 };
Status TryLock(std::string_view store, std::string_view resource, std::string_view owner,
               uint32_t expire_seconds, bool* taken);
Status Unlock(std::string_view store, std::string_view resource, std::string_view owner,
              UnlockResult* result);
// Sequencers (Layotto's sequencer API): the next id of `key`, larger than any given before.
Status GetNextId(std::string_view store, std::string_view key, uint64_t* id);

// Pub/sub (Layotto's pub/sub API): appends `data` to `topic` of the pub/sub `pubsub`, with
// `metadata` (subscribers get it as request headers).
Status PublishEvent(std::string_view pubsub, std::string_view topic, std::string_view data,
                    const Headers& metadata = {});

// Secrets (Layotto's secret API): the data of secret `name` (for the local stores one pair,
// the name and its value); kNotFound when the store or the secret does not exist.
Status GetSecret(std::string_view store, std::string_view name, Headers* data);
// Every secret of `store`, by name, with its data.
Status GetBulkSecret(std::string_view store, std::vector<std::pair<std::string, Headers>>* secrets);

// Configuration (Layotto's configuration API): the (key, content) items of `keys` that the
// store has, in the order asked.
Status GetConfigurationItems(std::string_view store, const std::vector<std::string>& keys, Headers* items);

// The value of `name` in a query string "a=1&name=book1" (as Layotto hands a GET's query over
// as the body); empty when it is not there. Not percent-decoded.
std::string QueryParam(std::string_view query, std::string_view name);

// Pairs wire format (ABI §6.1), for code that talks to the raw ABI.
std::string SerializeHeaders(const Headers& headers);
Headers ParseHeaders(std::string_view bytes);

// ---- contexts ----------------------------------------------------------------------------------

class RootContext {
 public:
  explicit RootContext(uint32_t id) : id_(id) {}
  virtual ~RootContext() = default;
  uint32_t id() const { return id_; }

  virtual bool OnVmStart(size_t vm_configuration_size) { return true; }
  virtual bool OnConfigure(size_t plugin_configuration_size) { return true; }
  virtual void OnTick() {}
  virtual void OnQueueReady(uint32_t queue_id) {}
  // The answer to an HttpCall this root made; `headers` == 0 means the call failed.
  virtual void OnHttpCallResponse(uint32_t token, uint32_t headers, size_t body_size, uint32_t trailers) {}
  // The events of a gRPC call this root made, or of one whose stream has ended (see GrpcCall).
  virtual void OnGrpcReceiveInitialMetadata(uint32_t token, uint32_t headers) {}
  virtual void OnGrpcReceive(uint32_t token, size_t message_size) {}
  virtual void OnGrpcReceiveTrailingMetadata(uint32_t token, uint32_t trailers) {}
  virtual void OnGrpcClose(uint32_t token, uint32_t status_code) {}
  virtual bool OnDone() { return true; }

 private:
  uint32_t id_;
};

class StreamContext {
 public:
  StreamContext(uint32_t id, RootContext* root) : id_(id), root_(root) {}
  virtual ~StreamContext() = default;
  uint32_t id() const { return id_; }
  RootContext* root() const { return root_; }

  virtual Action OnRequestHeaders(uint32_t headers, bool end_of_stream) { return Action::kContinue; }
  virtual Action OnRequestBody(size_t body_size, bool end_of_stream) { return Action::kContinue; }
  virtual Action OnRequestTrailers(uint32_t trailers) { return Action::kContinue; }
  virtual Action OnResponseHeaders(uint32_t headers, bool end_of_stream) { return Action::kContinue; }
  virtual Action OnResponseBody(size_t body_size, bool end_of_stream) { return Action::kContinue; }
  virtual Action OnResponseTrailers(uint32_t trailers) { return Action::kContinue; }
  // The answer to an HttpCall this stream made; `headers` == 0 means the call failed. A stream
  // that paused to wait for it resumes with ContinueRequest / ContinueResponse.
  virtual void OnHttpCallResponse(uint32_t token, uint32_t headers, size_t body_size, uint32_t trailers) {}
  // The events of a gRPC call this stream made (see GrpcCall); a stream that paused to wait for
  // them resumes with ContinueRequest / ContinueResponse. When the stream ends first, its calls
  // go on and their events go to the root.
  virtual void OnGrpcReceiveInitialMetadata(uint32_t token, uint32_t headers) {}
  virtual void OnGrpcReceive(uint32_t token, size_t message_size) {}
  virtual void OnGrpcReceiveTrailingMetadata(uint32_t token, uint32_t trailers) {}
  virtual void OnGrpcClose(uint32_t token, uint32_t status_code) {}
  virtual void OnDone() {}
  virtual void OnLog() {}

 private:
  uint32_t id_;
  RootContext* root_;
};

// ---- registration ------------------------------------------------------------------------------

using RootFactory = std::unique_ptr<RootContext> (*)(uint32_t id);
using StreamFactory = std::unique_ptr<StreamContext> (*)(uint32_t id, RootContext* root);
struct Registrar {
  Registrar(RootFactory root, StreamFactory stream);
};
// The id this module reports from proxy_get_id (Layotto routing); see WASMLET_FUNCTION_ID.
void ReportFunctionId(std::string_view id);

}  // namespace wasmlet::sdk

// Registers the plugin's context classes (once per module).
#define WASMLET_REGISTER_PLUGIN(RootClass, StreamClass)                                                      \
  static ::wasmlet::sdk::Registrar wasmlet_registrar_(                                                       \
      [](uint32_t id) -> std::unique_ptr<::wasmlet::sdk::RootContext> {                                      \
        return std::make_unique<RootClass>(id);                                                              \
      },                                                                                                     \
      [](uint32_t id, ::wasmlet::sdk::RootContext* root) -> std::unique_ptr<::wasmlet::sdk::StreamContext> { \
        return std::make_unique<StreamClass>(id, root);                                                      \
      });

// Exports proxy_get_id, so that requests with header `id: ID` are routed to this module.
#define WASMLET_FUNCTION_ID(ID) \
  extern "C" WASMLET_EXPORT(proxy_get_id) void proxy_get_id() { ::wasmlet::sdk::ReportFunctionId(ID); }
