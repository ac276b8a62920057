// Helpers shared by the tests: guest modules built from source, and hand-made binaries.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

namespace wasmlet::testing {

inline std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path << " (is the build complete?)";
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A guest module from tests/guests, built by CMake.
inline std::vector<uint8_t> GuestBytes(const std::string& name) {
  return ReadBytes(std::string(WASMLET_TEST_GUESTS) + "/" + name + ".wasm");
}

// Builds a module binary section by section, for shapes a compiler will not produce.
class ModuleBytes {
 public:
  ModuleBytes() : bytes_{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00} {}
  ModuleBytes& Section(uint8_t id, std::initializer_list<uint8_t> payload) {
    return Section(id, std::vector<uint8_t>(payload));
  }
  ModuleBytes& Section(uint8_t id, const std::vector<uint8_t>& payload) {
    bytes_.push_back(id);
    Leb(bytes_, payload.size());
    bytes_.insert(bytes_.end(), payload.begin(), payload.end());
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

  static void Leb(std::vector<uint8_t>& out, uint64_t v) {
    do {
      uint8_t b = v & 0x7f;
      v >>= 7;
      out.push_back(v ? (b | 0x80) : b);
    } while (v);
  }
  static std::vector<uint8_t> Name(const std::string& s) {
    std::vector<uint8_t> out;
    Leb(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
    return out;
  }

 private:
  std::vector<uint8_t> bytes_;
};

template <typename... Parts>
std::vector<uint8_t> Concat(const Parts&... parts) {
  std::vector<uint8_t> out;
  (out.insert(out.end(), std::begin(parts), std::end(parts)), ...);
  return out;
}

}  // namespace wasmlet::testing
