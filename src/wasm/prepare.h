// Rewrites a module binary into the form wasmlet's engines instantiate:
//  - the memory's maximum is lowered to the host's cap, so memory.grow past it fails in the
//    guest (returns -1) instead of growing the host;
//  - memory 0 is exported (under its own export name if it has one), so the host can reach
//    guest memory even in modules that do not export it;
//  - the start section is removed and its function exported instead, so the host runs it
//    after instantiation, when guest memory is reachable, under a deadline, with traps
//    reported like any other call.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "wasm/module_info.h"

namespace wasmlet::wasm {

inline constexpr uint64_t kPageSize = 65536;
inline constexpr char kHostMemoryExport[] = "__wasmlet_memory";
inline constexpr char kHostStartExport[] = "__wasmlet_start";

struct PreparedModule {
  std::vector<uint8_t> bytes;
  std::string memory_export;  // empty when the module has no memory
  std::string start_export;   // empty when the module has no start function
  uint64_t max_memory_pages = 0;
};

// Fails when the module's initial memory is already above `max_memory_pages`, or when the
// module imports its memory (the host provides none).
Result<PreparedModule> PrepareModule(std::span<const uint8_t> bytes, const ModuleInfo& info,
                                     uint64_t max_memory_pages);

}  // namespace wasmlet::wasm
