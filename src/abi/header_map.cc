#include "abi/header_map.h"

#include <cstring>

namespace wasmlet::abi {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

void PutU32(std::string& out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian host (checked in engine.cc)
  out.append(b, 4);
}

uint32_t GetU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

HeaderMap::HeaderMap(const HeaderList& pairs) {
  pairs_.reserve(pairs.size());
  for (const auto& [name, value] : pairs) pairs_.emplace_back(ToLower(name), value);
}

std::optional<std::string_view> HeaderMap::Get(std::string_view name) const {
  for (const auto& [n, v] : pairs_) {
    if (EqualsIgnoreCase(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

void HeaderMap::Add(std::string_view name, std::string_view value) {
  pairs_.emplace_back(ToLower(name), std::string(value));
}

void HeaderMap::Replace(std::string_view name, std::string_view value) {
  bool replaced = false;
  for (auto it = pairs_.begin(); it != pairs_.end();) {
    if (EqualsIgnoreCase(it->first, name)) {
      if (replaced) {
        it = pairs_.erase(it);  // replace leaves exactly one value
        continue;
      }
      it->second = std::string(value);
      replaced = true;
    }
    ++it;
  }
  if (!replaced) Add(name, value);
}

void HeaderMap::Remove(std::string_view name) {
  std::erase_if(pairs_, [&](const auto& p) { return EqualsIgnoreCase(p.first, name); });
}

size_t PairsSize(const HeaderList& pairs) {
  if (pairs.empty()) return 0;
  size_t size = 4;
  for (const auto& [n, v] : pairs) size += 8 + n.size() + 1 + v.size() + 1;
  return size;
}

std::string SerializePairs(const HeaderList& pairs) {
  std::string out;
  if (pairs.empty()) return out;
  out.reserve(PairsSize(pairs));
  PutU32(out, static_cast<uint32_t>(pairs.size()));
  for (const auto& [n, v] : pairs) {
    PutU32(out, static_cast<uint32_t>(n.size()));
    PutU32(out, static_cast<uint32_t>(v.size()));
  }
  for (const auto& [n, v] : pairs) {
    out += n;
    out.push_back('\0');
    out += v;
    out.push_back('\0');
  }
  return out;
}

size_t HeaderMap::SerializedSize() const { return PairsSize(pairs_); }
std::string HeaderMap::Serialize() const { return SerializePairs(pairs_); }

std::optional<HeaderList> ParsePairs(std::span<const uint8_t> bytes) {
  HeaderList pairs;
  if (bytes.empty() || (bytes.size() == 1 && bytes[0] == 0)) return pairs;
  if (bytes.size() < 4 || bytes.size() > kMaxMapBytes) return std::nullopt;
  const uint64_t n = GetU32(bytes.data());
  if (n > kMaxMapPairs || 4 + n * 8 > bytes.size()) return std::nullopt;
  uint64_t pos = 4 + n * 8;
  pairs.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t name_len = GetU32(bytes.data() + 4 + i * 8);
    const uint64_t value_len = GetU32(bytes.data() + 8 + i * 8);
    if (pos + name_len + 1 + value_len + 1 > bytes.size()) return std::nullopt;
    const char* base = reinterpret_cast<const char*>(bytes.data());
    if (bytes[pos + name_len] != 0 || bytes[pos + name_len + 1 + value_len] != 0) return std::nullopt;
    pairs.emplace_back(std::string(base + pos, name_len), std::string(base + pos + name_len + 1, value_len));
    pos += name_len + 1 + value_len + 1;
  }
  if (pos != bytes.size()) return std::nullopt;
  return pairs;
}

}  // namespace wasmlet::abi
