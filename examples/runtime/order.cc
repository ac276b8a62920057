// An order function that publishes (id "order"): ?item=book1 publishes the event "book1" to the
// topic "orders" of the pub/sub "events", with the metadata "source: order", and answers
// "ordered book1". The shipping function (shipping.cc) subscribes to that topic.
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

class Order : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestHeaders(uint32_t, bool end_of_stream) override {
    return end_of_stream ? Answer(400, "give the item: ?item=book1\n") : Action::kContinue;
  }
  Action OnRequestBody(size_t size, bool) override {
    const std::string item =
        QueryParam(GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or(""), "item");
    if (item.empty()) return Answer(400, "give the item: ?item=book1\n");
    if (Status s = PublishEvent("events", "orders", item, {{"source", "order"}}); s != Status::kOk) {
      const std::string why = GetProperty({"wasmlet", "last_error"}).value_or("");
      return Answer(503, "cannot publish the order: " + why + "\n");
    }
    return Answer(200, "ordered " + item + "\n");
  }

 private:
  Action Answer(uint32_t status, const std::string& body) {
    SendLocalResponse(status, body);
    return Action::kPause;
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Order)
WASMLET_FUNCTION_ID("order")
