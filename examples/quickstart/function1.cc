// Quickstart function 1 (id_1): reads ?name=BOOK, asks function 2 how many copies there are,
// and answers "There are N inventories for BOOK." (the Layotto FaaS demo, with the SDK).
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

class Client : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestBody(size_t size, bool) override {
    // Layotto hands a GET's query string over as the body.
    const std::string book =
        QueryParam(GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or(""), "name");
    if (book.empty()) {
      SendLocalResponse(400, "give the book's name: ?name=book1\n");
      return Action::kPause;
    }
    std::string inventories;
    if (InvokeService("id_2", "", book, &inventories) != Status::kOk) {
      // wasmlet.last_error: why the host call failed (a wasmlet property; empty elsewhere).
      const std::string why = GetProperty({"wasmlet", "last_error"}).value_or("see the server log");
      SendLocalResponse(502, "function id_2 did not answer: " + why + "\n");
      return Action::kPause;
    }
    AppendBuffer(BufferType::kHttpResponseBody,
                 "There are " + inventories + " inventories for " + book + ".");
    return Action::kContinue;
  }
  void OnLog() override { Log(LogLevel::kDebug, "function1: request " + std::to_string(id()) + " finished"); }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Client)
WASMLET_FUNCTION_ID("id_1")
