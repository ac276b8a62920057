// proxy_http_call's and the gRPC calls' way out: each event loop's own UpstreamClient and
// GrpcClient (their connections are that loop's), made the first time a guest on that loop
// calls out.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "abi/services.h"
#include "common/mutex.h"
#include "server/runtime/event_loop.h"
#include "server/outbound/grpc_client.h"
#include "server/outbound/upstream.h"
#include "server/runtime/unique_id.h"

namespace wasmlet::server {

class OutboundCalls : public abi::OutboundHttp, public abi::OutboundGrpc {
 public:
  // A guest's call answer larger than `max_call_response` bytes is a failed call (a guest could
  // otherwise make the host hold 64 MiB per call in flight).
  // A received gRPC message larger than `max_call_response` bytes ends its call likewise, and
  // a gRPC call takes at most that many bytes waiting to be sent.
  OutboundCalls(std::vector<ClusterConfig> clusters, uint64_t max_call_response);
  ~OutboundCalls() override;

  bool HasCluster(std::string_view cluster) override;
  // From an event loop's thread only (elsewhere: an error).
  Result<Cancel> Start(std::string_view target, bool to_address, abi::HttpRequest request,
                       std::chrono::milliseconds timeout, Done done) override;
  // gRPC, likewise from an event loop's thread only.
  Result<std::shared_ptr<abi::OutboundGrpc::Call>> Start(abi::OutboundGrpc::Request request,
                                                         abi::OutboundGrpc::Events events) override;

  // The calling loop's client for proxy listeners (made on first use), or nullptr off the loops.
  UpstreamClient* ForThisLoop() { return Client(/*for_calls=*/false); }
  // Closes every loop's connections. Call once the loops have stopped, before they are destroyed.
  void Shutdown() EXCLUDES(mutex_);

 private:
  // This loop's client for proxy listeners, or the one for guests' calls.
  UpstreamClient* Client(bool for_calls) EXCLUDES(mutex_);

  const std::vector<ClusterConfig> clusters_;
  const uint64_t max_call_response_;
  const UniqueId id_;  // what each loop's thread caches its clients by, not `this` (unique_id.h)
  Mutex mutex_;
  std::map<std::pair<EventLoop*, bool>, std::unique_ptr<UpstreamClient>> clients_ GUARDED_BY(mutex_);
  std::map<EventLoop*, std::unique_ptr<GrpcClient>> grpc_clients_ GUARDED_BY(mutex_);
};

}  // namespace wasmlet::server
