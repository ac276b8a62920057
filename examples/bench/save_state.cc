// The benchmark's state-writing function (id "save"): one SaveState per request, of the request
// body under the key the header `key` names ("k" when absent), in the store "state_demo".
// Answers 200 "saved", or 500 with the status when the save fails.
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {
class Save : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestBody(size_t size, bool end_of_stream) override {
    if (!end_of_stream) return Action::kPause;  // the whole body
    const std::string key = GetHeader(MapType::kRequestHeaders, "key").value_or("k");
    const Status saved = SaveState("state_demo", key, GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or(""));
    if (saved != Status::kOk) {
      SendLocalResponse(500, "save failed: status " + std::to_string(static_cast<uint32_t>(saved)) + "\n");
      return Action::kPause;
    }
    AppendBuffer(BufferType::kHttpResponseBody, "saved");
    return Action::kContinue;
  }
};
}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Save)
WASMLET_FUNCTION_ID("save")
