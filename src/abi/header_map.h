// Header maps as the ABI moves them: an ordered list of (name, value) byte strings with
// lower-case names, and the "pairs" wire format of ABI §6.1:
//
//   u32 N | N x (u32 name_len, u32 value_len) | N x (name, 0x00, value, 0x00)
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wasmlet::abi {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class HeaderMap {
 public:
  HeaderMap() = default;
  // Names are stored lower-case; order is kept.
  explicit HeaderMap(const HeaderList& pairs);

  const HeaderList& pairs() const { return pairs_; }
  size_t size() const { return pairs_.size(); }
  bool empty() const { return pairs_.empty(); }

  // The first value of `name` (case-insensitive), or nullopt.
  std::optional<std::string_view> Get(std::string_view name) const;
  void Add(std::string_view name, std::string_view value);      // appends another value
  void Replace(std::string_view name, std::string_view value);  // first value, or appends
  void Remove(std::string_view name);                           // every value; fine if absent
  void Clear() { pairs_.clear(); }
  void Reserve(size_t pairs) { pairs_.reserve(pairs); }

  // Encoded size in the pairs format (0 for an empty map, which travels as null + 0).
  size_t SerializedSize() const;
  std::string Serialize() const;

 private:
  HeaderList pairs_;
};

// Limits on a map coming from a guest (the reference host's values).
inline constexpr size_t kMaxMapPairs = 1024;
inline constexpr size_t kMaxMapBytes = 1 << 20;

// The pairs format of `pairs` as they are (names keep their case: for maps that are not
// headers, such as secrets), and its size.
std::string SerializePairs(const HeaderList& pairs);
size_t PairsSize(const HeaderList& pairs);

// Decodes the pairs format. Accepts the three empty forms (0 bytes, one 0x00 byte, N = 0).
// Returns nullopt for malformed input; nothing is changed then.
std::optional<HeaderList> ParsePairs(std::span<const uint8_t> bytes);

std::string ToLower(std::string_view s);

}  // namespace wasmlet::abi
