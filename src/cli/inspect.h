// `wasmlet inspect FILE.wasm`: what a module declares, without running it.
#pragma once

#include <iosfwd>
#include <span>
#include <string>

#include "common/status.h"

namespace wasmlet::cli {

// Prints the module's Proxy-Wasm ABI marker, memory limits, imports and exports to `out`
// (as text, or as one JSON object). Fails when the bytes are not a valid module.
Status Inspect(std::span<const uint8_t> bytes, const std::string& label, bool json, std::ostream& out);

}  // namespace wasmlet::cli
