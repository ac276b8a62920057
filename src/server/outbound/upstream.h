// HTTP/1.1 requests from one event loop to the hosts of the configured clusters (proxy mode's
// upstreams, and proxy_http_call's). Each host keeps idle keep-alive connections for reuse;
// a connection carries at most the cluster's max_request_per_conn requests.
//
// Every request ends in exactly one call of its callback, on the loop's thread (none once the
// client itself is destroyed), with the upstream's answer or one of these (their bodies name the
// cluster and the host):
//   503  no connection could be made (refused, unreachable, past connect_timeout), or an unknown
//        cluster
//   504  no complete answer within the request's timeout
//   502  the connection broke, or the answer was not HTTP or was too large
//   500  the request itself could not be written as HTTP/1.1 (a method or header name that is
//        not a token, a control character in a value or the path): it is not sent
// An idle connection the upstream has closed is dropped when it is next picked. Nothing is
// retried, except a request that may run twice (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) whose
// reused connection broke before any of the answer came: it is sent once more on a new one.
// Interim (1xx) answers are read past; a 101 (switching protocols) is a 502.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "abi/http.h"
#include "server/config/routes.h"

namespace wasmlet::server {

class UpstreamClient {
 public:
  using Done = std::function<void(abi::HttpResponse)>;

  struct Options {
    uint64_t max_response_body = 64 << 20;
    size_t max_idle_per_host = 64;  // idle connections kept per host; more are closed
    size_t max_addresses = 256;     // distinct addresses SendToAddress reaches; more get a 503
  };
  class Exchange;
  // A request in flight, for cancelling it: its callback is then never called, and its
  // connection is closed. Harmless once the request has ended.
  class Handle {
   public:
    void Cancel();

   private:
    friend class UpstreamClient;
    std::weak_ptr<Exchange> exchange_;
  };

  UpstreamClient(boost::asio::io_context& io, const std::vector<ClusterConfig>& clusters, Options options);
  UpstreamClient(boost::asio::io_context& io, const std::vector<ClusterConfig>& clusters)
      : UpstreamClient(io, clusters, Options{}) {}
  ~UpstreamClient();
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // On the loop's thread. `request.authority` becomes the Host header (the host's address when
  // empty); `timeout` bounds the whole exchange (0: 15 s). An answer the client made itself
  // (the 502/503/504 above) has `local` set and its reason in `details`; an upstream's answer
  // has the address of the host that gave it in `details`. Only an unknown cluster
  // and an invalid request are answered before Send returns.
  Handle Send(const std::string& cluster, abi::HttpRequest request, std::chrono::milliseconds timeout,
              Done done);
  // The same to one "host:port" that no cluster names (proxy_http_call to a URL).
  Handle SendToAddress(const std::string& address, abi::HttpRequest request,
                       std::chrono::milliseconds timeout, Done done);
  bool HasCluster(const std::string& name) const;

  // Idle connections open now, over all hosts (for tests and metrics).
  size_t idle_connections() const;

 private:
  struct Connection;
  struct Host {
    std::string address;  // "host:port"
    std::vector<std::shared_ptr<Connection>> idle;
  };
  struct Cluster {
    ClusterConfig config;
    std::vector<Host> hosts;
    size_t next = 0;  // round robin
  };

  Handle Start(Cluster& cluster, abi::HttpRequest request, std::chrono::milliseconds timeout, Done done);
  Host& PickHost(Cluster& cluster);
  void ReturnIdle(Host& host, std::shared_ptr<Connection> connection);

  boost::asio::io_context& io_;
  Options options_;
  std::map<std::string, Cluster> clusters_;
  size_t address_clusters_ = 0;
  std::minstd_rand random_{std::random_device{}()};
  // Exchanges in flight hold this weakly: a client destroyed first ends them quietly.
  std::shared_ptr<UpstreamClient*> self_;
};

}  // namespace wasmlet::server
