// Two functions that call each other (built twice: relay_a calls relay_b, relay_b calls
// relay_a). A request body N asks for a chain N calls deep: each relay calls the other with
// N - 1 and wraps its answer, until 0 answers "bottom". A negative N never stops: the host's
// chain limit has to end it. A failed call answers "error: " and the host's reason.
#include <cstdlib>
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

#ifdef RELAY_B
#define RELAY_SELF "relay_b"
#define RELAY_NEXT "relay_a"
#else
#define RELAY_SELF "relay_a"
#define RELAY_NEXT "relay_b"
#endif

namespace {

class Relay : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestBody(size_t size, bool) override {
    const std::string body = GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or("0");
    const int depth = std::atoi(body.c_str());
    if (depth == 0) {
      AppendBuffer(BufferType::kHttpResponseBody, "bottom");
      return Action::kContinue;
    }
    std::string value;
    if (InvokeService(RELAY_NEXT, "", std::to_string(depth - 1), &value) != Status::kOk) {
      AppendBuffer(BufferType::kHttpResponseBody,
                   "error: " + GetProperty({"wasmlet", "last_error"}).value_or("(no reason given)"));
      return Action::kContinue;
    }
    // An error further down is passed up as it is; an answer is wrapped in this relay's name.
    AppendBuffer(BufferType::kHttpResponseBody,
                 value.starts_with("error: ") ? value : std::string(RELAY_SELF) + "(" + value + ")");
    return Action::kContinue;
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Relay)
WASMLET_FUNCTION_ID(RELAY_SELF)
