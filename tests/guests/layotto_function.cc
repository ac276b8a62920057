// A Layotto-style function written with the SDK: it reports its id through proxy_get_id and,
// for a request body "KIND:ARG", reaches the state store or another function and writes what
// it got (or the status) to the response body, as Layotto functions do.
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

class Function : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestBody(size_t size, bool) override {
    std::string body = GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or("");
    const auto colon = body.find(':');
    const std::string kind = body.substr(0, colon);
    const std::string arg = colon == std::string::npos ? "" : body.substr(colon + 1);
    std::string value;
    Status status = Status::kOk;
    if (kind == "state") status = GetState("inventory", arg, &value);
    if (kind == "invoke") status = InvokeService("callee", "/stock", arg, &value);
    if (kind == "call") status = InvokeService(arg, "", "from id_test", &value);  // call another id
    if (kind == "whoami") value = GetProperty({"plugin_name"}).value_or("?");
    AppendBuffer(BufferType::kHttpResponseBody,
                 kind + " status=" + std::to_string(static_cast<uint32_t>(status)) + " value=" + value);
    return Action::kContinue;
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Function)
WASMLET_FUNCTION_ID("id_test")
