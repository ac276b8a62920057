// proxy_http_call's way out: each event loop's own UpstreamClient (its keep-alive connections
// are that loop's), made the first time a guest on that loop calls out.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "abi/services.h"
#include "server/event_loop.h"
#include "server/upstream.h"

namespace wasmlet::server {

class OutboundCalls : public abi::OutboundHttp {
 public:
  explicit OutboundCalls(std::vector<ClusterConfig> clusters);
  ~OutboundCalls() override;

  bool HasCluster(std::string_view cluster) override;
  // From an event loop's thread only (elsewhere: an error).
  Result<Cancel> Start(std::string_view target, bool to_address, abi::HttpRequest request,
                       std::chrono::milliseconds timeout, Done done) override;

  // The calling loop's client (made on first use), or nullptr off the loops. Proxy listeners
  // send their requests through it too.
  UpstreamClient* ForThisLoop();
  // Closes every loop's connections. Call once the loops have stopped, before they are destroyed.
  void Shutdown();

 private:
  const std::vector<ClusterConfig> clusters_;
  std::mutex mutex_;
  std::map<EventLoop*, std::unique_ptr<UpstreamClient>> clients_;
};

}  // namespace wasmlet::server
