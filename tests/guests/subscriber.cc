// A subscriber for the pub/sub tests (`id: id_subscriber`), keeping what it handled in the state
// store "orders":
//
//   POST /orders  a message "N" (metadata x-order: N): N % 97 == 0 fails always (500); N % 10 == 0
//                 fails once (503, remembered as failed-once:N); otherwise adds one to handled:N
//                 and answers 200. A message whose CloudEvents headers or metadata are not as
//                 published is refused (400), so that it ends in the dead letters and the test
//                 sees it missing.
//   POST /dead    a dead letter: adds one to dead:N.
//   GET ?publish=A-B    publishes "A" .. "B" to the topic "orders" of the pub/sub "events".
//   GET ?report=N       "handled=H missing=M duplicates=D dead=X\n" over 1..N, where missing
//                       counts the N that should have been handled and were not, and
//                       duplicates the extra handlings of either kind.
#include <cstdlib>
#include <string>
#include <vector>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

constexpr const char* kStore = "orders";

std::string Header(std::string_view name) { return GetHeader(MapType::kRequestHeaders, name).value_or(""); }

// Adds one to the number at `key` with ETag-guarded saves.
Status Increment(const std::string& key) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    StateItem item;
    if (Status s = GetStateItem(kStore, key, &item); s != Status::kOk) return s;
    const long next = (item.exists() ? std::strtol(item.value.c_str(), nullptr, 10) : 0) + 1;
    Status saved =
        SaveState(kStore, key, std::to_string(next), {.etag = item.etag, .first_write = !item.exists()});
    if (saved != Status::kCasMismatch) return saved;
  }
  return Status::kCasMismatch;
}

// The counts at prefix1..prefixN.
std::vector<long> Counts(const std::string& prefix, long n) {
  std::vector<std::string> keys;
  for (long i = 1; i <= n; ++i) keys.push_back(prefix + std::to_string(i));
  std::vector<StateItem> items;
  std::vector<long> counts(static_cast<size_t>(n), 0);
  if (GetBulkState(kStore, keys, &items) != Status::kOk) return counts;
  for (size_t i = 0; i < items.size() && i < counts.size(); ++i)
    counts[i] = items[i].exists() ? std::strtol(items[i].value.c_str(), nullptr, 10) : 0;
  return counts;
}

class Subscriber : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestHeaders(uint32_t, bool end_of_stream) override {
    return end_of_stream ? Answer(400, "no body\n") : Action::kContinue;
  }
  Action OnRequestBody(size_t size, bool end_of_stream) override {
    if (!end_of_stream) return Action::kPause;
    const std::string body = GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or("");
    const std::string path = Header(":path");
    if (path == "/orders") return Order(body);
    if (path == "/dead") {
      if (Header("wasmlet-original-topic") != "orders") return Answer(400, "not a dead letter of orders\n");
      return Done(Increment("dead:" + body));
    }
    if (std::string range = QueryParam(body, "publish"); !range.empty()) {
      const long from = std::strtol(range.c_str(), nullptr, 10);
      const long to = std::strtol(range.substr(range.find('-') + 1).c_str(), nullptr, 10);
      for (long i = from; i <= to; ++i) {
        const std::string n = std::to_string(i);
        if (Status s = PublishEvent("events", "orders", n, {{"x-order", n}}); s != Status::kOk)
          return Done(s);
      }
      return Answer(200, "published\n");
    }
    if (std::string report = QueryParam(body, "report"); !report.empty()) {
      const long n = std::strtol(report.c_str(), nullptr, 10);
      const std::vector<long> handled = Counts("handled:", n), dead = Counts("dead:", n);
      long total = 0, missing = 0, duplicates = 0, dead_total = 0;
      for (long i = 1; i <= n; ++i) {
        const long h = handled[static_cast<size_t>(i - 1)], d = dead[static_cast<size_t>(i - 1)];
        total += h;
        dead_total += d;
        if (i % 97 != 0 && h == 0) ++missing;
        duplicates += (h > 1 ? h - 1 : 0) + (d > 1 ? d - 1 : 0);
      }
      return Answer(200, "handled=" + std::to_string(total) + " missing=" + std::to_string(missing) +
                             " duplicates=" + std::to_string(duplicates) +
                             " dead=" + std::to_string(dead_total) + "\n");
    }
    return Answer(400, "unknown request\n");
  }

 private:
  Action Order(const std::string& n) {
    if (Header("ce-topic") != "orders" || Header("ce-pubsubname") != "events" || Header("ce-id").empty() ||
        Header("ce-specversion") != "1.0" || Header("x-order") != n)
      return Answer(400, "unexpected headers\n");
    const long number = std::strtol(n.c_str(), nullptr, 10);
    if (number % 97 == 0) return Answer(500, "this one always fails\n");
    if (number % 10 == 0) {
      const Status first = SaveState(kStore, "failed-once:" + n, "1", {.etag = "", .first_write = true});
      if (first == Status::kOk) return Answer(503, "this one fails once\n");
      if (first != Status::kCasMismatch) return Done(first);
    }
    return Done(Increment("handled:" + n));
  }
  Action Done(Status status) {
    return status == Status::kOk
               ? Answer(200, "ok\n")
               : Answer(500, "status " + std::to_string(static_cast<uint32_t>(status)) + "\n");
  }
  Action Answer(uint32_t status, const std::string& body) {
    SendLocalResponse(status, body);
    return Action::kPause;
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Subscriber)
WASMLET_FUNCTION_ID("id_subscriber")
