// A guest that tries, through the ABI, what an attacker's plugin would: oversized and broken
// response headers and statuses, and filling the host's shared data, queues, metrics and
// properties. The request header `x-op` picks the attack and `x-count` / `x-size` size it; the
// response body reports each host call's status (`op status`, one per line) so the test sees
// where the host said no. Built a second time with HOSTILE_BAD_ID: a module whose
// proxy_get_id reports bytes that are not UTF-8.
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

int Number(std::string_view header, int fallback) {
  auto value = GetHeader(MapType::kRequestHeaders, header);
  return value && !value->empty() ? static_cast<int>(std::stoul(*value)) : fallback;
}

void Report(std::string_view what, Status status) {
  AppendBuffer(BufferType::kHttpResponseBody,
               std::string(what) + " " + std::to_string(static_cast<uint32_t>(status)) + "\n");
}

// Every request's writes are new keys, so that nothing is overwritten and only a limit stops
// the host from holding more. The start time keeps them new across instances: a second
// instance (or a fresh one after a failure) counts from 0 again.
uint32_t serial = 0;
const std::string& InstanceTag() {
  static const std::string tag = std::to_string(NowNanoseconds()) + "-";
  return tag;
}

class Stream : public StreamContext {
 public:
  using StreamContext::StreamContext;

  Action OnRequestHeaders(uint32_t, bool) override {
    op_ = GetHeader(MapType::kRequestHeaders, "x-op").value_or("");
    const int count = Number("x-count", 1);
    const int size = Number("x-size", 1024);
    const std::string blob(static_cast<size_t>(size), 'b');
    if (op_ == "shared") {
      for (int i = 0; i < count; ++i)
        Report("set_shared_data", SetSharedData("k" + InstanceTag() + std::to_string(serial++), blob));
    } else if (op_ == "queue") {
      auto id = RegisterQueue("flood");
      for (int i = 0; id && i < count; ++i) Report("enqueue", Enqueue(*id, blob));
    } else if (op_ == "metrics") {
      for (int i = 0; i < count; ++i) {
        const std::string name = "hostile_metric_" + std::to_string(serial++) + "_" + blob;
        uint32_t id = 0;
        Report("define_metric", static_cast<Status>(proxy_define_metric(0, name.data(), name.size(), &id)));
      }
    } else if (op_ == "property") {
      for (int i = 0; i < count; ++i)
        Report("set_property", SetProperty({"hostile", std::to_string(serial++)}, blob));
    } else if (op_ == "headers") {
      for (int i = 0; i < count; ++i)
        Report("add_header", AddHeader(MapType::kRequestHeaders, "x-h" + std::to_string(i), blob));
    } else if (op_ == "body") {
      for (int i = 0; i < count; ++i) Report("append_body", AppendBuffer(BufferType::kHttpRequestBody, blob));
    } else if (op_ == "log") {
      for (int i = 0; i < count; ++i) Log(LogLevel::kWarn, "hostile line " + std::to_string(i));
    } else if (op_ == "status") {
      SendLocalResponse(static_cast<uint32_t>(Number("x-status", 1000)), "a status out of range\n");
      return Action::kPause;
    } else if (op_ == "crlf") {
      SendLocalResponse(200, "split\n", {{"x-split", "a\r\nx-injected: yes"}});
      return Action::kPause;
    }
    return Action::kContinue;
  }

  Action OnResponseHeaders(uint32_t, bool) override {
    // A response header whose value is x-size bytes (Beast keeps sizes in 16 bits).
    if (op_ == "big_header")
      Report("add_response_header",
             AddHeader(MapType::kResponseHeaders, "x-big",
                       std::string(static_cast<size_t>(Number("x-size", 70000)), 'v')));
    if (op_ == "bad_header_name") AddHeader(MapType::kResponseHeaders, "bad name:", "v");
    return Action::kContinue;
  }

 private:
  std::string op_;
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Stream)
#ifdef HOSTILE_BAD_ID
WASMLET_FUNCTION_ID("bad\xff\xfe")
#endif
