#include "engine/engine.h"

#include <bit>
#include <cstring>

#include "engine/v8/v8_engine.h"

namespace wasmlet::engine {
namespace {
std::string Key(std::string_view module, std::string_view name) {
  std::string key(module);
  key.push_back('\0');
  key.append(name);
  return key;
}
}  // namespace

void HostFunctions::Add(std::string module, std::string name, FunctionType type, HostCallback callback) {
  auto fn = std::make_unique<HostFunction>(
      HostFunction{std::move(module), std::move(name), std::move(type), std::move(callback), {}});
  const std::string key = Key(fn->module, fn->name);
  by_name_.emplace(key, fn.get());
  auto [begin, end] = by_name_.equal_range(key);
  std::vector<const HostFunction*> overloads;
  for (auto it = begin; it != end; ++it) overloads.push_back(it->second);
  for (auto it = begin; it != end; ++it) it->second->overloads = overloads;
  functions_.push_back(std::move(fn));
}

const HostFunction* HostFunctions::Find(std::string_view module, std::string_view name,
                                        const FunctionType& type) const {
  auto [begin, end] = by_name_.equal_range(Key(module, name));
  for (auto it = begin; it != end; ++it) {
    if (it->second->type == type) return it->second;
  }
  return nullptr;
}

std::string HostFunctions::DescribeMissing(std::string_view module, std::string_view name,
                                           const FunctionType& type) const {
  std::string what =
      "the module imports " + std::string(module) + "." + std::string(name) + " " + type.ToString();
  auto [begin, end] = by_name_.equal_range(Key(module, name));
  if (begin == end) return what + ", which the host does not provide";
  std::string offered;
  for (auto it = begin; it != end; ++it) {
    if (!offered.empty()) offered += " or ";
    offered += it->second->type.ToString();
  }
  return what + ", but the host provides it as " + offered;
}

std::optional<ExportedFunction> Instance::FindFunction(std::string_view name) const {
  const auto& exports = module_->info().exports;
  for (size_t i = 0; i < exports.size(); ++i) {
    if (exports[i].kind == wasm::ExternKind::kFunction && exports[i].name == name) {
      return ExportedFunction{static_cast<uint32_t>(i), module_->info().FunctionTypeAt(exports[i].index)};
    }
  }
  return std::nullopt;
}

Result<std::vector<Value>> Instance::Call(std::string_view name, std::span<const Value> args,
                                          Deadline deadline) {
  auto fn = FindFunction(name);
  if (!fn) return NotFound("the module exports no function named '" + std::string(name) + "'");
  std::vector<Value> results(fn->type->results.size());
  WASMLET_RETURN_IF_ERROR(Call(*fn, args, results, deadline));
  return results;
}

Result<std::span<uint8_t>> Instance::Memory(uint64_t offset, uint64_t length) {
  std::span<uint8_t> memory = MemoryBytes();
  // offset + length cannot overflow: both come from 32-bit guest values or host sizes, and the
  // comparison is arranged so that it never adds.
  if (offset > memory.size() || length > memory.size() - offset) {
    return OutOfRange("guest memory range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                      ") is outside the instance's " + std::to_string(memory.size()) + " bytes");
  }
  return memory.subspan(offset, length);
}

Status Instance::ReadMemory(uint64_t offset, std::span<uint8_t> out) {
  auto range = Memory(offset, out.size());
  if (!range.ok()) return range.status();
  if (!out.empty()) std::memcpy(out.data(), range->data(), out.size());
  return Status::Ok();
}

Status Instance::WriteMemory(uint64_t offset, std::span<const uint8_t> data) {
  auto range = Memory(offset, data.size());
  if (!range.ok()) return range.status();
  if (!data.empty()) std::memcpy(range->data(), data.data(), data.size());
  return Status::Ok();
}

// Guest memory is little-endian, as is every machine wasmlet builds for (checked below).
static_assert(std::endian::native == std::endian::little);

Result<uint32_t> Instance::ReadU32(uint64_t offset) {
  uint32_t value = 0;
  WASMLET_RETURN_IF_ERROR(ReadMemory(offset, {reinterpret_cast<uint8_t*>(&value), 4}));
  return value;
}

Status Instance::WriteU32(uint64_t offset, uint32_t value) {
  return WriteMemory(offset, {reinterpret_cast<const uint8_t*>(&value), 4});
}

Status Instance::WriteU64(uint64_t offset, uint64_t value) {
  return WriteMemory(offset, {reinterpret_cast<const uint8_t*>(&value), 8});
}

Result<std::unique_ptr<Engine>> CreateEngine(std::string_view name, Clock& clock, const EngineOptions& options) {
  if (name == "v8") return v8backend::CreateV8Engine(clock, options);
  return InvalidArgument("unknown wasm engine '" + std::string(name) + "'; wasmlet runs on: v8");
}

}  // namespace wasmlet::engine
