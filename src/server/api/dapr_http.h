// Dapr's HTTP API (v1.0), what Dapr's SDKs call by default, on wasmlet.dapr_http_address (off
// unless set): metadata and health, state, publishing, invoking functions, secrets and locks,
// over the same host services as the functions and the gRPC runtime API, and output bindings
// (docs/runtime-api.md).
//
// Requests are read and answered on the serving loops; the component calls run on a pool of
// their own (api_max_concurrent_calls threads), so a request waiting on Redis holds no loop.
// When the pool's queue is full a request gets 503 at once.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "abi/services.h"
#include "common/status.h"
#include "server/api/app_components.h"
#include "server/config/config.h"
#include "server/ingress/http_server.h"
#include "server/runtime/worker_pool.h"
#include "server/services/invoker.h"

namespace wasmlet::server {

class DaprHttpApi {
 public:
  // `ready`: the server has started and is not stopping (GET /v1.0/healthz). `apps`: the
  // bindings (and file stores, which this API does not serve).
  DaprHttpApi(const ServerConfig& config, abi::HostServices services, std::shared_ptr<Invoker> invoker,
              std::shared_ptr<const AppComponents> apps, const std::atomic<bool>& ready);
  ~DaprHttpApi();

  // Listens on wasmlet.dapr_http_address from `loops` (nothing when it is empty). Fails naming
  // the address when it cannot bind, or when the exposure rule refuses it.
  Status Start(std::vector<boost::asio::io_context*> loops);
  uint16_t port() const { return http_ ? http_->port() : 0; }
  void Stop();
  bool stopped() const { return !http_ || http_->stopped(); }
  size_t in_flight() const { return http_ ? http_->in_flight() : 0; }

  // The answer to one request, the component calls made on the calling thread (the listener
  // calls it on its worker pool; the fuzz target calls it directly).
  abi::HttpResponse Handle(const abi::HttpRequest& request);

 private:
  const ServerConfig& config_;
  abi::HostServices services_;
  std::shared_ptr<Invoker> invoker_;
  std::shared_ptr<const AppComponents> apps_;
  const std::atomic<bool>& ready_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace wasmlet::server
