// One call to a wasmlet server's admin API (docs/server.md, Operations), as the CLI's admin
// commands and the containerd shim make it: JSON body, bearer token, one timeout for the whole
// exchange.
#pragma once

#include <chrono>
#include <string>

#include "common/http_client.h"
#include "common/status.h"

namespace wasmlet {

// Any answer the server gave (a 4xx too). Errors are HttpFetch's: kUnavailable when nothing
// answers at `address`, kDeadlineExceeded past `timeout`.
Result<HttpClientResponse> CallAdmin(const std::string& address, const std::string& token,
                                     const std::string& method, const std::string& target,
                                     const std::string& body, std::chrono::milliseconds timeout);

// What an admin answer's body says went wrong: its JSON "error" field, else the body itself.
std::string AdminErrorOf(const std::string& body);

}  // namespace wasmlet
