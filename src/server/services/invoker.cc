#include "server/services/invoker.h"

#include "common/address.h"
#include "common/http_client.h"
#include "common/text.h"
#include "server/functions/function_pool.h"

namespace wasmlet::server {
namespace {

// A request as Layotto builds it for proxy_invoke_service (ABI §7.4).
abi::HttpRequest InvokeRequest(const abi::FunctionInvoker::Call& call) {
  abi::HttpRequest request;
  request.method = "GET";
  request.path = call.method.empty() ? "/" : std::string(call.method);
  if (request.path.front() != '/') request.path.insert(0, "/");
  request.authority = "localhost";
  request.headers = {{"id", std::string(call.target_id)}};
  request.body = std::string(call.param);
  return request;
}

Result<std::string> BodyOf200(const std::string& target, Result<abi::HttpResponse> response) {
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    std::string_view body = response->body;
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
    return Internal("function '" + Printable(target, 64) + "' answered " + std::to_string(response->status) +
                    ": " + Printable(body, 1024));
  }
  return std::move(response->body);
}

}  // namespace

Result<std::string> Invoker::Invoke(const Call& call) {
  const std::string target(call.target_id);
  if (remote_.empty()) {
    if (call.target_id == call.caller_id) {
      return FailedPrecondition("function '" + target + "' called itself; that would wait for its own instance");
    }
    return BodyOf200(target, functions_->InvokeInProcess(target, InvokeRequest(call)));
  }
  return BodyOf200(target, Remote(InvokeRequest(call)));
}

Result<abi::HttpResponse> Invoker::Forward(const std::string& target_id, abi::HttpRequest request) {
  if (remote_.empty()) return functions_->InvokeInProcess(target_id, std::move(request));
  return Remote(request);
}

Result<abi::HttpResponse> Invoker::Remote(const abi::HttpRequest& request) {
  HttpClientRequest out;
  out.url = HttpBaseUrl(remote_) + request.path;
  out.body = request.body;
  out.timeout = timeout_;
  out.headers = request.headers;
  out.headers.emplace_back("Host", request.authority);
  auto answer = [&] {
    BlockingCall blocked;
    return HttpFetch(out);
  }();
  if (!answer.ok()) return Status(answer.status().code(), "calling " + remote_ + ": " + answer.status().message());
  abi::HttpResponse response;
  response.status = static_cast<uint32_t>(answer->status);
  response.body = std::move(answer->body);
  return response;
}

}  // namespace wasmlet::server
