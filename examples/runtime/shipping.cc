// A subscriber that reacts (id "shipping"): its plugin item subscribes to the topic "orders"
// with the route "/orders", so each event published there arrives as a POST whose body is the
// item; it adds one to "shipped:ITEM" in the state store "runtime" and answers 200, which
// acknowledges the event (any other answer has it delivered again). A GET ?item=book1 reads the
// count back: "book1: N shipped".
#include <cstdlib>
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

class Shipping : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestHeaders(uint32_t, bool end_of_stream) override {
    return end_of_stream ? Answer(400, "give the item: ?item=book1\n") : Action::kContinue;
  }
  Action OnRequestBody(size_t size, bool end_of_stream) override {
    if (!end_of_stream) return Action::kPause;
    const std::string body = GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or("");
    if (GetHeader(MapType::kRequestHeaders, ":path").value_or("") == "/orders") return Ship(body);
    const std::string item = QueryParam(body, "item");
    std::string shipped;
    if (GetState("runtime", "shipped:" + item, &shipped) != Status::kOk || shipped.empty()) shipped = "0";
    return Answer(200, item + ": " + shipped + " shipped\n");
  }

 private:
  // At least once: an event may come twice after a crash; counting it twice is acceptable here.
  Action Ship(const std::string& item) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      StateItem count;
      if (GetStateItem("runtime", "shipped:" + item, &count) != Status::kOk) break;
      const long next = (count.exists() ? std::strtol(count.value.c_str(), nullptr, 10) : 0) + 1;
      const Status saved = SaveState("runtime", "shipped:" + item, std::to_string(next),
                                     {.etag = count.etag, .first_write = !count.exists()});
      if (saved == Status::kOk) return Answer(200, "shipped\n");
      if (saved != Status::kCasMismatch) break;
    }
    return Answer(503, "not shipped yet; deliver it again\n");  // retried after a back-off
  }
  Action Answer(uint32_t status, const std::string& body) {
    SendLocalResponse(status, body);
    return Action::kPause;
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Shipping)
WASMLET_FUNCTION_ID("shipping")
