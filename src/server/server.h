// The function server: the wiring of its rooms and the order they start and stop in.
// Configuration in; out: the function listener (a request's `id` header names the function),
// the proxy listeners, the admin API, the runtime API for applications, and the subscriptions
// that hand messages to functions.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "server/admin/admin_api.h"
#include "server/api/actuator.h"
#include "server/api/app_callback.h"
#include "server/api/dapr_http.h"
#include "server/api/runtime_api.h"
#include "server/config/config.h"
#include "server/functions/function_registry.h"
#include "server/ingress/http_server.h"
#include "server/outbound/outbound.h"
#include "server/proxy/proxy_listener.h"
#include "server/runtime/event_loop.h"
#include "server/runtime/log_ring.h"
#include "server/runtime/metrics.h"
#include "server/services/host_services.h"
#include "server/services/subscriptions.h"

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
  // The port of the runtime API listener named `name` (0: none serves).
  uint16_t runtime_port(const std::string& name) const { return runtime_api_ ? runtime_api_->port(name) : 0; }
  // The port of Dapr's HTTP API (0: off).
  uint16_t dapr_http_port() const { return dapr_http_ ? dapr_http_->port() : 0; }
  // The port of the actuator listener named `name` (0: none serves).
  uint16_t actuator_port(const std::string& name) const { return actuator_ ? actuator_->port(name) : 0; }

  // The function listener's entry point.
  void Handle(abi::HttpRequest request, Respond respond);
  // The admin API's (see admin/admin_api.h); only once Start has made it.
  void HandleAdmin(abi::HttpRequest request, Respond respond) { admin_->Handle(std::move(request), std::move(respond)); }
  // Dapr's HTTP API's answer to one request, its component calls made on the calling thread
  // (api/dapr_http.h); only once Start has made it.
  abi::HttpResponse HandleDaprHttp(const abi::HttpRequest& request) { return dapr_http_->Handle(request); }
  // Where GET /logs and the dashboard read the last log lines (the CLI adds it to the logger).
  void set_log_ring(std::shared_ptr<LogRing> ring) { log_ring_ = std::move(ring); }

 private:
  // The requests the listeners have read and not yet answered on the wire.
  size_t InFlight() const;
  // Every listener has stopped reading requests and every request read is answered.
  bool Drained() const;
  // Stops the admin threads, the functions and the loops, in that order.
  void StopThreads();

  ServerConfig config_;
  std::unique_ptr<engine::Engine> engine_;
  // The serving loops: each owns the connections it accepted and the instances in its store.
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::unique_ptr<FunctionRegistry> functions_;
  std::unique_ptr<Subscriptions> subscriptions_;  // after functions_: it calls them
  std::unique_ptr<AppSubscriptions> app_subscriptions_;  // pub/sub to the app (AppCallback)
  std::unique_ptr<HttpServer> http_;
  // proxy_http_call's and the proxy listeners' upstream clients, one per loop.
  std::shared_ptr<OutboundCalls> outbound_;
  std::vector<std::unique_ptr<ProxyListener>> proxies_;
  std::unique_ptr<AdminApi> admin_;
  std::unique_ptr<RuntimeApi> runtime_api_;  // the runtime API for applications
  std::unique_ptr<DaprHttpApi> dapr_http_;    // Dapr's HTTP API, when wasmlet.dapr_http_address is set
  std::unique_ptr<Actuator> actuator_;        // the health endpoints: from start to the very end
  Metrics metrics_;
  std::shared_ptr<LogRing> log_ring_;
  std::atomic<bool> ready_{false};
};

}  // namespace wasmlet::server
