// What the ABI layer needs from the rest of the host: where guest logs go, the state stores
// behind proxy_get_state, the function invoker behind proxy_invoke_service, and the
// process-wide shared data, queues and metrics. The server implements these; tests use
// doubles.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "abi/abi.h"
#include "abi/http.h"
#include "common/status.h"

namespace wasmlet::abi {

class SharedState;

// The state API: Layotto's proxy_get_state(store, key), and wasmlet's calls that read items
// with their ETags and write them (docs/proxy-wasm-abi.md §11.5).
class StateStore {
 public:
  // An item and its ETag (a version the store gives it; never empty).
  struct Item {
    std::string value;
    std::string etag;
  };
  // One save or delete. With an ETag it applies only while the item is at that version; a
  // first-write save without one only creates.
  struct Write {
    bool remove = false;
    std::string key;
    std::string value;
    std::optional<std::string> etag;
    bool first_write = false;
    std::chrono::seconds ttl{0};  // a save's expiry (0: never)
  };

  virtual ~StateStore() = default;
  // The value of `key` in the store named `store`; an empty string when the key is absent.
  // An error for an unknown store or a store failure (the guest gets INTERNAL_FAILURE).
  virtual Result<std::string> GetState(std::string_view store, std::string_view key) = 0;
  // The items at `keys`, in their order (nullopt: none). Errors: NotFound for a store the
  // caller may not use, Unavailable when the store cannot be reached, Internal otherwise.
  virtual Result<std::vector<std::optional<Item>>> GetItems(std::string_view store,
                                                            const std::vector<std::string>& keys) {
    (void)store, (void)keys;
    return Unimplemented("this host has no state writes");
  }
  // Applies all of `writes` or none; FailedPrecondition when a condition fails (naming the
  // key), and the errors of GetItems.
  virtual Status Apply(std::string_view store, const std::vector<Write>& writes) {
    (void)store, (void)writes;
    return Unimplemented("this host has no state writes");
  }
};

// Layotto's lock API, for wasmlet's proxy_try_lock and proxy_unlock (docs/proxy-wasm-abi.md
// §11.6). Errors: NotFound for a store the config does not have, Unavailable when the store
// cannot be reached, Internal otherwise.
class Locks {
 public:
  // As Layotto's UnlockResponse says what happened.
  enum class Unlocked : uint32_t { kSuccess = 0, kLockDoesNotExist = 1, kLockBelongsToOthers = 2 };
  virtual ~Locks() = default;
  // true when `owner` took `resource`; false when someone holds it.
  virtual Result<bool> TryLock(std::string_view store, std::string_view resource, std::string_view owner,
                               std::chrono::seconds expire) = 0;
  virtual Result<Unlocked> Unlock(std::string_view store, std::string_view resource,
                                  std::string_view owner) = 0;
  // Renews `owner`'s lease of `resource` for `expire` from now (the runtime API's
  // LockKeepAlive); what it found, as Unlock says it (kSuccess: renewed).
  virtual Result<Unlocked> KeepAlive(std::string_view store, std::string_view resource, std::string_view owner,
                                     std::chrono::seconds expire) {
    (void)store, (void)resource, (void)owner, (void)expire;
    return Unimplemented("this host cannot renew locks");
  }
};

// Layotto's sequencer API, for wasmlet's proxy_get_next_id: ids that strictly increase per key.
// Errors as for Locks.
class Sequencers {
 public:
  virtual ~Sequencers() = default;
  virtual Result<uint64_t> NextId(std::string_view store, std::string_view key) = 0;
};

// Layotto's secret API, for wasmlet's proxy_get_secret and proxy_get_bulk_secret
// (docs/proxy-wasm-abi.md §11.7). A secret's data are name/value pairs. Errors: NotFound for a
// store the config does not have or a secret it does not hold, Internal otherwise.
class Secrets {
 public:
  virtual ~Secrets() = default;
  virtual Result<HeaderList> Get(std::string_view store, std::string_view name) = 0;
  virtual Result<std::vector<std::pair<std::string, HeaderList>>> GetAll(std::string_view store) = 0;
};

// Layotto's configuration API, for wasmlet's proxy_get_configuration_items (docs/proxy-wasm-abi.md
// §11.8): the (key, content) items of the keys asked that exist, in their order. Errors as for
// Locks.
class Configuration {
 public:
  virtual ~Configuration() = default;
  virtual Result<HeaderList> Get(std::string_view store, const std::vector<std::string>& keys) = 0;
  // Sets each (key, content) item; an empty content removes the item (the runtime API's
  // SaveConfiguration).
  virtual Status Save(std::string_view store, const HeaderList& items) {
    (void)store, (void)items;
    return Unimplemented("this host cannot change configuration");
  }
  // Removes the items at `keys` (DeleteConfiguration); a key that is not there is not an error.
  virtual Status Delete(std::string_view store, const std::vector<std::string>& keys) {
    (void)store, (void)keys;
    return Unimplemented("this host cannot change configuration");
  }
};

// Layotto's pub/sub API, for wasmlet's proxy_publish_event (docs/proxy-wasm-abi.md §11.9): the
// id the store gave the message. Errors as for Locks.
class Publisher {
 public:
  virtual ~Publisher() = default;
  virtual Result<std::string> Publish(std::string_view pubsub, std::string_view topic, std::string_view data,
                                      const HeaderList& metadata) = 0;
};

// Layotto's RPC API: proxy_invoke_service(id, method, param).
class FunctionInvoker {
 public:
  virtual ~FunctionInvoker() = default;
  struct Call {
    std::string_view target_id;  // the function to call
    std::string_view method;     // request URI; "/" when empty
    std::string_view param;      // request body
    std::string_view caller_id;  // route id of the calling function (to refuse self-calls)
  };
  // The callee's response body (status 200); an error otherwise.
  virtual Result<std::string> Invoke(const Call& call) = 0;
};

// proxy_http_call: where a guest's outbound HTTP calls go (the clusters of the config, or an
// address taken from a URL).
class OutboundHttp {
 public:
  virtual ~OutboundHttp() = default;
  virtual bool HasCluster(std::string_view cluster) = 0;
  using Done = std::function<void(HttpResponse)>;
  using Cancel = std::function<void()>;
  // Starts a call from the calling thread (an event loop's): to the cluster named `target`, or
  // with `to_address`, to the "host:port" `target`. `done` runs later on this thread, never
  // before Start returned, with the answer; an answer with `local` set means the call failed
  // (no connection, timeout, broken answer) and says why in `details`. The Cancel stops it:
  // `done` is then never called.
  virtual Result<Cancel> Start(std::string_view target, bool to_address, HttpRequest request,
                               std::chrono::milliseconds timeout, Done done) = 0;
};

// proxy_grpc_call and proxy_grpc_stream: gRPC over HTTP/2 (cleartext) to a cluster's hosts.
// Messages are the bytes the guest gives (already serialized); metadata are header pairs.
class OutboundGrpc {
 public:
  virtual ~OutboundGrpc() = default;
  virtual bool HasCluster(std::string_view cluster) = 0;

  struct Request {
    std::string cluster;
    std::string service;  // "package.Service"
    std::string method;
    HeaderList metadata;
    std::chrono::milliseconds timeout{0};  // the grpc-timeout sent, and the deadline; 0: none
  };
  // What the call reports, in this order: initial metadata at most once, any number of
  // messages, then either trailing metadata and close, or close alone. They run on the thread
  // that started the call, never before Start returned, and none after Cancel or close.
  struct Events {
    std::function<void(HeaderList)> initial_metadata;
    std::function<void(std::string)> message;
    std::function<void(HeaderList)> trailing_metadata;
    // The gRPC status (0 OK) and its message. Failures made here (no connection, deadline,
    // a broken answer) carry the matching gRPC code and a message naming the cluster and host.
    std::function<void(uint32_t status, std::string message)> close;
  };
  class Call {
   public:
    virtual ~Call() = default;
    // Queues one message; with `end_of_stream` the request side then ends (half-close). An
    // error once the request side has ended, or when too many bytes wait to be sent.
    virtual Status Send(std::string message, bool end_of_stream) = 0;
    // Ends the request side without a message.
    virtual Status CloseSend() = 0;
    // Resets the stream (the server sees CANCELLED); no event follows. Harmless when over.
    virtual void Cancel() = 0;
  };
  // From an event loop's thread. An error only when the call cannot start at all (no such
  // cluster, not on a loop); every other failure arrives as `close`.
  virtual Result<std::shared_ptr<Call>> Start(Request request, Events events) = 0;
};

// Receives every line a guest logs (proxy_log, WASI stdout/stderr), tagged with the plugin.
using LogSink = std::function<void(LogLevel level, std::string_view plugin, std::string_view message)>;

// The default sink: the process log (spdlog).
LogSink DefaultLogSink();

struct HostServices {
  LogSink log = DefaultLogSink();
  LogLevel log_level = LogLevel::kInfo;          // proxy_get_log_level; lower levels are dropped
  std::shared_ptr<SharedState> shared;           // required
  std::shared_ptr<StateStore> state;             // optional: without it proxy_get_state fails (10)
  std::shared_ptr<Locks> locks;                  // optional: without it the lock calls fail (10)
  std::shared_ptr<Sequencers> sequencers;        // optional: without it proxy_get_next_id fails (10)
  std::shared_ptr<Secrets> secrets;              // optional: without it the secret calls fail (10)
  std::shared_ptr<Publisher> publisher;          // optional: likewise for proxy_publish_event
  std::shared_ptr<Configuration> configuration;  // optional: likewise for proxy_get_configuration_items
  std::shared_ptr<FunctionInvoker> invoker;      // optional: likewise for proxy_invoke_service
  std::shared_ptr<OutboundHttp> outbound;        // optional: without it proxy_http_call answers BAD_ARGUMENT
  std::shared_ptr<OutboundGrpc> grpc;            // optional: without it gRPC calls answer INTERNAL_FAILURE
};

}  // namespace wasmlet::abi
