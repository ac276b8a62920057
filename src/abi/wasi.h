// WASI preview 1 for guests (ABI §8).
#pragma once

#include <string>

#include "engine/engine.h"

namespace wasmlet::abi {

// Registers the whole preview-1 function set under `module` ("wasi_snapshot_preview1", or
// "wasi_unstable" for older toolchains).
void AddWasi(engine::HostFunctions& host, const std::string& module);

}  // namespace wasmlet::abi
