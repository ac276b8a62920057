// Decodes the ABI's header-map "pairs" format from arbitrary bytes; a map that decodes must
// encode back to bytes that decode to the same (lower-cased) pairs, of the announced size.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "abi/header_map.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_pairs: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wasmlet::abi;
  auto pairs = ParsePairs(std::span<const uint8_t>(data, size));
  if (!pairs) return 0;
  const HeaderMap map(*pairs);
  Check(map.size() == pairs->size(), "HeaderMap dropped or added pairs");
  for (size_t i = 0; i < pairs->size(); ++i) {
    Check(map.pairs()[i].first == ToLower((*pairs)[i].first) && map.pairs()[i].second == (*pairs)[i].second,
          "HeaderMap changed a pair other than by lower-casing its name");
  }
  const std::string encoded = map.Serialize();
  Check(encoded.size() == map.SerializedSize(), "SerializedSize() differs from Serialize().size()");
  auto decoded =
      ParsePairs(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(encoded.data()), encoded.size()));
  Check(decoded.has_value(), "ParsePairs rejects what Serialize wrote");
  Check(*decoded == map.pairs(), "Serialize then ParsePairs does not give the same pairs");
  return 0;
}
