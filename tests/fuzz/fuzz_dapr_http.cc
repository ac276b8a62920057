// Dapr's HTTP API (api/dapr_http.h, Server::HandleDaprHttp) on arbitrary requests. One server
// runs for the whole session, its components in memory: a state store, a lock store and a
// pub/sub, each named "s", and an app id. An input is
//
//   byte 0      bits 0-2: the method (GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, TRACE);
//               bit 3: send the right dapr-api-token; bit 4: a wrong one as well;
//               bit 5: an If-Match header with the rest of the first line after a '|'
//   then        the path (with its query), up to the first '\n'; the rest is the body.
//
// Every request must get one answer, with a status in 200..599; an answer that says it is JSON
// must parse, and an error answer (400 and up, but a function's own answer through /invoke)
// must be Dapr's {"errorCode": string, "message": string}.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "server/server.h"

namespace {

using wasmlet::abi::HttpRequest;
using wasmlet::abi::HttpResponse;

constexpr char kToken[] = "fuzz-token";
constexpr const char* kMethods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"};

[[noreturn]] void Fail(const std::string& what, const HttpRequest& request) {
  std::fprintf(stderr, "fuzz_dapr_http: %s %s: %s\n", request.method.c_str(), request.path.c_str(), what.c_str());
  std::abort();
}

wasmlet::server::Server& TheServer() {
  static wasmlet::server::Server* server = [] {
    wasmlet::server::ServerConfig config;
    config.admin_address = "";
    config.function_address = "127.0.0.1:0";
    config.dapr_http_address = "127.0.0.1:0";
    config.workers = 1;
    config.api_token = kToken;
    config.app.app_id = "fuzz";
    for (auto* kind : {&config.stores, &config.locks, &config.pubsubs}) {
      wasmlet::server::StoreConfig store;
      store.name = "s";
      store.type = "in-memory";
      store.json_path = "fuzz.s";
      (*kind)["s"] = store;
    }
    auto* s = new wasmlet::server::Server(config);  // never destroyed: it lives as long as the fuzzer
    wasmlet::Status started = s->Start();
    if (!started.ok()) {
      std::fprintf(stderr, "fuzz_dapr_http: the server does not start: %s\n", started.ToString().c_str());
      std::abort();
    }
    return s;
  }();
  return *server;
}

void CheckAnswer(const HttpRequest& request, const HttpResponse& response) {
  if (response.status < 200 || response.status > 599) Fail("status " + std::to_string(response.status), request);
  bool json = false;
  for (const auto& [name, value] : response.headers) json |= name == "content-type" && value == "application/json";
  const bool invoke = request.path.find("/invoke/") != std::string::npos;  // a function's own answer
  if (response.status >= 400 && !invoke && !json) Fail("an error answer that is not JSON", request);
  if (!json) return;
  const auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  // A state value is returned as it was saved: JSON from a JSON body, but any bytes otherwise.
  if (body.is_discarded()) {
    if (response.status >= 400) Fail("the error answer is not JSON: " + response.body, request);
    return;
  }
  if (response.status >= 400 && !(body.is_object() && body.contains("errorCode") && body["errorCode"].is_string() &&
                                   body.contains("message") && body["message"].is_string()))
    Fail("an error answer without Dapr's errorCode and message: " + response.body, request);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>()));
  spdlog::set_level(spdlog::level::trace);
  TheServer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t newline = rest.find('\n');
  std::string line = rest.substr(0, newline);
  HttpRequest request;
  request.method = kMethods[flags & 7];
  if (flags & 32) {
    const size_t bar = line.find('|');
    if (bar != std::string::npos) {
      request.headers.emplace_back("If-Match", line.substr(bar + 1));
      line.resize(bar);
    }
  }
  request.path = line;
  request.body = newline == std::string::npos ? "" : rest.substr(newline + 1);
  if (flags & 16) request.headers.emplace_back("dapr-api-token", "wrong");
  if (flags & 8) request.headers.emplace_back("dapr-api-token", kToken);
  const HttpResponse response = TheServer().HandleDaprHttp(request);
  static const bool trace = std::getenv("FUZZ_DAPR_TRACE") != nullptr;
  if (trace)
    std::fprintf(stderr, "%s %s -> %u %s\n", request.method.c_str(), request.path.c_str(), response.status,
                 response.body.c_str());
  CheckAnswer(request, response);
  return 0;
}
