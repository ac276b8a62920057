// A listener in proxy mode (MOSN's shape): every request passes through the listener's
// proxywasm filters (abi/stream_run.h), then goes where the listener's router sends it (a
// cluster through the loop's upstream client, or a direct response), and its answer passes
// back through the filters.
//
// Each filter runs as one instance per serving loop, as Envoy runs one VM per worker thread:
// that instance serves all the streams of its loop at once, each in a context of its own, and
// a stream never leaves the loop that accepted its connection. An instance that fails (a trap,
// its CPU budget) fails the streams inside it with a 500 naming it; the next request on that
// loop starts a fresh one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "abi/plugin_vm.h"
#include "engine/engine.h"
#include "server/config/config.h"
#include "server/runtime/event_loop.h"
#include "server/functions/function_registry.h"
#include "server/ingress/http_server.h"
#include "server/runtime/metrics.h"
#include "server/outbound/outbound.h"

namespace wasmlet::server {

class ProxyListener {
 public:
  ProxyListener(const ServerConfig& config, const ProxyListenerConfig& listener, engine::Engine& engine,
                abi::HostServices services, OutboundCalls& outbound, Metrics& metrics,
                std::vector<EventLoop*> serving);
  ~ProxyListener();
  ProxyListener(const ProxyListener&) = delete;
  ProxyListener& operator=(const ProxyListener&) = delete;

  // Compiles the filters, starts an instance of each on every serving loop, and listens. Never
  // from a loop's thread.
  Status Start();
  // Stops accepting; requests in flight finish.
  void Stop();
  // Destroys the instances, each on its loop; call before the loops stop.
  void Shutdown();
  size_t in_flight() const { return http_ ? http_->in_flight() : 0; }
  bool stopped() const { return !http_ || http_->stopped(); }
  uint16_t port() const { return http_ ? http_->port() : 0; }
  const std::string& name() const { return listener_.name; }

 private:
  struct Filter {
    PluginConfig config;
    LoadedPlugin loaded;
  };
  struct Instance;
  // The instances of one serving loop, used only on its thread.
  struct LoopState {
    std::vector<std::unique_ptr<Instance>> instances;  // one per filter
  };

  void Handle(abi::HttpRequest request, Respond respond);
  // The filter's instance on this loop (on its thread), started again if it failed; nullptr
  // when it cannot start (then `error` says why).
  abi::PluginVm* Get(EventLoop& loop, size_t filter, std::string* error);
  // Runs the instance's on_tick at the period it asked for.
  void ArmTick(EventLoop& loop, size_t filter);
  // Sends the request as the filters left it where the router says.
  void Route(abi::StreamData& data, std::function<void(abi::HttpResponse)> answer);

  const ServerConfig& config_;
  const ProxyListenerConfig listener_;
  const RouterConfig* router_ = nullptr;
  engine::Engine& engine_;
  abi::HostServices services_;
  OutboundCalls& outbound_;
  Metrics& metrics_;
  std::vector<EventLoop*> serving_;
  std::vector<Filter> filters_;
  std::vector<LoopState> loops_;  // by EventLoop index
  std::unique_ptr<HttpServer> http_;
};

}  // namespace wasmlet::server
