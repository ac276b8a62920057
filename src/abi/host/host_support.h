// What the host functions of each area share (src/abi/host/), and how each area adds its
// functions to the table. Internal to src/abi.
#pragma once

#include "abi/host_function.h"
#include "abi/plugin_vm.h"
#include "engine/engine.h"

namespace wasmlet::abi {

using engine::HostFunctions;
// What a host function answers the guest, or an error that fails the instance.
using R = Result<WasmResult>;

inline constexpr WasmResult kOk = WasmResult::kOk;
inline constexpr WasmResult kBadMemory = WasmResult::kInvalidMemoryAccess;

// The Proxy-Wasm ABI's own calls, with Layotto's legacy names for them (host/proxy_wasm.cc).
void AddProxyWasmCalls(HostFunctions& h);
// Layotto's and wasmlet's runtime API for functions (host/runtime_api.cc).
void AddRuntimeApiCalls(HostFunctions& h);

}  // namespace wasmlet::abi
