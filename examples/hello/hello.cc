// The smallest useful plugin: it logs when it starts and answers every request with a greeting
// that names the request's path. Built with the wasmlet guest SDK (sdk/).
#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

class HelloRoot : public RootContext {
 public:
  using RootContext::RootContext;
  bool OnVmStart(size_t) override {
    Log(LogLevel::kInfo, "hello: started");
    return true;
  }
};

class HelloStream : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestHeaders(uint32_t, bool) override {
    const std::string path = GetHeader(MapType::kRequestHeaders, ":path").value_or("/");
    SendLocalResponse(200, "hello from wasm, you asked for " + path + "\n", {{"content-type", "text/plain"}});
    return Action::kPause;
  }
};

WASMLET_REGISTER_PLUGIN(HelloRoot, HelloStream)
