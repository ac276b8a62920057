// The benchmark's echo function (id "echo"): answers with the request body it was sent.
#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {
class Echo : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestBody(size_t size, bool) override {
    AppendBuffer(BufferType::kHttpResponseBody,
                 GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or(""));
    return Action::kContinue;
  }
};
}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Echo)
WASMLET_FUNCTION_ID("echo")
