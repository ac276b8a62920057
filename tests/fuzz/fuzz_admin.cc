// The admin API (Server::HandleAdmin) on arbitrary requests. One server runs for the whole
// session: no plugins in its config, a token, both listeners on loopback port 0. An input is
//
//   byte 0      bits 0-1: the method (GET, POST, PUT, DELETE); bit 2: send the right bearer
//               token; bit 3: spell the header "Authorization" (the check is case-insensitive);
//               bit 4: send a wrong token as well
//   then        the path, up to the first '\n'; the rest is the body.
//
// A function named "resident" (tests/fuzz/guest/host_caller.c, one instance) is installed
// before every input, and anything else is removed after it.
//
// Every request must be answered exactly once, with a status in 200..599 and, when the answer
// says it is JSON, a body that parses: an object with an "error" string for errors. Install
// bodies name module files and URLs: the server must refuse whatever does not hold a working
// module. Relative paths are resolved against the working directory; scripts/fuzz.sh runs from
// the repository root, where the seeds' paths (tests/fuzz/corpus/...) point.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "server/server.h"

namespace {

using wasmlet::abi::HttpRequest;
using wasmlet::abi::HttpResponse;

constexpr char kToken[] = "fuzz-token";
constexpr const char* kMethods[] = {"GET", "POST", "PUT", "DELETE"};

[[noreturn]] void Fail(const std::string& what, const HttpRequest& request) {
  std::fprintf(stderr, "fuzz_admin: %s %s: %s\n", request.method.c_str(), request.path.c_str(), what.c_str());
  std::abort();
}

wasmlet::server::Server& TheServer() {
  static wasmlet::server::Server* server = [] {
    wasmlet::server::ServerConfig config;
    config.admin_address = "127.0.0.1:0";
    config.function_address = "127.0.0.1:0";
    config.workers = 1;
    config.admin_token = kToken;
    auto* s = new wasmlet::server::Server(config);  // never destroyed: it lives as long as the fuzzer
    wasmlet::Status started = s->Start();
    if (!started.ok()) {
      std::fprintf(stderr, "fuzz_admin: the server does not start: %s\n", started.ToString().c_str());
      std::abort();
    }
    return s;
  }();
  return *server;
}

// Sends one request and waits for its answer (installs answer from the admin jobs thread).
HttpResponse Call(HttpRequest request) {
  auto answer = std::make_shared<std::promise<HttpResponse>>();
  auto answered = std::make_shared<std::atomic<bool>>(false);
  std::future<HttpResponse> future = answer->get_future();
  const HttpRequest shown = request;
  TheServer().HandleAdmin(std::move(request), [answer, answered, shown](HttpResponse response) {
    if (answered->exchange(true)) Fail("answered twice", shown);
    answer->set_value(std::move(response));
  });
  // Well past any deadline of the server (module reads and downloads give up after 10 s).
  if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
    Fail("no answer in 60 s", shown);
  return future.get();
}

void CheckAnswer(const HttpRequest& request, const HttpResponse& response) {
  if (response.status < 200 || response.status > 599)
    Fail("status " + std::to_string(response.status), request);
  bool json = false;
  for (const auto& [name, value] : response.headers)
    json |= name == "content-type" && value == "application/json";
  if (!json) return;  // /metrics: Prometheus text
  const auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) Fail("the answer is not JSON: " + response.body, request);
  if (!body.is_object() && !body.is_array())
    Fail("the answer is neither an object nor a list: " + response.body, request);
  if (response.status >= 400 && !(body.is_object() && body.contains("error") && body["error"].is_string()))
    Fail("an error answer without an \"error\" string: " + response.body, request);
}

HttpRequest AdminRequest(std::string method, std::string path, std::string body = "") {
  HttpRequest request;
  request.method = std::move(method);
  request.path = std::move(path);
  request.body = std::move(body);
  request.headers.emplace_back("authorization", std::string("Bearer ") + kToken);
  return request;
}

// One function is always installed, so that updates and uninstalls have something to act on.
constexpr char kResident[] = "resident";

std::string ResidentItem() {
  return nlohmann::json{
      {"name", kResident}, {"instance_num", 1}, {"vm_config", {{"path", WASMLET_FUZZ_GUEST}}}}
      .dump();
}

// Brings the server back to its state before the input: the resident function alone, with one
// instance. Inputs then do not depend on the ones before them.
void Reset() {
  const HttpResponse list = Call(AdminRequest("GET", "/wasm/list"));
  const auto functions = nlohmann::json::parse(list.body, nullptr, false);
  if (!functions.is_array())
    Fail("/wasm/list is not a list: " + list.body, AdminRequest("GET", "/wasm/list"));
  bool resident = false;
  for (const auto& function : functions) {
    HttpRequest request;
    if (function.value("name", "") == kResident) {
      resident = true;
      if (function.value("instances", 0) == 1) continue;
      request = AdminRequest("POST", "/wasm/update",
                             nlohmann::json{{"name", kResident}, {"instance_num", 1}}.dump());
    } else {
      request =
          AdminRequest("POST", "/wasm/uninstall", nlohmann::json{{"plugin", function.at("name")}}.dump());
    }
    const HttpResponse response = Call(request);
    if (response.status != 200) Fail("cannot reset the server: " + response.body, request);
  }
  if (!resident) {
    const HttpRequest request = AdminRequest("POST", "/wasm/install", ResidentItem());
    const HttpResponse response = Call(request);
    if (response.status != 200) Fail("cannot install the resident function: " + response.body, request);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The server logs every refusal: format each line (that code runs too), write none.
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>()));
  spdlog::set_level(spdlog::level::trace);
  // Module URLs go to a proxy that refuses at once: an input naming some host on the internet
  // must not make the fuzzer wait on the network (or depend on it).
  for (const char* name : {"http_proxy", "https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"})
    setenv(name, "http://127.0.0.1:9", 1);
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  Reset();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t newline = rest.find('\n');
  HttpRequest request;
  request.method = kMethods[flags & 3];
  request.path = rest.substr(0, newline);
  request.body = newline == std::string::npos ? "" : rest.substr(newline + 1);
  const char* header = flags & 8 ? "Authorization" : "authorization";
  if (flags & 16) request.headers.emplace_back(header, "Bearer wrong");
  if (flags & 4) request.headers.emplace_back(header, std::string("Bearer ") + kToken);

  const HttpRequest shown = request;
  const HttpResponse response = Call(std::move(request));
  // FUZZ_ADMIN_TRACE=1 shows the exchange (for replaying a reproducer).
  static const bool trace = std::getenv("FUZZ_ADMIN_TRACE") != nullptr;
  if (trace) {
    std::fprintf(stderr, "%s %s -> %u %s", shown.method.c_str(), shown.path.c_str(), response.status,
                 response.body.c_str());
  }
  CheckAnswer(shown, response);
  Reset();
  return 0;
}
