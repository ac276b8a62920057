// The benchmarks' large module: the echo function beside a few thousand distinct functions that
// a request can reach (header x-work), about 3 MB of wasm, as a function built with a full
// toolchain and real dependencies is. bench/run.sh installs it to time a compile against a
// load from the code cache.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

template <uint32_t N>
uint32_t Work(uint32_t x) {
  uint32_t h = x ^ (N * 2654435761u);
#pragma clang loop unroll(full)
  for (uint32_t i = 0; i < N % 5 + 8; ++i) {
    switch ((h + i * N) % 6) {
      case 0: h = h * 31u + N; break;
      case 1: h ^= h >> (N % 13 + 1); break;
      case 2: h = (h << 7 | h >> 25) + 0x9e3779b9u * (N | 1); break;
      case 3: h -= (N * 40503u) ^ (h >> 3); break;
      case 4: h = h / ((N % 97) + 2) + h * 3; break;
      default: h += (h & 0xff) * (N % 251 + 3);
    }
  }
  return h;
}

template <size_t... I>
constexpr std::array<uint32_t (*)(uint32_t), sizeof...(I)> Table(std::index_sequence<I...>) {
  return {&Work<static_cast<uint32_t>(I)>...};
}
constexpr auto kWork = Table(std::make_index_sequence<WASMLET_BIG_FUNCTIONS>());

class Big : public StreamContext {
 public:
  using StreamContext::StreamContext;
  Action OnRequestBody(size_t size, bool) override {
    std::string body = GetBuffer(BufferType::kHttpRequestBody, 0, size).value_or("");
    if (auto work = GetHeader(MapType::kRequestHeaders, "x-work"); work && !work->empty()) {
      const uint32_t n = static_cast<uint32_t>(std::strtoul(work->c_str(), nullptr, 10));
      body += " " + std::to_string(kWork[n % kWork.size()](n));
    }
    AppendBuffer(BufferType::kHttpResponseBody, body);
    return Action::kContinue;
  }
};

}  // namespace

WASMLET_REGISTER_PLUGIN(RootContext, Big)
WASMLET_FUNCTION_ID("big")
