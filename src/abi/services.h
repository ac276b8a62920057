// What the ABI layer needs from the rest of the host: where guest logs go, the state stores
// behind proxy_get_state, the function invoker behind proxy_invoke_service, and the
// process-wide shared data, queues and metrics. The server implements these; tests use
// doubles.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "abi/abi.h"
#include "common/status.h"

namespace wasmlet::abi {

class SharedState;

// Layotto's state API: proxy_get_state(store, key).
class StateStore {
 public:
  virtual ~StateStore() = default;
  // The value of `key` in the store named `store`; an empty string when the key is absent.
  // An error for an unknown store or a store failure (the guest gets INTERNAL_FAILURE).
  virtual Result<std::string> GetState(std::string_view store, std::string_view key) = 0;
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

// Receives every line a guest logs (proxy_log, WASI stdout/stderr), tagged with the plugin.
using LogSink = std::function<void(LogLevel level, std::string_view plugin, std::string_view message)>;

// The default sink: the process log (spdlog).
LogSink DefaultLogSink();

struct HostServices {
  LogSink log = DefaultLogSink();
  LogLevel log_level = LogLevel::kInfo;      // proxy_get_log_level; lower levels are dropped
  std::shared_ptr<SharedState> shared;       // required
  std::shared_ptr<StateStore> state;         // optional: without it proxy_get_state fails (10)
  std::shared_ptr<FunctionInvoker> invoker;  // optional: likewise for proxy_invoke_service
};

}  // namespace wasmlet::abi
