// The table of host functions every instance links: the Proxy-Wasm ABI's calls, the runtime API
// for functions, and WASI preview 1. The functions themselves are in src/abi/host/, by area.
#include "abi/host/host_support.h"
#include "abi/wasi.h"

namespace wasmlet::abi {
namespace {

std::shared_ptr<const HostFunctions> Build() {
  auto host = std::make_shared<HostFunctions>();
  AddProxyWasmCalls(*host);
  AddRuntimeApiCalls(*host);
  AddWasi(*host, "wasi_snapshot_preview1");
  AddWasi(*host, "wasi_unstable");
  return host;
}

}  // namespace

std::shared_ptr<const engine::HostFunctions> ProxyWasmHostFunctions() {
  static const std::shared_ptr<const engine::HostFunctions> functions = Build();
  return functions;
}

}  // namespace wasmlet::abi
