// What a WebAssembly binary declares: its function types, imports, exports, linear memory
// and start function, read straight from the bytes without compiling anything.
//
// ParseModule checks the binary's structure (header, section framing, every LEB128 and
// length) and rejects truncated or malformed input with a message naming the byte offset.
// It does not validate function bodies; the engine does that when it compiles.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace wasmlet::wasm {

enum class ValType : uint8_t { kI32, kI64, kF32, kF64, kV128, kFuncRef, kExternRef };
std::string_view ValTypeName(ValType type);

struct FunctionType {
  std::vector<ValType> params;
  std::vector<ValType> results;

  bool operator==(const FunctionType&) const = default;
  // "(i32, i32) -> i32", "() -> ()"
  std::string ToString() const;
};

enum class ExternKind : uint8_t { kFunction = 0, kTable = 1, kMemory = 2, kGlobal = 3, kTag = 4 };
std::string_view ExternKindName(ExternKind kind);

// Limits of a memory (in 64 KiB pages) or of a table (in elements).
struct Limits {
  uint64_t min = 0;
  std::optional<uint64_t> max;
  bool shared = false;
  bool is64 = false;
};

struct Import {
  std::string module;
  std::string name;
  ExternKind kind = ExternKind::kFunction;
  uint32_t type_index = 0;  // kFunction, kTag
  Limits limits;            // kMemory, kTable
  ValType value_type{};     // kGlobal
};

struct Export {
  std::string name;
  ExternKind kind = ExternKind::kFunction;
  uint32_t index = 0;
};

struct Memory {
  Limits limits;
  bool imported = false;
};

// Names of the Proxy-Wasm ABI version marker exports, newest first.
inline constexpr std::string_view kAbiMarkers[] = {"proxy_abi_version_0_x_x", "proxy_abi_version_0_2_1",
                                                   "proxy_abi_version_0_2_0", "proxy_abi_version_0_1_0"};

class ModuleInfo {
 public:
  std::vector<FunctionType> types;
  std::vector<Import> imports;
  std::vector<uint32_t> function_type_indices;  // defined functions only, in order
  std::vector<Export> exports;
  std::optional<Memory> memory;  // memory index 0, defined or imported
  std::optional<uint32_t> start_function;

  uint32_t imported_function_count() const;
  // Type of the function at `function_index` in the function index space (imports first).
  const FunctionType* FunctionTypeAt(uint32_t function_index) const;
  const FunctionType* ImportType(const Import& import) const;
  const Export* FindExport(std::string_view name) const;
  // Type of an exported function, or nullptr when there is no function export of that name.
  const FunctionType* ExportedFunctionType(std::string_view name) const;
  // The first Proxy-Wasm ABI marker the module exports ("proxy_abi_version_0_2_1"), or empty.
  std::string_view AbiMarker() const;
};

// Reads the declarations of a WebAssembly binary (MVP encoding, plus the limits flags of the
// threads and memory64 proposals).
Result<ModuleInfo> ParseModule(std::span<const uint8_t> bytes);

// The four bytes every module starts with: \0asm.
inline constexpr uint8_t kWasmMagic[4] = {0x00, 0x61, 0x73, 0x6d};

}  // namespace wasmlet::wasm
