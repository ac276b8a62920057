#include "common/address.h"

#include <charconv>
#include <string_view>

#include "common/text.h"

namespace wasmlet {

Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("\"" + Printable(address) + "\" is not host:port");
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string_view digits = std::string_view(address).substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || port > 65535)
    return InvalidArgument("\"" + Printable(address) + "\" has no valid port (0-65535)");
  return std::make_pair(host, static_cast<uint16_t>(port));
}

std::string HttpBaseUrl(const std::string& host_port) { return "http://" + host_port; }

}  // namespace wasmlet
