// gRPC calls from one event loop to the hosts of the configured clusters (proxy_grpc_call and
// proxy_grpc_stream). HTTP/2 comes from nghttp2; this file frames gRPC on it: cleartext HTTP/2
// with prior knowledge (h2c, as gRPC servers without TLS speak it), one connection per host
// carrying every call to that host as its own stream.
//
// What a guest sees of a call is abi::OutboundGrpc's Events. Failures made here are reported as
// a close with the gRPC code that names them, and a message naming the cluster and the host:
//   UNAVAILABLE (14)         no connection (refused, past connect_timeout), the connection broke,
//                            or the server refused the stream
//   DEADLINE_EXCEEDED (4)    no end within the call's timeout (the stream is reset)
//   RESOURCE_EXHAUSTED (8)   a message or a metadata block larger than the limits below
//   INTERNAL (13)            a broken answer (an HTTP/2 protocol error, a compressed message,
//                            which this client never asked for)
//   CANCELLED (1)            the server reset the stream with CANCEL
// An answer that is not gRPC (an HTTP status other than 200 and no grpc-status) maps its HTTP
// status to a code as gRPC's own clients do (404 -> UNIMPLEMENTED, 503 -> UNAVAILABLE, ...).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "abi/services.h"
#include "server/config/routes.h"

namespace wasmlet::server {

class GrpcClient {
 public:
  struct Options {
    uint64_t max_message = 4 << 20;       // bytes of one received message
    uint64_t max_pending_send = 4 << 20;  // bytes queued on one call and not yet sent
    uint64_t max_metadata = 64 << 10;     // bytes of one received header block
  };

  GrpcClient(boost::asio::io_context& io, const std::vector<ClusterConfig>& clusters, Options options);
  // Closes every connection; no event of any call follows.
  ~GrpcClient();
  GrpcClient(const GrpcClient&) = delete;
  GrpcClient& operator=(const GrpcClient&) = delete;

  bool HasCluster(const std::string& name) const;

  // On the loop's thread. An error when the call cannot start: an unknown cluster, or a
  // service, method or metadata that cannot be sent as HTTP/2 (InvalidArgument).
  Result<std::shared_ptr<abi::OutboundGrpc::Call>> Start(abi::OutboundGrpc::Request request,
                                                         abi::OutboundGrpc::Events events);

  // Open connections, over all hosts (for tests and metrics).
  size_t connections() const;

  class Session;
  class Stream;

 private:
  struct Host {
    std::string address;  // "host:port"
    std::shared_ptr<Session> session;
  };
  struct Cluster {
    ClusterConfig config;
    std::vector<Host> hosts;
    size_t next = 0;  // round robin
  };
  Host& PickHost(Cluster& cluster);

  boost::asio::io_context& io_;
  Options options_;
  std::map<std::string, Cluster> clusters_;
  std::minstd_rand random_{std::random_device{}()};
};

}  // namespace wasmlet::server
