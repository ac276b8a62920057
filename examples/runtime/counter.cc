// A counter that writes state (id "counter"): ?key=visits adds one to the number stored under
// "visits" in the store "runtime" and answers "visits = N". Concurrent requests never lose an
// increment: the save names the ETag that was read, and a conflict reads and tries again.
#include <cstdlib>
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

class Counter : public StreamContext {
 public:
  using StreamContext::StreamContext;
  // Without a query string there is no body: answer here, or the request would end unanswered.
  Action OnRequestHeaders(uint32_t, bool end_of_stream) override {
    return end_of_stream ? Answer(400, "give the counter's name: ?key=visits\n") : Action::kContinue;
  }
  Action OnRequestBody(size_t size, bool) override {
    const std::string key = QueryParam(GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or(""), "key");
    if (key.empty()) return Answer(400, "give the counter's name: ?key=visits\n");
    for (int attempt = 0; attempt < 100; ++attempt) {
      StateItem item;
      if (Status s = GetStateItem("runtime", key, &item); s != Status::kOk) return Failed("reading", s);
      const long next = (item.exists() ? std::strtol(item.value.c_str(), nullptr, 10) : 0) + 1;
      // With the ETag read (or first-write when there was no item), the save fails with
      // kCasMismatch if another request saved in between.
      const Status saved =
          SaveState("runtime", key, std::to_string(next), {.etag = item.etag, .first_write = !item.exists()});
      if (saved == Status::kOk) return Answer(200, key + " = " + std::to_string(next) + "\n");
      if (saved != Status::kCasMismatch) return Failed("saving", saved);
    }
    return Answer(409, "too many concurrent updates of " + key + "; try again\n");
  }

 private:
  Action Answer(uint32_t status, const std::string& body) {
    SendLocalResponse(status, body);
    return Action::kPause;
  }
  Action Failed(const char* doing, Status status) {
    const std::string why = GetProperty({"wasmlet", "last_error"}).value_or("");
    return Answer(status == Status::kBrokenConnection ? 503 : 500,
                  std::string(doing) + " failed (status " + std::to_string(static_cast<uint32_t>(status)) +
                      "): " + why + "\n");
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Counter)
WASMLET_FUNCTION_ID("counter")
