#include "server/admin/admin_api.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/address.h"
#include "common/text.h"
#include "server/admin/dashboard.h"

namespace wasmlet::server {
namespace {

namespace asio = boost::asio;

// Runs `io` until it is stopped. An exception that escapes a handler is logged and the loop
// goes on: one admin call's failure must not end the thread that serves all the others.
void RunLoop(asio::io_context& io, const char* what) {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("{}: an exception escaped a handler and was caught: {}", what, Printable(e.what()));
    }
  }
}

abi::HttpResponse Json(unsigned status, const nlohmann::json& body) {
  abi::HttpResponse r;
  r.status = status;
  r.headers = {{"content-type", "application/json"}};
  r.body = ToJson(body) + "\n";
  return r;
}

abi::HttpResponse JsonError(unsigned status, const std::string& message) {
  return Json(status, {{"error", message}});
}

unsigned AdminStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kInternal: return 500;
    default: return 400;  // the request named something that does not work: a bad install
  }
}

// {"name": ..., ...}: the route id an uninstall or update names. An uninstall may name one
// plugin item instead, {"plugin": NAME} (what the containerd shim installed).
Result<nlohmann::json> ParseAdminBody(const std::string& body, bool plugin_allowed) {
  try {
    nlohmann::json j = nlohmann::json::parse(body);
    if (!j.is_object()) return InvalidArgument("the body must be a JSON object");
    auto names = [&](const char* key) {
      return j.contains(key) && j.at(key).is_string() && !j.at(key).get<std::string>().empty();
    };
    if (plugin_allowed && names("plugin")) return j;
    j.erase("plugin");  // the route id form: a "plugin" key that does not apply is not read
    if (!names("name")) {
      return InvalidArgument(
          plugin_allowed ? "the body must name the function: {\"name\": \"id_1\"} (every plugin of that "
                           "id) or {\"plugin\": \"f1\"} (that one plugin item)"
                         : "the body must name the function: {\"name\": \"id_1\"}");
    }
    return j;
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999
    return InvalidArgument(std::string("the body is not valid JSON: ") + e.what());
  }
}

}  // namespace

AdminApi::AdminApi(const ServerConfig& config, FunctionRegistry& functions, Metrics& metrics,
                   const std::atomic<bool>& ready, std::shared_ptr<LogRing> log_ring)
    : config_(config), functions_(&functions), metrics_(metrics), ready_(ready), log_ring_(std::move(log_ring)) {}

AdminApi::~AdminApi() { Stop(); }

Status AdminApi::Start() {
  WASMLET_RETURN_IF_ERROR(CheckExposure());
  io_running_.emplace(io_.get_executor());
  jobs_running_.emplace(jobs_.get_executor());
  threads_.emplace_back([this] { RunLoop(io_, "the admin listener"); });
  threads_.emplace_back([this] { RunLoop(jobs_, "the admin jobs"); });
  http_ = std::make_unique<HttpServer>(std::vector<asio::io_context*>{&io_},
                                       HttpServer::Options{.max_request_body = 1 << 20, .max_connections = 256},
                                       [this](abi::HttpRequest request, Respond respond) {
                                         Handle(std::move(request), std::move(respond));
                                       });
  Status listening = http_->Listen(config_.admin_address);
  if (!listening.ok()) return Status(listening.code(), "admin listener: " + listening.message());
  spdlog::info("admin API on port {}", http_->port());
  return Status::Ok();
}

void AdminApi::StopListening() {
  if (http_) http_->Stop();
}

void AdminApi::Stop() {
  io_running_.reset();
  jobs_running_.reset();
  io_.stop();
  jobs_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void AdminApi::Handle(abi::HttpRequest request, Respond respond) {
  const std::string path = request.path.substr(0, request.path.find('?'));
  const std::string& method = request.method;
  if (path == "/health/liveness") {
    respond(Json(200, {{"status", "alive"}}));
    return;
  }
  if (path == "/health/readiness") {
    // A node daemon configured with no functions is ready as soon as it runs: it waits for installs.
    const bool ready = ready_ && functions_ && (functions_->function_count() > 0 || config_.plugins.empty());
    respond(Json(ready ? 200 : 503, {{"status", ready ? "ready" : "not ready"}}));
    return;
  }
  if (CrossOriginChange(request)) {
    respond(JsonError(403, "the admin API refuses changes sent from a page of another origin"));
    return;
  }
  if (path == "/login" && method == "POST") {
    respond(Login(request, config_.admin_token));
    return;
  }
  const EmbeddedFile* page = method == "GET" ? FindDashboardFile(path) : nullptr;
  if (page && page->name != "index.html") {  // the script and style hold no data (the login page uses them)
    respond(DashboardFileResponse(*page));
    return;
  }
  if (!AdminAuthorized(request, config_.admin_token)) {
    if (page) {
      respond(LoginPage(
          401, "This wasmlet's admin API needs its token (wasmlet.admin_token or WASMLET_ADMIN_TOKEN)."));
    } else {
      respond(JsonError(
          401, "the admin API needs the header 'Authorization: Bearer <token>' with the configured token"));
    }
    return;
  }
  if (page) {
    respond(DashboardFileResponse(*page));
    return;
  }
  if (path == "/metrics" && method == "GET") {
    abi::HttpResponse r;
    r.headers = {{"content-type", "text/plain; version=0.0.4"}};
    r.body = metrics_.Prometheus(functions_->Gauges());
    respond(std::move(r));
    return;
  }
  if (path == "/wasm/list" && method == "GET") {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& f : functions_->List()) {
      list.push_back({{"id", f.id},
                      {"name", f.name},
                      {"file", f.file},

                      {"md5", f.md5},
                      {"placement", f.placement},
                      {"instances", f.instances},
                      {"busy", f.busy},
                      {"retiring", f.retiring},
                      {"memory_bytes", f.memory_bytes},
                      {"memory_limit_bytes", f.memory_limit_bytes},
                      {"requests", f.requests},
                      {"errors", f.errors},
                      {"host",
                       {{"shared_data_bytes", f.host.shared_data_bytes},
                        {"queue_entries", f.host.queue_entries},
                        {"queue_bytes", f.host.queue_bytes},
                        {"metrics", f.host.metrics},
                        {"refusals", f.host.refusals}}}});
    }
    respond(Json(200, list));
    return;
  }
  if (path == "/wasm/stats" && method == "GET") {
    respond(Json(200, StatsJson(metrics_.TrafficById())));
    return;
  }
  if (path == "/logs" && method == "GET") {
    const size_t query = request.path.find('?');
    respond(Json(
        200, LogsJson(log_ring_.get(), query == std::string::npos ? "" : request.path.substr(query + 1))));
    return;
  }
  if (method == "POST" && (path == "/wasm/install" || path == "/wasm/uninstall" || path == "/wasm/update")) {
    // Installs read, compile and start modules: that runs on its own thread, so that the admin
    // listener keeps answering health checks, /wasm/list and /metrics meanwhile.
    boost::asio::post(jobs_, [this, path, body = std::move(request.body), respond]() mutable {
      try {
        ChangeFunctions(path, body, respond);
      } catch (const std::exception& e) {
        spdlog::error("admin: internal error in {}: {}", path, Printable(e.what()));
        respond(JsonError(500, "internal error in " + path + " (logged by the server)"));
      }
    });
    return;
  }
  respond(JsonError(404, "no admin endpoint " + Printable(method, 32) + " " + Printable(path, 128) +
                             " (there are POST /wasm/install, /wasm/uninstall, /wasm/update; GET /wasm/list, "
                             "/wasm/stats, /logs, /metrics, /health/liveness, /health/readiness, and the "
                             "dashboard at /)"));
}

void AdminApi::ChangeFunctions(const std::string& path, const std::string& body_text, const Respond& respond) {
  // A refused change is worth a warning: the dashboard's panel of problems shows it, and an
  // operator reading the log sees why an install did not happen.
  auto refuse = [&path, &respond](unsigned status, const std::string& message) {
    spdlog::warn("admin: {} refused ({}): {}", path, status, Printable(message, 1024));
    respond(JsonError(status, message));
  };
  if (path == "/wasm/install") {
    auto plugin = ParsePluginItem(body_text, "body");
    if (!plugin.ok()) return refuse(400, plugin.status().message());
    auto id = functions_->Install(*plugin);
    if (!id.ok()) return refuse(AdminStatusFor(id.status()), id.status().message());
    spdlog::info("admin: installed '{}' as id '{}'", Printable(plugin->name), Printable(*id));
    return respond(Json(200, {{"id", *id}}));
  }
  const bool uninstall = path == "/wasm/uninstall";
  auto body = ParseAdminBody(body_text, /*plugin_allowed=*/uninstall);
  if (!body.ok()) return refuse(400, body.status().message());
  Status status;
  nlohmann::json answer;
  if (auto plugin = body->find("plugin"); plugin != body->end()) {
    // One plugin item; Layotto's {"name": ID} below removes every plugin serving route id ID.
    answer = {{"plugin", *plugin}};
    status = functions_->UninstallPlugin(plugin->get<std::string>());
  } else {
    const std::string id = (*body)["name"].get<std::string>();
    answer = {{"id", id}};
    if (uninstall) {
      status = functions_->Uninstall(id);
    } else {
      auto n = body->find("instance_num");
      if (n == body->end() || !n->is_number_integer() || n->get<int64_t>() < 0 || n->get<int64_t>() > 4096) {
        return refuse(400,
                      "the body must give the new instance count, 0 (one per core) to 4096: "
                      "{\"name\": ..., \"instance_num\": 2}");
      }
      status = functions_->Update(id, n->get<int>());
    }
  }
  if (status.code() == StatusCode::kNotFound) return refuse(404, status.message());
  if (!status.ok()) return refuse(AdminStatusFor(status), status.message());
  spdlog::info("admin: {} {}", uninstall ? "uninstalled" : "updated", ToJson(answer));
  return respond(Json(200, answer));
}

Status AdminApi::CheckExposure() const {
  return server::CheckExposure({.what = "admin API",
                                .address = config_.admin_address,
                                .address_setting = "wasmlet.admin_address",
                                .has_token = !config_.admin_token.empty(),
                                .token_setting = "admin_token",
                                .token_env = "WASMLET_ADMIN_TOKEN",
                                .allow_insecure = config_.admin_allow_insecure,
                                .insecure_setting = "wasmlet.admin_allow_insecure",
                                .risk = "can install and run code"});
}

}  // namespace wasmlet::server
