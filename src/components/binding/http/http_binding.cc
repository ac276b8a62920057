#include "components/binding/http/http_binding.h"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/http_client.h"
#include "common/text.h"

namespace wasmlet::components {
namespace {

constexpr std::pair<const char*, const char*> kOperations[] = {
    {"get", "GET"},       {"head", "HEAD"},   {"post", "POST"},       {"create", "POST"}, {"put", "PUT"},
    {"patch", "PATCH"},   {"delete", "DELETE"}, {"options", "OPTIONS"}, {"trace", "TRACE"}};

Result<uint64_t> NumberOf(const StoreConfig& config, const char* key, uint64_t fallback) {
  auto it = config.metadata.find(key);
  if (it == config.metadata.end() || it->second.empty()) return fallback;
  uint64_t value = 0;
  const std::string& text = it->second;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0)
    return InvalidArgument("config " + config.json_path + ".metadata." + key + ": \"" + Printable(text, 32) +
                           "\" is not a whole number above 0");
  return value;
}

class Http final : public BindingComponent {
 public:
  Http(std::string name, std::string url, std::chrono::milliseconds timeout, uint64_t max_response_bytes,
       bool error_if_not_2xx)
      : name_(std::move(name)), url_(std::move(url)), timeout_(timeout), max_response_bytes_(max_response_bytes),
        error_if_not_2xx_(error_if_not_2xx) {}

  std::vector<std::string> Operations() const override {
    std::vector<std::string> names;
    for (const auto& [operation, method] : kOperations) names.emplace_back(operation);
    return names;
  }

  Result<BindingResponse> Invoke(const BindingRequest& request) override {
    const char* method = nullptr;
    for (const auto& [operation, verb] : kOperations) {
      if (request.operation == operation) method = verb;
    }
    if (!method) {
      std::string names;
      for (const auto& [operation, verb] : kOperations) names += (names.empty() ? "" : ", ") + std::string(operation);
      return InvalidArgument("binding '" + name_ + "' (http) has no operation \"" + Printable(request.operation, 32) +
                             "\"; it takes " + names);
    }
    HttpClientRequest call;
    call.method = method;
    call.url = url_;
    call.timeout = timeout_;
    call.max_response_bytes = max_response_bytes_;
    for (const auto& [key, value] : request.metadata) {
      if (key == "path") {
        // Always a path below the URL's host: "x" and "/x" both end up as url + "/x", so that
        // no path can make the URL name another host ("@other-host").
        if (value.find_first_of(std::string_view("\0\r\n \t#", 6)) != std::string::npos)
          return InvalidArgument("binding '" + name_ + "': metadata path \"" + Printable(value, 128) +
                                 "\" holds a space, a control character or '#'");
        if (!value.empty()) {
          const bool slash_before = !call.url.empty() && call.url.back() == '/';
          const bool slash_after = value.front() == '/';
          if (slash_before && slash_after) call.url.pop_back();
          if (!slash_before && !slash_after && value.front() != '?') call.url += '/';
          call.url += value;
        }
        continue;
      }
      if (!IsHttpToken(key))
        return InvalidArgument("binding '" + name_ + "': metadata \"" + Printable(key, 64) +
                               "\" cannot be sent as an HTTP header (not a token)");
      if (value.find_first_of(std::string_view("\0\r\n", 3)) != std::string::npos)
        return InvalidArgument("binding '" + name_ + "': the value of metadata \"" + Printable(key, 64) +
                               "\" holds a line break or NUL");
      call.headers.emplace_back(key, value);
    }
    call.body = request.data;
    auto answer = HttpFetch(call);
    if (!answer.ok())
      return Status(answer.status().code(), "binding '" + name_ + "': " + answer.status().message());
    if (error_if_not_2xx_ && (answer->status < 200 || answer->status > 299)) {
      std::string_view body = answer->body;
      while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
      return Internal("binding '" + name_ + "': " + call.method + " " + Printable(call.url, 256) + " answered " +
                      std::to_string(answer->status) + (body.empty() ? "" : ": " + Printable(body, 512)));
    }
    BindingResponse response;
    response.data = std::move(answer->body);
    for (auto& [header, value] : answer->headers) {
      std::string& kept = response.metadata[header];
      kept = kept.empty() ? value : kept + ", " + value;
    }
    response.metadata["statusCode"] = std::to_string(answer->status);
    response.metadata["status"] = std::to_string(answer->status);
    return response;
  }

 private:
  const std::string name_;
  const std::string url_;
  const std::chrono::milliseconds timeout_;
  const uint64_t max_response_bytes_;
  const bool error_if_not_2xx_;
};

}  // namespace

Result<std::unique_ptr<BindingComponent>> HttpBinding(const StoreConfig& config) {
  const std::string where = "config " + config.json_path + ".metadata";
  auto it = config.metadata.find("url");
  const std::string url = it == config.metadata.end() ? "" : it->second;
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    return InvalidArgument(where + ".url: " + (url.empty() ? "missing" : "\"" + Printable(url, 128) + "\" is not an http:// or https:// URL") +
                           " (the address every invoke of the binding goes to)");
  auto timeout = NumberOf(config, "timeoutMs", 10000);
  if (!timeout.ok()) return timeout.status();
  auto max_bytes = NumberOf(config, "maxResponseBytes", 4 << 20);
  if (!max_bytes.ok()) return max_bytes.status();
  auto flag = config.metadata.find("errorIfNot2XX");
  const std::string error_if = flag == config.metadata.end() ? "true" : flag->second;
  if (error_if != "true" && error_if != "false")
    return InvalidArgument(where + ".errorIfNot2XX: \"" + Printable(error_if, 32) + "\" is not \"true\" or \"false\"");
  return std::unique_ptr<BindingComponent>(std::make_unique<Http>(
      config.name, url, std::chrono::milliseconds(*timeout), *max_bytes, error_if == "true"));
}

}  // namespace wasmlet::components
