#include "cli/inspect.h"

#include <nlohmann/json.hpp>
#include <ostream>

#include "wasm/module_info.h"
#include "wasm/prepare.h"

namespace wasmlet::cli {
namespace {

std::string AbiVersion(std::string_view marker) {
  if (marker.empty()) return "";
  std::string version(marker.substr(std::string_view("proxy_abi_version_").size()));
  for (char& c : version) {
    if (c == '_') c = '.';
  }
  return version;  // "0.2.1", "0.x.x"
}

std::string Describe(const wasm::ModuleInfo& info, const wasm::Import& imp) {
  switch (imp.kind) {
    case wasm::ExternKind::kFunction: return "func " + info.ImportType(imp)->ToString();
    case wasm::ExternKind::kMemory: return "memory " + std::to_string(imp.limits.min) + " pages";
    case wasm::ExternKind::kGlobal: return "global " + std::string(wasm::ValTypeName(imp.value_type));
    default: return std::string(wasm::ExternKindName(imp.kind));
  }
}

std::string Describe(const wasm::ModuleInfo& info, const wasm::Export& exp) {
  if (exp.kind == wasm::ExternKind::kFunction) return "func " + info.FunctionTypeAt(exp.index)->ToString();
  return std::string(wasm::ExternKindName(exp.kind));
}

std::string Pages(uint64_t pages) {
  const double mib = static_cast<double>(pages * wasm::kPageSize) / (1024.0 * 1024.0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%llu pages (%.2f MiB)", static_cast<unsigned long long>(pages), mib);
  return buf;
}

}  // namespace

Status Inspect(std::span<const uint8_t> bytes, const std::string& label, bool json, std::ostream& out) {
  auto parsed = wasm::ParseModule(bytes);
  if (!parsed.ok()) return parsed.status();
  const wasm::ModuleInfo& info = *parsed;
  const std::string abi = AbiVersion(info.AbiMarker());
  std::vector<std::string> entry;
  for (std::string_view name : {"_initialize", "_start"}) {
    if (info.ExportedFunctionType(name)) entry.emplace_back(name);
  }
  if (info.start_function) entry.emplace_back("start section");

  if (json) {
    nlohmann::json j;
    j["file"] = label;
    j["size"] = bytes.size();
    j["proxy_wasm_abi"] = abi.empty() ? nlohmann::json() : nlohmann::json(abi);
    j["entry"] = entry;
    if (info.memory) {
      j["memory"] = {{"min_pages", info.memory->limits.min},
                     {"max_pages",
                      info.memory->limits.max ? nlohmann::json(*info.memory->limits.max) : nlohmann::json()},
                     {"imported", info.memory->imported}};
    }
    j["imports"] = nlohmann::json::array();
    for (const auto& imp : info.imports) {
      j["imports"].push_back({{"module", imp.module}, {"name", imp.name}, {"type", Describe(info, imp)}});
    }
    j["exports"] = nlohmann::json::array();
    for (const auto& exp : info.exports)
      j["exports"].push_back({{"name", exp.name}, {"type", Describe(info, exp)}});
    out << j.dump(2) << "\n";
    return Status::Ok();
  }

  out << "module:         " << label << " (" << bytes.size() << " bytes)\n";
  out << "proxy-wasm ABI: "
      << (abi.empty() ? std::string("none (no proxy_abi_version_* export)")
                      : abi + " (" + std::string(info.AbiMarker()) + ")")
      << "\n";
  out << "entry:          ";
  if (entry.empty()) out << "none";
  for (size_t i = 0; i < entry.size(); ++i) out << (i ? ", " : "") << entry[i];
  out << "\n";
  out << "memory:         ";
  if (!info.memory) {
    out << "none\n";
  } else {
    out << Pages(info.memory->limits.min) << " initial, "
        << (info.memory->limits.max ? Pages(*info.memory->limits.max) + " maximum"
                                    : std::string("no maximum"))
        << (info.memory->imported ? ", imported" : "") << "\n";
  }
  out << "imports (" << info.imports.size() << "):\n";
  for (const auto& imp : info.imports)
    out << "  " << imp.module << "." << imp.name << "  " << Describe(info, imp) << "\n";
  out << "exports (" << info.exports.size() << "):\n";
  for (const auto& exp : info.exports) out << "  " << exp.name << "  " << Describe(info, exp) << "\n";
  return Status::Ok();
}

}  // namespace wasmlet::cli
