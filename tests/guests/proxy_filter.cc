// One Proxy-Wasm filter for the proxy tests, written with the SDK. Its plugin configuration (plain
// text, space-separated `key=value` tokens, e.g. `tag=a call=auth_cluster local_at=response_headers`)
// switches on independent behaviours; unknown keys are ignored.
//
//   tag=T                    name of this filter (default "f"): appended to the request header
//                            x-chain and the response header x-chain-response ("a" -> "a,T"), and
//                            used in x-filter-T-seen-status and in local responses
//   add_response_header=N:V  adds response header N: V
//   local_at=PHASE           answers 403 "denied by T at PHASE\n" (x-denied-by: T) in PHASE, one of
//                            request_headers, request_body, response_headers, response_body (the
//                            body phases at end of stream)
//   call=UPSTREAM            pauses the request on an HTTP call (GET call_path, default "/auth",
//                            authority "auth", timeout call_timeout_ms, default 2000); a 200 answer
//                            adds x-auth-status and x-auth-body and resumes, anything else ends the
//                            request (503 when the call failed, 403 otherwise)
//   call_no_headers=URL      the same, with no headers at all: the host derives them from the URL
//   buffer_body=1            buffers the request body and appends "+T" to it
//   rewrite_response=FROM:TO buffers the response body and replaces every FROM with TO
//   tick_call=UPSTREAM       every 100 ms the root calls UPSTREAM (GET /tick) and keeps the answer's
//                            body in shared data; responses carry it as x-tick-result
//   detach_call=UPSTREAM     starts a call (GET detach_path, default "/slow", timeout 5000) and does
//                            not wait for it; its answer, if it ever comes, sets shared data
//                            proxy_filter.detached_answered=1. Responses carry x-dropped-responses.
//
// Every response gets x-filter-T-seen-status: the :status this filter saw.
#include <algorithm>
#include <string>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

constexpr std::string_view kTickResultKey = "proxy_filter.tick_result";
constexpr std::string_view kDetachedAnsweredKey = "proxy_filter.detached_answered";
constexpr size_t kBodyExcerpt = 64;

struct Config {
  std::string tag = "f";
  std::string add_response_header;  // NAME:VALUE
  std::string local_at;
  std::string call;
  std::string trap_path;  // a request to this path makes the instance trap
  std::string call_no_headers;
  std::string call_path = "/auth";
  uint32_t call_timeout_ms = 2000;
  bool buffer_body = false;
  std::string rewrite_response;  // FROM:TO
  std::string tick_call;
  std::string detach_call;
  std::string detach_path = "/slow";
};

// A number made of digits only, or `fallback`.
uint32_t ToNumber(std::string_view text, uint32_t fallback) {
  if (text.empty() || text.size() > 9) return fallback;
  uint32_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return fallback;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n;
}

Config ParseConfig(std::string_view text) {
  Config config;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = std::min(text.find(' ', pos), text.size());
    const std::string_view token = text.substr(pos, end - pos);
    pos = end + 1;
    const size_t eq = token.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = token.substr(0, eq);
    const std::string value(token.substr(eq + 1));
    if (key == "tag") config.tag = value;
    if (key == "add_response_header") config.add_response_header = value;
    if (key == "local_at") config.local_at = value;
    if (key == "call") config.call = value;
    if (key == "trap_path") config.trap_path = value;
    if (key == "call_no_headers") config.call_no_headers = value;
    if (key == "call_path") config.call_path = value;
    if (key == "call_timeout_ms") config.call_timeout_ms = ToNumber(value, config.call_timeout_ms);
    if (key == "buffer_body") config.buffer_body = value == "1";
    if (key == "rewrite_response") config.rewrite_response = value;
    if (key == "tick_call") config.tick_call = value;
    if (key == "detach_call") config.detach_call = value;
    if (key == "detach_path") config.detach_path = value;
  }
  return config;
}

// "NAME:VALUE" split at the first colon; nothing when there is no colon.
std::optional<std::pair<std::string, std::string>> SplitAtColon(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::make_pair(text.substr(0, colon), text.substr(colon + 1));
}

// The first bytes of the callout's answer, fit for a header value.
std::string CallResponseExcerpt() {
  std::string body = GetBuffer(BufferType::kHttpCallResponseBody, 0, kBodyExcerpt).value_or("");
  std::erase_if(body, [](char c) { return c == '\r' || c == '\n'; });
  return body;
}

// Appends `tag` to a comma-separated header: absent or empty -> "tag", "a" -> "a,tag".
void AppendToList(MapType map, std::string_view name, std::string_view tag) {
  std::string list = GetHeader(map, name).value_or("");
  if (!list.empty()) list += ",";
  list += tag;
  ReplaceHeader(map, name, list);
}

std::string StatusNumber(Status status) { return std::to_string(static_cast<uint32_t>(status)); }

// An integer property (8 bytes, little-endian) as decimal text; "none" when absent.
std::string Int64Property(std::initializer_list<std::string_view> path) {
  auto bytes = GetProperty(path);
  if (!bytes || bytes->size() != 8) return "none";
  int64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>((*bytes)[static_cast<size_t>(i)]);
  return std::to_string(value);
}

class Root : public RootContext {
 public:
  using RootContext::RootContext;

  bool OnConfigure(size_t size) override {
    config_ = ParseConfig(GetBuffer(BufferType::kPluginConfiguration, 0, size).value_or(""));
    if (!config_.tick_call.empty()) SetTickPeriodMilliseconds(100);
    return true;
  }

  void OnTick() override {
    if (config_.tick_call.empty() || tick_call_in_flight_) return;
    Status status = Status::kOk;
    tick_call_in_flight_ =
        HttpCall(config_.tick_call, {{":method", "GET"}, {":path", "/tick"}, {":authority", "tick"}}, "", {},
                 config_.call_timeout_ms, &status)
            .has_value();
    if (!tick_call_in_flight_)
      Log(LogLevel::kWarn, "proxy_filter: tick call failed: " + StatusNumber(status));
  }

  void OnHttpCallResponse(uint32_t, uint32_t headers, size_t, uint32_t) override {
    tick_call_in_flight_ = false;
    if (headers == 0) {
      Log(LogLevel::kWarn, "proxy_filter: tick call got no answer");
      return;
    }
    SetSharedData(kTickResultKey, CallResponseExcerpt());
  }

  const Config& config() const { return config_; }

 private:
  Config config_;
  bool tick_call_in_flight_ = false;
};

class Stream : public StreamContext {
 public:
  using StreamContext::StreamContext;

  Action OnRequestHeaders(uint32_t, bool) override {
    AppendToList(MapType::kRequestHeaders, "x-chain", config().tag);
    if (config().local_at == "request_headers") return Deny();
    if (!config().trap_path.empty() && GetHeader(MapType::kRequestHeaders, ":path") == config().trap_path) {
      __builtin_trap();
    }
    if (!config().detach_call.empty()) {
      detach_token_ = HttpCall(config().detach_call,
                               {{":method", "GET"}, {":path", config().detach_path}, {":authority", "slow"}},
                               "", {}, 5000);
      if (!detach_token_) Log(LogLevel::kWarn, "proxy_filter: detached call failed to start");
    }
    if (!config().call.empty()) {
      const Headers headers = {{":method", "GET"}, {":path", config().call_path}, {":authority", "auth"}};
      if (!StartAuthCall(config().call, headers)) return Action::kPause;
    }
    if (!config().call_no_headers.empty()) {
      if (!StartAuthCall(config().call_no_headers, {})) return Action::kPause;
    }
    return auth_calls_pending_ > 0 ? Action::kPause : Action::kContinue;
  }

  Action OnRequestBody(size_t, bool end_of_stream) override {
    if (config().local_at == "request_body" && end_of_stream) return Deny();
    if (!config().buffer_body) return Action::kContinue;
    if (!end_of_stream) return Action::kPause;
    AppendBuffer(BufferType::kHttpRequestBody, "+" + config().tag);
    return Action::kContinue;
  }

  Action OnResponseHeaders(uint32_t, bool) override {
    AddHeader(MapType::kResponseHeaders, "x-filter-" + config().tag + "-seen-status",
              GetHeader(MapType::kResponseHeaders, ":status").value_or("none"));
    // Where the router sent the request, as the properties of proxy mode say it.
    AddHeader(MapType::kResponseHeaders, "x-filter-" + config().tag + "-route",
              GetProperty({"route_name"}).value_or("none") + " " +
                  GetProperty({"cluster_name"}).value_or("none") + " " +
                  GetProperty({"upstream", "address"}).value_or("none") + " " +
                  Int64Property({"response", "code"}));
    AppendToList(MapType::kResponseHeaders, "x-chain-response", config().tag);
    if (auto header = SplitAtColon(config().add_response_header)) {
      AddHeader(MapType::kResponseHeaders, header->first, header->second);
    }
    if (!config().tick_call.empty()) {
      if (auto tick_result = GetSharedData(kTickResultKey)) {
        AddHeader(MapType::kResponseHeaders, "x-tick-result", tick_result->value);
      }
    }
    if (!config().detach_call.empty()) {
      AddHeader(MapType::kResponseHeaders, "x-dropped-responses", std::to_string(DroppedHttpCallResponses()));
    }
    if (config().local_at == "response_headers") return Deny();
    return Action::kContinue;
  }

  Action OnResponseBody(size_t, bool end_of_stream) override {
    if (config().local_at == "response_body" && end_of_stream) return Deny();
    auto rewrite = SplitAtColon(config().rewrite_response);
    if (!rewrite || rewrite->first.empty()) return Action::kContinue;
    if (!end_of_stream) return Action::kPause;
    std::string body = GetBuffer(BufferType::kHttpResponseBody).value_or("");
    const auto& [from, to] = *rewrite;
    for (size_t at = body.find(from); at != std::string::npos; at = body.find(from, at + to.size())) {
      body.replace(at, from.size(), to);
    }
    ReplaceBuffer(BufferType::kHttpResponseBody, body);
    return Action::kContinue;
  }

  void OnHttpCallResponse(uint32_t token, uint32_t headers, size_t, uint32_t) override {
    if (detach_token_ && token == *detach_token_) {
      SetSharedData(kDetachedAnsweredKey, "1");
      return;
    }
    if (answered_) return;  // an earlier auth answer already ended the request
    if (headers == 0) {
      answered_ = true;
      SendLocalResponse(503, "auth call failed\n");
      return;
    }
    const uint32_t status = GetHttpCallStatus();
    if (status != 200) {
      answered_ = true;
      SendLocalResponse(403, "auth answered " + std::to_string(status) + "\n");
      return;
    }
    AddHeader(MapType::kRequestHeaders, "x-auth-status", "200");
    AddHeader(MapType::kRequestHeaders, "x-auth-body", CallResponseExcerpt());
    if (--auth_calls_pending_ == 0) ContinueRequest();
  }

 private:
  const Config& config() const { return static_cast<Root*>(root())->config(); }

  Action Deny() {
    const std::string& tag = config().tag;
    SendLocalResponse(403, "denied by " + tag + " at " + config().local_at + "\n", {{"x-denied-by", tag}});
    return Action::kPause;
  }

  // Starts a call the request waits for; on failure ends the request with a 500.
  bool StartAuthCall(const std::string& upstream, const Headers& headers) {
    Status status = Status::kOk;
    if (HttpCall(upstream, headers, "", {}, config().call_timeout_ms, &status)) {
      ++auth_calls_pending_;
      return true;
    }
    answered_ = true;
    SendLocalResponse(500, "http_call failed: " + StatusNumber(status) + "\n");
    return false;
  }

  std::optional<uint32_t> detach_token_;
  int auth_calls_pending_ = 0;
  bool answered_ = false;  // a local response has ended the request
};

}  // namespace

WASMLET_REGISTER_PLUGIN(Root, Stream)
