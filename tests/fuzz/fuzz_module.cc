// Reads a module's declarations from arbitrary bytes, then rewrites the modules that parse the
// way the engines receive them. Neither may crash; a module PrepareModule accepts must still
// parse, with the host's memory export and no start section.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "wasm/module_info.h"
#include "wasm/prepare.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wasmlet::wasm;
  const std::span<const uint8_t> bytes(data, size);
  auto info = ParseModule(bytes);
  if (!info.ok()) return 0;
  // A small cap makes the "initial memory above the cap" refusal reachable too.
  for (const uint64_t max_pages : {uint64_t{16}, uint64_t{65536}}) {
    auto prepared = PrepareModule(bytes, *info, max_pages);
    if (!prepared.ok()) continue;
    auto reparsed = ParseModule(prepared->bytes);
    Check(reparsed.ok());
    Check(!reparsed->start_function.has_value());
    if (!prepared->memory_export.empty()) {
      // Export names are not checked for uniqueness (the engine does that): look at them all.
      bool exported = false;
      for (const Export& e : reparsed->exports) {
        exported |= e.name == prepared->memory_export && e.kind == ExternKind::kMemory && e.index == 0;
      }
      Check(exported);
      Check(reparsed->memory.has_value() && reparsed->memory->limits.max.has_value() &&
            *reparsed->memory->limits.max <= max_pages);
    }
    if (!prepared->start_export.empty()) {
      Check(reparsed->FindExport(prepared->start_export) != nullptr);
    }
  }
  return 0;
}
