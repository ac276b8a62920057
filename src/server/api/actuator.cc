#include "server/api/actuator.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace wasmlet::server {
namespace {

abi::HttpResponse Health(bool up, const std::string& reason) {
  const char* status = up ? "UP" : "DOWN";
  nlohmann::json body = {
      {"status", status},
      {"components", {{"runtime_startup", {{"status", status}, {"details", {{"reason", reason}}}}}}}};
  abi::HttpResponse response;
  response.status = up ? 200 : 503;
  response.headers = {{"content-type", "application/json"}};
  response.body = body.dump();
  return response;
}

}  // namespace

Actuator::Actuator(const ServerConfig& config, std::vector<boost::asio::io_context*> loops,
                   const std::atomic<bool>& ready)
    : config_(config), loops_(std::move(loops)), ready_(ready) {}

abi::HttpResponse Actuator::Answer(const abi::HttpRequest& request, bool ready) {
  std::string_view path = request.path;
  if (auto query = path.find('?'); query != std::string_view::npos) path = path.substr(0, query);
  if (request.method != "GET" && request.method != "HEAD") {
    abi::HttpResponse refused = Health(false, "use GET");
    refused.status = 405;
    refused.headers.emplace_back("allow", "GET, HEAD");
    return refused;
  }
  if (path == "/actuator/health/liveness") return Health(true, "");
  if (path == "/actuator/health/readiness") return Health(ready, ready ? "" : "wasmlet is starting or stopping");
  abi::HttpResponse missing;
  missing.status = 404;
  missing.headers = {{"content-type", "text/plain"}};
  missing.body = "no such endpoint: the actuator answers GET /actuator/health/liveness and "
                 "/actuator/health/readiness\n";
  return missing;
}

Status Actuator::Start() {
  for (const ActuatorListenerConfig& listener : config_.actuator_listeners) {
    // Probes are small: a short body limit and few connections are all they need.
    auto http = std::make_unique<HttpServer>(
        loops_, HttpServer::Options{.max_request_body = 4096, .max_connections = 256},
        [this](abi::HttpRequest request, Respond respond) { respond(Answer(request, ready_.load())); });
    Status listening = http->Listen(listener.address);
    if (!listening.ok())
      return Status(listening.code(), "config " + listener.json_path + ": the actuator cannot listen on " +
                                          listener.address + ": " + listening.message());
    spdlog::info("serving the actuator (/actuator/health/...) on {} port {}", listener.name, http->port());
    listening_.push_back({listener.name, std::move(http)});
  }
  return Status::Ok();
}

uint16_t Actuator::port(const std::string& name) const {
  for (const Listening& listening : listening_) {
    if (listening.name == name) return listening.http->port();
  }
  return 0;
}

void Actuator::Stop() {
  for (Listening& listening : listening_) listening.http->Stop();
}

bool Actuator::stopped() const {
  for (const Listening& listening : listening_) {
    if (!listening.http->stopped()) return false;
  }
  return true;
}

size_t Actuator::in_flight() const {
  size_t n = 0;
  for (const Listening& listening : listening_) n += listening.http->in_flight();
  return n;
}

}  // namespace wasmlet::server
