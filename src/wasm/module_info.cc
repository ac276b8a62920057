#include "wasm/module_info.h"

#include <array>
#include <cstring>

#include "wasm/reader.h"

namespace wasmlet::wasm {
namespace {

constexpr uint8_t kVersion1[] = {0x01, 0x00, 0x00, 0x00};

// Position of each known section id in the order the spec requires (0 = custom, anywhere).
int SectionRank(uint8_t id) {
  static constexpr std::array<int, 14> kRank = {0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 11, 6};
  return id < kRank.size() ? kRank[id] : -1;
}

#define ASSIGN_OR_RETURN(lhs, expr)                     \
  auto lhs##_result = (expr);                           \
  if (!lhs##_result.ok()) return lhs##_result.status(); \
  auto lhs = std::move(*lhs##_result)

Result<ValType> ReadValType(Reader& r) {
  ASSIGN_OR_RETURN(code, r.U8("value type"));
  switch (code) {
    case 0x7f: return ValType::kI32;
    case 0x7e: return ValType::kI64;
    case 0x7d: return ValType::kF32;
    case 0x7c: return ValType::kF64;
    case 0x7b: return ValType::kV128;
    case 0x70: return ValType::kFuncRef;
    case 0x6f: return ValType::kExternRef;
    default: return r.Error("unknown value type 0x" + std::to_string(code) + " in", "a type");
  }
}

Result<Limits> ReadLimits(Reader& r) {
  ASSIGN_OR_RETURN(flags, r.U8("limits"));
  if (flags > 0x07) return r.Error("unknown limits flags in", "a memory or table");
  Limits limits;
  limits.shared = (flags & 0x02) != 0;
  limits.is64 = (flags & 0x04) != 0;
  if (limits.is64) {
    ASSIGN_OR_RETURN(min, r.U64("limits minimum"));
    limits.min = min;
  } else {
    ASSIGN_OR_RETURN(min, r.U32("limits minimum"));
    limits.min = min;
  }
  if ((flags & 0x01) != 0) {
    if (limits.is64) {
      ASSIGN_OR_RETURN(max, r.U64("limits maximum"));
      limits.max = max;
    } else {
      ASSIGN_OR_RETURN(max, r.U32("limits maximum"));
      limits.max = max;
    }
    if (*limits.max < limits.min) return r.Error("maximum below minimum in", "limits");
  }
  return limits;
}

// Reads a vector count and checks it can fit in what is left (every entry is >= 1 byte).
Result<uint32_t> ReadCount(Reader& r, std::string_view what) {
  ASSIGN_OR_RETURN(count, r.U32(what));
  if (count > r.remaining()) return r.Error("count larger than its section in", what);
  return count;
}

Status ReadTypeSection(Reader& r, ModuleInfo& info) {
  ASSIGN_OR_RETURN(count, ReadCount(r, "type section"));
  info.types.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(form, r.U8("function type"));
    if (form != 0x60) {
      return r.Error("unsupported type form (only function types are supported) in", "type section");
    }
    FunctionType type;
    for (auto* list : {&type.params, &type.results}) {
      ASSIGN_OR_RETURN(n, ReadCount(r, "function type"));
      for (uint32_t j = 0; j < n; ++j) {
        ASSIGN_OR_RETURN(vt, ReadValType(r));
        list->push_back(vt);
      }
    }
    info.types.push_back(std::move(type));
  }
  return Status::Ok();
}

Status ReadImportSection(Reader& r, ModuleInfo& info) {
  ASSIGN_OR_RETURN(count, ReadCount(r, "import section"));
  for (uint32_t i = 0; i < count; ++i) {
    Import imp;
    ASSIGN_OR_RETURN(module, r.Name("import module name"));
    ASSIGN_OR_RETURN(name, r.Name("import name"));
    imp.module = std::move(module);
    imp.name = std::move(name);
    ASSIGN_OR_RETURN(kind, r.U8("import kind"));
    switch (kind) {
      case 0:
      case 4: {  // function, tag
        if (kind == 4) {
          ASSIGN_OR_RETURN(attribute, r.U8("tag attribute"));
          (void)attribute;
        }
        ASSIGN_OR_RETURN(index, r.U32("import type index"));
        if (index >= info.types.size()) return r.Error("type index out of range in", "import");
        imp.kind = kind == 0 ? ExternKind::kFunction : ExternKind::kTag;
        imp.type_index = index;
        break;
      }
      case 1: {
        ASSIGN_OR_RETURN(elem, ReadValType(r));
        (void)elem;
        ASSIGN_OR_RETURN(limits, ReadLimits(r));
        imp.kind = ExternKind::kTable;
        imp.limits = limits;
        break;
      }
      case 2: {
        ASSIGN_OR_RETURN(limits, ReadLimits(r));
        imp.kind = ExternKind::kMemory;
        imp.limits = limits;
        if (!info.memory) info.memory = Memory{limits, /*imported=*/true};
        break;
      }
      case 3: {
        ASSIGN_OR_RETURN(vt, ReadValType(r));
        ASSIGN_OR_RETURN(mut, r.U8("global mutability"));
        if (mut > 1) return r.Error("bad global mutability in", "import");
        imp.kind = ExternKind::kGlobal;
        imp.value_type = vt;
        break;
      }
      default: return r.Error("unknown import kind in", "import section");
    }
    info.imports.push_back(std::move(imp));
  }
  return Status::Ok();
}

Status ReadFunctionSection(Reader& r, ModuleInfo& info) {
  ASSIGN_OR_RETURN(count, ReadCount(r, "function section"));
  info.function_type_indices.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(index, r.U32("function type index"));
    if (index >= info.types.size()) return r.Error("type index out of range in", "function section");
    info.function_type_indices.push_back(index);
  }
  return Status::Ok();
}

Status ReadMemorySection(Reader& r, ModuleInfo& info) {
  ASSIGN_OR_RETURN(count, ReadCount(r, "memory section"));
  for (uint32_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(limits, ReadLimits(r));
    if (!info.memory) info.memory = Memory{limits, /*imported=*/false};
  }
  return Status::Ok();
}

Status ReadExportSection(Reader& r, ModuleInfo& info) {
  ASSIGN_OR_RETURN(count, ReadCount(r, "export section"));
  const uint64_t function_count =
      uint64_t{info.imported_function_count()} + info.function_type_indices.size();
  for (uint32_t i = 0; i < count; ++i) {
    Export exp;
    ASSIGN_OR_RETURN(name, r.Name("export name"));
    exp.name = std::move(name);
    ASSIGN_OR_RETURN(kind, r.U8("export kind"));
    if (kind > 4) return r.Error("unknown export kind in", "export section");
    exp.kind = static_cast<ExternKind>(kind);
    ASSIGN_OR_RETURN(index, r.U32("export index"));
    if (exp.kind == ExternKind::kFunction && index >= function_count) {
      return r.Error("function index out of range in", "export '" + exp.name + "'");
    }
    exp.index = index;
    info.exports.push_back(std::move(exp));
  }
  return Status::Ok();
}

}  // namespace

std::string_view ValTypeName(ValType type) {
  switch (type) {
    case ValType::kI32: return "i32";
    case ValType::kI64: return "i64";
    case ValType::kF32: return "f32";
    case ValType::kF64: return "f64";
    case ValType::kV128: return "v128";
    case ValType::kFuncRef: return "funcref";
    case ValType::kExternRef: return "externref";
  }
  return "?";
}

std::string FunctionType::ToString() const {
  auto list = [](const std::vector<ValType>& types) {
    std::string out = "(";
    for (size_t i = 0; i < types.size(); ++i) {
      if (i) out += ", ";
      out += ValTypeName(types[i]);
    }
    return out + ")";
  };
  std::string out = list(params) + " -> ";
  out += results.size() == 1 ? std::string(ValTypeName(results[0])) : list(results);
  return out;
}

std::string_view ExternKindName(ExternKind kind) {
  switch (kind) {
    case ExternKind::kFunction: return "func";
    case ExternKind::kTable: return "table";
    case ExternKind::kMemory: return "memory";
    case ExternKind::kGlobal: return "global";
    case ExternKind::kTag: return "tag";
  }
  return "?";
}

uint32_t ModuleInfo::imported_function_count() const {
  uint32_t n = 0;
  for (const auto& imp : imports) n += imp.kind == ExternKind::kFunction;
  return n;
}

const FunctionType* ModuleInfo::FunctionTypeAt(uint32_t function_index) const {
  uint32_t seen = 0;
  for (const auto& imp : imports) {
    if (imp.kind != ExternKind::kFunction) continue;
    if (seen++ == function_index) return &types[imp.type_index];
  }
  const uint64_t defined = uint64_t{function_index} - seen;
  if (defined >= function_type_indices.size()) return nullptr;
  return &types[function_type_indices[defined]];
}

const FunctionType* ModuleInfo::ImportType(const Import& import) const {
  if (import.kind != ExternKind::kFunction && import.kind != ExternKind::kTag) return nullptr;
  return &types[import.type_index];
}

const Export* ModuleInfo::FindExport(std::string_view name) const {
  for (const auto& exp : exports) {
    if (exp.name == name) return &exp;
  }
  return nullptr;
}

const FunctionType* ModuleInfo::ExportedFunctionType(std::string_view name) const {
  const Export* exp = FindExport(name);
  if (exp == nullptr || exp->kind != ExternKind::kFunction) return nullptr;
  return FunctionTypeAt(exp->index);
}

std::string_view ModuleInfo::AbiMarker() const {
  for (const auto& exp : exports) {
    for (std::string_view marker : kAbiMarkers) {
      if (exp.name == marker) return marker;
    }
  }
  return {};
}

Result<ModuleInfo> ParseModule(std::span<const uint8_t> bytes) {
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kWasmMagic, 4) != 0) {
    return InvalidArgument(
        "not a WebAssembly module: it does not start with the bytes \\0asm (is this a .wasm "
        "file? a text-format .wat file must be assembled first)");
  }
  if (std::memcmp(bytes.data() + 4, kVersion1, 4) != 0) {
    return InvalidArgument(
        "unsupported WebAssembly binary version (only version 1 is supported; a component "
        "model binary is not a core module)");
  }
  ModuleInfo info;
  Reader r(bytes.subspan(8), 8);
  int last_rank = 0;
  while (!r.done()) {
    ASSIGN_OR_RETURN(id, r.U8("section id"));
    ASSIGN_OR_RETURN(size, r.U32("section size"));
    const size_t section_start = r.offset();
    ASSIGN_OR_RETURN(payload, r.Bytes(size, "section " + std::to_string(id)));
    const int rank = SectionRank(id);
    if (rank < 0) {
      return InvalidArgument("not a valid WebAssembly module: unknown section id " + std::to_string(id) +
                             " at byte " + std::to_string(section_start));
    }
    if (rank == 0) continue;  // custom sections may appear anywhere
    if (rank <= last_rank) {
      return InvalidArgument("not a valid WebAssembly module: section " + std::to_string(id) +
                             " out of order or repeated at byte " + std::to_string(section_start));
    }
    last_rank = rank;
    Reader s(payload, section_start);
    Status status;
    switch (id) {
      case 1: status = ReadTypeSection(s, info); break;
      case 2: status = ReadImportSection(s, info); break;
      case 3: status = ReadFunctionSection(s, info); break;
      case 5: status = ReadMemorySection(s, info); break;
      case 7: status = ReadExportSection(s, info); break;
      case 8: {
        auto start = s.U32("start function index");
        if (!start.ok()) return start.status();
        if (info.FunctionTypeAt(*start) == nullptr)
          return s.Error("function index out of range in", "start section");
        info.start_function = *start;
        break;
      }
      default: s = Reader({}, 0); break;  // not needed for the declarations
    }
    WASMLET_RETURN_IF_ERROR(status);
    if (!s.done()) {
      return s.Error("unexpected bytes at the end of", "section " + std::to_string(id));
    }
  }
  return info;
}

}  // namespace wasmlet::wasm
