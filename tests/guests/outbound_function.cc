// A Layotto-style function (`id: id_call`) that answers with what an upstream answered: it calls
// the upstream named by its plugin item `upstream` (default "backend") with GET /, waits, and
// writes the answer's body as its own. In function mode the host answers 200 with whatever the
// function wrote to the response body.
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

class Root : public RootContext {
 public:
  using RootContext::RootContext;

  // Layotto passes the plugin's string items as pairs (the header map format) in buffer 7.
  bool OnConfigure(size_t size) override {
    const std::string items = GetBuffer(BufferType::kPluginConfiguration, 0, size).value_or("");
    for (const auto& [key, value] : ParseHeaders(items)) {
      if (key == "upstream") upstream_ = value;
    }
    return true;
  }

  const std::string& upstream() const { return upstream_; }

 private:
  std::string upstream_ = "backend";
};

class Function : public StreamContext {
 public:
  using StreamContext::StreamContext;

  Action OnRequestHeaders(uint32_t, bool) override {
    const std::string& upstream = static_cast<Root*>(root())->upstream();
    Status status = Status::kOk;
    if (!HttpCall(upstream, {{":method", "GET"}, {":path", "/"}, {":authority", "backend"}}, "", {}, 2000,
                  &status)) {
      SendLocalResponse(502, "http_call to " + upstream +
                                 " failed: " + std::to_string(static_cast<uint32_t>(status)) + "\n");
    }
    return Action::kPause;
  }

  void OnHttpCallResponse(uint32_t, uint32_t headers, size_t body_size, uint32_t) override {
    if (headers == 0) {
      SendLocalResponse(502, "upstream call failed\n");
      return;
    }
    AppendBuffer(BufferType::kHttpResponseBody,
                 GetBuffer(BufferType::kHttpCallResponseBody, 0, body_size).value_or(""));
    ContinueRequest();
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(Root, Function)
WASMLET_FUNCTION_ID("id_call")
