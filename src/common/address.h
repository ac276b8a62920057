// Network addresses as configs write them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "common/status.h"

namespace wasmlet {

// "host:port", "[::1]:80" or ":2045" (any address) split; the port must be 0-65535. An empty
// host is returned as it is.
Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& address);

// "http://host:port" for "host:port" (brackets kept for IPv6).
std::string HttpBaseUrl(const std::string& host_port);

}  // namespace wasmlet
