#include "wasm/reader.h"

namespace wasmlet::wasm {

Status Reader::Error(std::string_view problem, std::string_view what) const {
  return InvalidArgument("not a valid WebAssembly module: " + std::string(problem) + " " + std::string(what) +
                         " at byte " + std::to_string(offset()));
}

Result<uint8_t> Reader::U8(std::string_view what) {
  if (pos_ >= bytes_.size()) return Error("truncated", what);
  return bytes_[pos_++];
}

Result<uint64_t> Reader::Leb(unsigned max_bits, std::string_view what) {
  const size_t start = pos_;
  uint64_t value = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (pos_ >= bytes_.size()) {
      pos_ = start;
      return Error("truncated", what);
    }
    const uint8_t byte = bytes_[pos_++];
    if (shift + 7 > max_bits) {
      // Last permitted byte: no continuation, and no bits beyond max_bits.
      const unsigned used = max_bits - shift;
      if ((byte & 0x80) != 0 || (byte >> used) != 0) {
        pos_ = start;
        return Error("integer too large in", what);
      }
    }
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
}

Result<uint32_t> Reader::U32(std::string_view what) {
  auto v = Leb(32, what);
  if (!v.ok()) return v.status();
  return static_cast<uint32_t>(*v);
}

Result<uint64_t> Reader::U64(std::string_view what) { return Leb(64, what); }

Result<std::span<const uint8_t>> Reader::Bytes(size_t n, std::string_view what) {
  if (n > remaining()) return Error("truncated", what);
  auto out = bytes_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Result<std::string> Reader::Name(std::string_view what) {
  auto len = U32(what);
  if (!len.ok()) return len.status();
  auto data = Bytes(*len, what);
  if (!data.ok()) return data.status();
  return std::string(reinterpret_cast<const char*>(data->data()), data->size());
}

void AppendLeb(std::string& out, uint64_t value) {
  do {
    uint8_t byte = value & 0x7f;
    value >>= 7;
    if (value != 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (value != 0);
}

}  // namespace wasmlet::wasm
