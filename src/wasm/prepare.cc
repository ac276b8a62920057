#include "wasm/prepare.h"

#include <cstring>

#include "wasm/reader.h"

namespace wasmlet::wasm {
namespace {

std::string Mib(uint64_t pages) { return std::to_string(pages * kPageSize / (1024 * 1024)) + " MiB"; }

void AppendName(std::string& out, std::string_view name) {
  AppendLeb(out, name.size());
  out.append(name);
}

void AppendSection(std::string& out, uint8_t id, std::string_view payload) {
  out.push_back(static_cast<char>(id));
  AppendLeb(out, payload.size());
  out += payload;
}

std::string EncodeLimits(const Limits& limits) {
  std::string out;
  uint8_t flags = (limits.max ? 0x01 : 0) | (limits.shared ? 0x02 : 0) | (limits.is64 ? 0x04 : 0);
  out.push_back(static_cast<char>(flags));
  AppendLeb(out, limits.min);
  if (limits.max) AppendLeb(out, *limits.max);
  return out;
}

}  // namespace

Result<PreparedModule> PrepareModule(std::span<const uint8_t> bytes, const ModuleInfo& info,
                                     uint64_t max_memory_pages) {
  PreparedModule prepared;
  prepared.max_memory_pages = max_memory_pages;

  std::vector<std::pair<std::string, uint32_t>> extra_exports;  // (name, function index)
  std::vector<std::pair<std::string, uint32_t>> extra_memory_exports;
  if (info.memory) {
    if (info.memory->imported) {
      return InvalidArgument(
          "the module imports its linear memory; wasmlet gives each instance its own memory, so "
          "build the module with a memory of its own (drop --import-memory)");
    }
    if (info.memory->limits.is64) {
      return InvalidArgument("the module uses 64-bit memory (memory64), which wasmlet does not support");
    }
    if (info.memory->limits.min > max_memory_pages) {
      return ResourceExhausted("the module needs " + Mib(info.memory->limits.min) +
                               " of memory at start, above the cap of " + Mib(max_memory_pages) +
                               "; raise the memory limit or shrink the module's initial memory");
    }
    prepared.memory_export = kHostMemoryExport;
    for (const auto& exp : info.exports) {
      if (exp.kind == ExternKind::kMemory && exp.index == 0) {
        prepared.memory_export = exp.name;
        break;
      }
    }
    if (prepared.memory_export == kHostMemoryExport) extra_memory_exports.emplace_back(kHostMemoryExport, 0);
  }
  if (info.start_function) {
    prepared.start_export = kHostStartExport;
    extra_exports.emplace_back(kHostStartExport, *info.start_function);
  }

  auto encode_exports = [&](std::span<const uint8_t> existing) -> Result<std::string> {
    std::string entries;
    uint32_t count = 0;
    if (!existing.empty()) {
      Reader r(existing);
      auto n = r.U32("export count");
      if (!n.ok()) return n.status();
      count = *n;
      auto rest = r.Bytes(r.remaining(), "exports");
      if (!rest.ok()) return rest.status();
      entries.append(reinterpret_cast<const char*>(rest->data()), rest->size());
    }
    for (const auto& [name, index] : extra_exports) {
      AppendName(entries, name);
      entries.push_back(0x00);  // function
      AppendLeb(entries, index);
      ++count;
    }
    for (const auto& [name, index] : extra_memory_exports) {
      AppendName(entries, name);
      entries.push_back(0x02);  // memory
      AppendLeb(entries, index);
      ++count;
    }
    std::string payload;
    AppendLeb(payload, count);
    return payload + entries;
  };

  std::string out(reinterpret_cast<const char*>(bytes.data()), 8);
  // One allocation for the copy: a module is megabytes, and every fresh buffer costs page faults.
  out.reserve(bytes.size() + 256);
  const bool needs_new_exports = !extra_exports.empty() || !extra_memory_exports.empty();
  bool exports_written = !needs_new_exports;
  Reader r(bytes.subspan(8), 8);
  while (!r.done()) {
    // ParseModule has already checked the framing; these reads cannot fail on its output.
    const uint8_t id = *r.U8("section id");
    const uint32_t size = *r.U32("section size");
    auto payload = *r.Bytes(size, "section");
    // Sections that come after the export section: 8 start, 9 element, 12 datacount, 10 code, 11 data.
    const bool after_exports = id == 8 || id == 9 || id == 10 || id == 11 || id == 12;
    if (!exports_written && after_exports) {
      auto section = encode_exports({});
      if (!section.ok()) return section.status();
      AppendSection(out, 7, *section);
      exports_written = true;
    }
    if (id == 5 && info.memory) {
      // Rewrite memory 0's limits; keep any further memories as they are.
      Reader s(payload, 0);
      const uint32_t count = *s.U32("memory count");
      Limits first = info.memory->limits;
      if (!first.max || *first.max > max_memory_pages) first.max = max_memory_pages;
      std::string section;
      AppendLeb(section, count);
      section += EncodeLimits(first);
      // Skip memory 0's original limits, copy the rest verbatim.
      const uint8_t flags = *s.U8("limits");
      (void)*s.U64("min");
      if (flags & 0x01) (void)*s.U64("max");
      auto rest = *s.Bytes(s.remaining(), "memories");
      section.append(reinterpret_cast<const char*>(rest.data()), rest.size());
      AppendSection(out, 5, section);
    } else if (id == 7 && needs_new_exports) {
      auto section = encode_exports(payload);
      if (!section.ok()) return section.status();
      AppendSection(out, 7, *section);
      exports_written = true;
    } else if (id == 8) {
      // Dropped: the host calls the start function through its export.
    } else {
      AppendSection(out, id, std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()));
    }
  }
  if (!exports_written) {
    auto section = encode_exports({});
    if (!section.ok()) return section.status();
    AppendSection(out, 7, *section);
  }
  prepared.bytes.resize(out.size());
  std::memcpy(prepared.bytes.data(), out.data(), out.size());
  return prepared;
}

}  // namespace wasmlet::wasm
