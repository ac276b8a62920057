// A Proxy-Wasm filter for proxy mode (configs/proxy.json): it tells the upstream who forwarded
// the request, and marks the answer on its way back. Its plugin configuration (MOSN passes the
// filter's string keys as pairs) may set the mark: "mark": "...".
#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

std::string mark = "added by a wasm filter";

class MarkRoot : public RootContext {
 public:
  using RootContext::RootContext;
  bool OnConfigure(size_t size) override {
    for (const auto& [key, value] : ParseHeaders(GetBuffer(BufferType::kPluginConfiguration).value_or(""))) {
      if (key == "mark") mark = value;
    }
    return true;
  }
};

class MarkStream : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestHeaders(uint32_t, bool) override {
    ReplaceHeader(MapType::kRequestHeaders, "x-forwarded-by", "wasmlet");
    return Action::kContinue;
  }
  Action OnResponseHeaders(uint32_t, bool) override {
    AddHeader(MapType::kResponseHeaders, "x-wasm-filter", mark);
    return Action::kContinue;
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(MarkRoot, MarkStream)
