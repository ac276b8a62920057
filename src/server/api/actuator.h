// Layotto's actuator: the health endpoints Kubernetes probes, on each listener with the
// "actuator_filter" stream filter. GET /actuator/health/liveness answers UP while the process
// serves (the answer comes from a serving loop, so a loop that no longer turns answers nothing);
// GET /actuator/health/readiness answers UP once the server has started and until it begins to
// stop, 503 and DOWN otherwise. The body is Layotto's JSON:
//   {"status": "UP", "components": {"runtime_startup": {"status": "UP", "details": {"reason": ""}}}}
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/config/config.h"
#include "server/ingress/http_server.h"

namespace wasmlet::server {

class Actuator {
 public:
  // `ready`: the server has started and is not stopping.
  Actuator(const ServerConfig& config, std::vector<boost::asio::io_context*> loops, const std::atomic<bool>& ready);
  // Listens on every actuator listener of the config.
  Status Start();
  uint16_t port(const std::string& name) const;
  void Stop();
  bool stopped() const;
  size_t in_flight() const;

  // The answer to `request` (a pure function of the path and readiness; tests call it too).
  static abi::HttpResponse Answer(const abi::HttpRequest& request, bool ready);

 private:
  struct Listening {
    std::string name;
    std::unique_ptr<HttpServer> http;
  };
  const ServerConfig& config_;
  std::vector<boost::asio::io_context*> loops_;
  const std::atomic<bool>& ready_;
  std::vector<Listening> listening_;
};

}  // namespace wasmlet::server
