// An HTTP request and response as the ABI sees them: what a plugin's stream callbacks read and
// write, and what the HTTP listener hands over and sends back. Plain values, no behaviour.
#pragma once

#include <cstdint>
#include <string>

#include "abi/header_map.h"

namespace wasmlet::abi {

struct HttpRequest {
  std::string method = "GET";
  std::string path = "/";  // with the query string
  std::string authority;
  std::string scheme = "http";
  std::string protocol = "HTTP/1.1";
  HeaderList headers;  // without pseudo-headers
  std::string body;
  HeaderList trailers;
  std::string source_address;
  uint32_t source_port = 0;
  std::string destination_address;
  uint32_t destination_port = 0;
};

struct HttpResponse {
  uint32_t status = 200;
  HeaderList headers;  // without :status
  std::string body;
  HeaderList trailers;
  bool local = false;   // sent by the guest with proxy_send_local_response
  std::string details;  // the guest's reason for a local response
};

}  // namespace wasmlet::abi
