// Cursor over a WebAssembly binary with bounds-checked reads of its primitive encodings.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wasmlet::wasm {

class Reader {
 public:
  // `base_offset` is the position of bytes[0] in the whole binary, for error messages.
  explicit Reader(std::span<const uint8_t> bytes, size_t base_offset = 0)
      : bytes_(bytes), base_offset_(base_offset) {}

  bool done() const { return pos_ == bytes_.size(); }
  size_t offset() const { return base_offset_ + pos_; }  // position in the whole binary
  size_t remaining() const { return bytes_.size() - pos_; }

  Result<uint8_t> U8(std::string_view what);
  Result<uint32_t> U32(std::string_view what);  // unsigned LEB128, at most 5 bytes
  Result<uint64_t> U64(std::string_view what);  // unsigned LEB128, at most 10 bytes
  Result<std::string> Name(std::string_view what);
  // The next `n` bytes; advances past them.
  Result<std::span<const uint8_t>> Bytes(size_t n, std::string_view what);

  // "truncated <what> at byte 12" style error at the current position.
  Status Error(std::string_view problem, std::string_view what) const;

 private:
  Result<uint64_t> Leb(unsigned max_bits, std::string_view what);

  std::span<const uint8_t> bytes_;
  size_t base_offset_;
  size_t pos_ = 0;
};

// Appends `value` as unsigned LEB128.
void AppendLeb(std::string& out, uint64_t value);

}  // namespace wasmlet::wasm
