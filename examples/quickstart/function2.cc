// Quickstart function 2 (id_2): its request body is a book's name; it answers with the book's
// stock from the state store "state_demo" (the Layotto FaaS demo, with the SDK).
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

class Server : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestBody(size_t size, bool) override {
    const std::string book = GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or("");
    std::string stock;
    if (GetState("state_demo", book, &stock) != Status::kOk) {
      // wasmlet.last_error: why the host call failed (a wasmlet property; empty elsewhere).
      const std::string why = GetProperty({"wasmlet", "last_error"}).value_or("see the server log");
      SendLocalResponse(502, "the state store state_demo is unavailable: " + why + "\n");
      return Action::kPause;
    }
    AppendBuffer(BufferType::kHttpResponseBody, stock);
    return Action::kContinue;
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Server)
WASMLET_FUNCTION_ID("id_2")
