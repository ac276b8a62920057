// A lock-guarded update and an id generator (id "reserve"): ?item=book1 takes the lock
// "reserve:book1" in the lock store "locks", takes one from the stock stored under "book1" in the
// state store "runtime", gives the reservation a number from the sequencer "ids", and releases
// the lock. Answers "reserved book1 as order N, M left", 409 when another request holds the
// lock (Layotto's locks do not wait: the caller tries again), 410 when the stock is gone.
#include <cstdlib>
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

class Reserve : public StreamContext {
 public:
  using StreamContext::StreamContext;
  // Without a query string there is no body: answer here, or the request would end unanswered.
  Action OnRequestHeaders(uint32_t, bool end_of_stream) override {
    return end_of_stream ? Answer(400, "give the item: ?item=book1\n") : Action::kContinue;
  }
  Action OnRequestBody(size_t size, bool) override {
    const std::string item =
        QueryParam(GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or(""), "item");
    if (item.empty()) return Answer(400, "give the item: ?item=book1\n");
    // The owner must be unique to this request: a number from the sequencer is.
    uint64_t order = 0;
    if (Status s = GetNextId("ids", "order", &order); s != Status::kOk) return Failed("numbering", s);
    const std::string owner = "order-" + std::to_string(order);
    bool taken = false;
    if (Status s = TryLock("locks", "reserve:" + item, owner, /*expire_seconds=*/10, &taken);
        s != Status::kOk)
      return Failed("locking", s);
    if (!taken) return Answer(409, item + " is being reserved by another request; try again\n");

    // Held: nobody else changes the stock until Unlock, so a plain read and save are safe.
    std::string stock;
    Action answer;
    if (Status s = GetState("runtime", item, &stock); s != Status::kOk) {
      answer = Failed("reading the stock", s);
    } else if (std::strtol(stock.c_str(), nullptr, 10) <= 0) {
      answer = Answer(410, item + " is sold out\n");
    } else {
      const std::string left = std::to_string(std::strtol(stock.c_str(), nullptr, 10) - 1);
      if (Status s = SaveState("runtime", item, left); s != Status::kOk) {
        answer = Failed("saving the stock", s);
      } else {
        answer = Answer(200, "reserved " + item + " as " + owner + ", " + left + " left\n");
      }
    }
    UnlockResult released;
    Unlock("locks", "reserve:" + item, owner, &released);  // it expires in 10 s if this fails
    return answer;
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

WASMLET_REGISTER_PLUGIN(RootContext, Reserve)
WASMLET_FUNCTION_ID("reserve")
