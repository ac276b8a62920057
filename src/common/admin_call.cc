#include "common/admin_call.h"

#include <nlohmann/json.hpp>

#include "common/address.h"

namespace wasmlet {

Result<HttpClientResponse> CallAdmin(const std::string& address, const std::string& token,
                                     const std::string& method, const std::string& target,
                                     const std::string& body, std::chrono::milliseconds timeout) {
  HttpClientRequest request{.method = method,
                            .url = HttpBaseUrl(address) + target,
                            .headers = {{"Content-Type", "application/json"}},
                            .body = body,
                            .timeout = timeout};
  if (!token.empty()) request.headers.emplace_back("Authorization", "Bearer " + token);
  return HttpFetch(request);
}

std::string AdminErrorOf(const std::string& body) {
  const nlohmann::json answer = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (answer.is_object() && answer.contains("error") && answer["error"].is_string())
    return answer["error"].get<std::string>();
  return body;
}

}  // namespace wasmlet
