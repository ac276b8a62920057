// wasmlet's one way to make an outbound HTTP request (remote proxy_invoke_service, the
// shim's calls to the node daemon's admin API, module downloads): libcurl, whose timeout
// covers the whole exchange (resolve, connect, send, receive) even though the call blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace wasmlet {

struct HttpClientRequest {
  std::string method = "GET";
  std::string url;  // http:// or https:// only
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{3000};  // for the whole exchange
  uint64_t max_response_bytes = 64 << 20;
  bool follow_redirects = false;  // to http(s) only, at most 5
};

struct HttpClientResponse {
  int status = 0;
  std::string body;
  // The final answer's headers, in order, names as the server spelled them.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Any answer the server gave is a response (a 404 too). Errors: kDeadlineExceeded past the
// timeout, kResourceExhausted for a body over max_response_bytes, kUnavailable when the
// server cannot be reached, kInvalidArgument for a URL that is not http(s).
Result<HttpClientResponse> HttpFetch(const HttpClientRequest& request);

}  // namespace wasmlet
