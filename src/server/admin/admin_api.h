// The admin listener (wasmlet.admin_address): POST /wasm/install|uninstall|update, GET
// /wasm/list|stats, /logs, /metrics, /health/liveness|readiness, and the dashboard (/, /login;
// see dashboard.h). It runs on threads of its own, apart from the serving loops: an install
// reads, compiles and starts a module, which must not hold up traffic, and the listener keeps
// answering health checks while an install runs.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "server/config/config.h"
#include "server/functions/function_registry.h"
#include "server/ingress/http_server.h"
#include "server/runtime/log_ring.h"
#include "server/runtime/metrics.h"

namespace wasmlet::server {

class AdminApi {
 public:
  // `ready` is the server's: readiness answers 503 until it is true. Everything given must
  // outlive this object.
  AdminApi(const ServerConfig& config, FunctionRegistry& functions, Metrics& metrics,
           const std::atomic<bool>& ready, std::shared_ptr<LogRing> log_ring);
  ~AdminApi();
  AdminApi(const AdminApi&) = delete;
  AdminApi& operator=(const AdminApi&) = delete;

  // Checks that the address is not exposed without a token, listens on it and starts the
  // listener's thread and the thread that runs installs, updates and uninstalls one at a time.
  Status Start();
  // Stops accepting connections.
  void StopListening();
  // Stops both threads: no change to the functions starts after this returns.
  void Stop();
  uint16_t port() const { return http_ ? http_->port() : 0; }

  // One admin request (on the listener's thread; the fuzz target calls it directly).
  void Handle(abi::HttpRequest request, Respond respond);

 private:
  // POST /wasm/install, /wasm/uninstall, /wasm/update; on the jobs thread.
  void ChangeFunctions(const std::string& path, const std::string& body, const Respond& respond);
  // An admin listener reachable from other machines needs a token, or an explicit opt-out.
  Status CheckExposure() const;

  const ServerConfig& config_;
  FunctionRegistry* functions_;
  Metrics& metrics_;
  const std::atomic<bool>& ready_;
  std::shared_ptr<LogRing> log_ring_;
  std::vector<std::thread> threads_;
  boost::asio::io_context io_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> io_running_;
  boost::asio::io_context jobs_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> jobs_running_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace wasmlet::server
