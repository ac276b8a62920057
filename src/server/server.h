// The function server: configuration in, HTTP out. Owns the state stores, the engine, the
// functions and the listener, and maps a request's `id` header to a function.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "abi/services.h"
#include "abi/shared_state.h"
#include "components/state/state_store.h"
#include "server/config.h"
#include "server/event_loop.h"
#include "server/function_registry.h"
#include "server/http_server.h"
#include "server/log_ring.h"
#include "server/metrics.h"
#include "server/outbound.h"
#include "server/proxy.h"
#include "server/subscriptions.h"

namespace wasmlet::server {

class Server {
 public:
  explicit Server(ServerConfig config);
  ~Server();

  // Creates the stores, loads the functions and starts listening. Fails with one message
  // that names the config item at fault.
  Status Start();
  uint16_t port() const { return http_ ? http_->port() : 0; }
  // Stops accepting, lets in-flight requests finish (up to drain_timeout_ms), stops.
  void Stop();
  // Start, then serve until SIGINT or SIGTERM; returns the process exit code.
  int Run();

  uint16_t admin_port() const { return admin_ ? admin_->port() : 0; }
  // The port of the proxy listener named `name` (0: none serves).
  uint16_t proxy_port(const std::string& name) const;

  // The function listener's entry point.
  void Handle(abi::HttpRequest request, Respond respond);
  // The admin listener's: /wasm/install|uninstall|update|list|stats, /logs, /health/*,
  // /metrics, and the dashboard (/, /login; see dashboard.h).
  void HandleAdmin(abi::HttpRequest request, Respond respond);
  // Where GET /logs and the dashboard read the last log lines (the CLI adds it to the logger).
  void set_log_ring(std::shared_ptr<LogRing> ring) { log_ring_ = std::move(ring); }

 private:
  // POST /wasm/install, /wasm/uninstall, /wasm/update; on the admin jobs thread.
  void ChangeFunctions(const std::string& path, const std::string& body, const Respond& respond);
  // Stops the admin threads, the functions and the loops, in that order.
  void StopThreads();
  // An admin listener reachable from other machines needs a token, or an explicit opt-out.
  Status CheckAdminExposure() const;

  ServerConfig config_;
  std::unique_ptr<engine::Engine> engine_;
  // The serving loops: each owns the connections it accepted and the instances in its store.
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> admin_threads_;
  std::map<std::string, std::shared_ptr<components::StateStoreComponent>> stores_;
  std::unique_ptr<FunctionRegistry> functions_;
  std::unique_ptr<Subscriptions> subscriptions_;  // after functions_: it calls them
  std::unique_ptr<HttpServer> http_;
  // proxy_http_call's and the proxy listeners' upstream clients, one per loop.
  std::shared_ptr<OutboundCalls> outbound_;
  std::vector<std::unique_ptr<ProxyListener>> proxies_;
  // The admin listener has its own thread (which also waits for SIGINT and SIGTERM):
  // installs compile and start instances, which must not hold up traffic.
  boost::asio::io_context admin_io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> admin_running_;
  std::unique_ptr<HttpServer> admin_;
  // Installs, updates and uninstalls run here, one at a time, off the admin listener's thread.
  boost::asio::io_context admin_jobs_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> admin_jobs_running_;
  Metrics metrics_;
  std::shared_ptr<LogRing> log_ring_;
  std::atomic<bool> ready_{false};
};

// Creates every state store of the config (for the server and for `wasmlet state`).
Result<std::map<std::string, std::shared_ptr<components::StateStoreComponent>>> CreateStores(
    const ServerConfig& config);

}  // namespace wasmlet::server
