#include "server/outbound/outbound.h"

#include <boost/asio/post.hpp>

namespace wasmlet::server {

OutboundCalls::OutboundCalls(std::vector<ClusterConfig> clusters, uint64_t max_call_response)
    : clusters_(std::move(clusters)), max_call_response_(max_call_response) {}

OutboundCalls::~OutboundCalls() { Shutdown(); }

void OutboundCalls::Shutdown() {
  MutexLock lock(mutex_);
  clients_.clear();
  grpc_clients_.clear();
}

bool OutboundCalls::HasCluster(std::string_view cluster) {
  for (const ClusterConfig& c : clusters_) {
    if (c.name == cluster && !c.hosts.empty()) return true;
  }
  return false;
}

UpstreamClient* OutboundCalls::Client(bool for_calls) {
  EventLoop* loop = EventLoop::Current();
  if (!loop) return nullptr;
  // A loop's clients are made once and used only on that loop; the lock guards the map.
  thread_local std::pair<uint64_t, UpstreamClient*> cached[2] = {};
  auto& slot = cached[for_calls ? 1 : 0];
  if (slot.first == id_.value()) return slot.second;
  MutexLock lock(mutex_);
  auto& client = clients_[{loop, for_calls}];
  if (!client) {
    UpstreamClient::Options options;
    if (for_calls) options.max_response_body = max_call_response_;
    client = std::make_unique<UpstreamClient>(loop->io(), clusters_, options);
  }
  slot = {id_.value(), client.get()};
  return client.get();
}

Result<abi::OutboundHttp::Cancel> OutboundCalls::Start(std::string_view target, bool to_address,
                                                       abi::HttpRequest request,
                                                       std::chrono::milliseconds timeout, Done done) {
  UpstreamClient* client = Client(/*for_calls=*/true);
  if (!client) return FailedPrecondition("outbound calls start only on an event loop");
  // The client answers an unknown cluster (or too many addresses) before Send returns; the
  // guest must get its answer later, never inside proxy_http_call.
  auto returned = std::make_shared<bool>(false);
  boost::asio::io_context& io = EventLoop::Current()->io();
  auto deliver = [returned, &io, done = std::move(done)](abi::HttpResponse response) mutable {
    if (*returned) return done(std::move(response));
    boost::asio::post(io, [done = std::move(done), response = std::move(response)]() mutable {
      done(std::move(response));
    });
  };
  UpstreamClient::Handle handle =
      to_address ? client->SendToAddress(std::string(target), std::move(request), timeout, std::move(deliver))
                 : client->Send(std::string(target), std::move(request), timeout, std::move(deliver));
  *returned = true;
  return Cancel([handle]() mutable { handle.Cancel(); });
}

Result<std::shared_ptr<abi::OutboundGrpc::Call>> OutboundCalls::Start(abi::OutboundGrpc::Request request,
                                                                      abi::OutboundGrpc::Events events) {
  EventLoop* loop = EventLoop::Current();
  if (!loop) return FailedPrecondition("gRPC calls start only on an event loop");
  thread_local std::pair<uint64_t, GrpcClient*> cached = {};
  if (cached.first != id_.value()) {
    MutexLock lock(mutex_);
    auto& client = grpc_clients_[loop];
    if (!client) {
      GrpcClient::Options options;
      options.max_message = max_call_response_;
      options.max_pending_send = max_call_response_;
      client = std::make_unique<GrpcClient>(loop->io(), clusters_, options);
    }
    cached = {id_.value(), client.get()};
  }
  return cached.second->Start(std::move(request), std::move(events));
}

}  // namespace wasmlet::server
