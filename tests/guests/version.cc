// A function that answers with the version it was built as (-DGUEST_VERSION=N): the reload
// tests swap two builds of it under load.
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

#ifndef GUEST_VERSION
#error "build with -DGUEST_VERSION=N"
#endif

namespace {
class Versioned : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestHeaders(uint32_t, bool) override {
    SendLocalResponse(200, "version " + std::to_string(GUEST_VERSION) + "\n");
    return Action::kPause;
  }
};
}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Versioned)
WASMLET_FUNCTION_ID("versioned")
