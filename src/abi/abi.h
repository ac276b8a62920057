// Numbers of the Proxy-Wasm ABI (0.1.0 / 0.2.0 / 0.2.1) and of WASI preview 1, as the
// specifications define them. docs/proxy-wasm-abi.md is the reference.
#pragma once

#include <cstdint>

namespace wasmlet::abi {

// proxy_status_t: what every proxy_* host function returns.
enum class WasmResult : uint32_t {
  kOk = 0,
  kNotFound = 1,
  kBadArgument = 2,
  kSerializationFailure = 3,
  kParseFailure = 4,
  kInvalidMemoryAccess = 6,
  kEmpty = 7,
  kCasMismatch = 8,
  kInternalFailure = 10,
  kBrokenConnection = 11,
  kUnimplemented = 12,
};

enum class BufferType : uint32_t {
  kHttpRequestBody = 0,
  kHttpResponseBody = 1,
  kDownstreamData = 2,
  kUpstreamData = 3,
  kHttpCallResponseBody = 4,
  kGrpcReceiveBuffer = 5,
  kVmConfiguration = 6,
  kPluginConfiguration = 7,
  kCallData = 8,  // foreign function arguments; Layotto's proxy_get_id answer
};

enum class MapType : uint32_t {
  kHttpRequestHeaders = 0,
  kHttpRequestTrailers = 1,
  kHttpResponseHeaders = 2,
  kHttpResponseTrailers = 3,
  kGrpcReceiveInitialMetadata = 4,
  kGrpcReceiveTrailingMetadata = 5,
  kHttpCallResponseHeaders = 6,
  kHttpCallResponseTrailers = 7,
};

enum class LogLevel : uint32_t { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4, kCritical = 5 };

enum class StreamType : uint32_t { kHttpRequest = 0, kHttpResponse = 1, kDownstream = 2, kUpstream = 3 };

enum class MetricType : uint32_t { kCounter = 0, kGauge = 1, kHistogram = 2 };

// grpc_status values above this mean "not a gRPC response".
inline constexpr uint32_t kMaxGrpcStatus = 16;

// WASI preview 1 errno values the host returns.
enum class WasiErrno : uint32_t {
  kSuccess = 0,
  kBadf = 8,
  kFault = 21,
  kInval = 28,
  kNoent = 44,
  kNosys = 52,
  kNotdir = 54,
  kNotsup = 58,
};

}  // namespace wasmlet::abi
