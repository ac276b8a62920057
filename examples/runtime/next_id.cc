// An id generator (id "next_id"): ?key=invoice answers "invoice-N", N from the sequencer "ids":
// larger than any id given before for that key, by any instance or any wasmlet sharing the store.
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

class NextId : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestHeaders(uint32_t, bool end_of_stream) override {
    return end_of_stream ? Answer(400, "give the key: ?key=invoice\n") : Action::kContinue;
  }
  Action OnRequestBody(size_t size, bool) override {
    const std::string key = QueryParam(GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or(""), "key");
    if (key.empty()) return Answer(400, "give the key: ?key=invoice\n");
    uint64_t id = 0;
    if (GetNextId("ids", key, &id) != Status::kOk)
      return Answer(503, "no id: " + GetProperty({"wasmlet", "last_error"}).value_or("") + "\n");
    return Answer(200, key + "-" + std::to_string(id) + "\n");
  }

 private:
  Action Answer(uint32_t status, const std::string& body) {
    SendLocalResponse(status, body);
    return Action::kPause;
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, NextId)
WASMLET_FUNCTION_ID("next_id")
