// proxy_invoke_service: a call from one function to another, by route id. In process when the
// config names no remote (wasmlet.rpc_address / Layotto's rpcs channel), over HTTP otherwise.
#pragma once

#include <chrono>
#include <string>

#include "abi/services.h"
#include "server/functions/function_registry.h"

namespace wasmlet::server {

class Invoker : public abi::FunctionInvoker {
 public:
  Invoker(std::string remote, std::chrono::milliseconds timeout)
      : remote_(std::move(remote)), timeout_(timeout) {}
  // The registry is made after the host services that hold this invoker; set before any call.
  void set_functions(FunctionRegistry* functions) { functions_ = functions; }

  // The callee's body when it answers 200; an error naming it and its answer otherwise.
  Result<std::string> Invoke(const Call& call) override;
  // Runs `request` on the function `target_id` where proxy_invoke_service would (in process, or
  // on the remote node), as the runtime API's InvokeService does: the whole answer, whatever
  // its status; an error only when no answer came (no such function, timeout, unreachable).
  Result<abi::HttpResponse> Forward(const std::string& target_id, abi::HttpRequest request);

 private:
  Result<abi::HttpResponse> Remote(const abi::HttpRequest& request);

  FunctionRegistry* functions_ = nullptr;
  std::string remote_;
  std::chrono::milliseconds timeout_;
};

}  // namespace wasmlet::server
