// An HTTP/1.1 server (Boost.Beast): keep-alive, chunked request bodies, a request body limit,
// and handlers that answer from any thread. Stop() stops accepting; in-flight requests finish.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "abi/plugin_vm.h"
#include "common/address.h"
#include "common/status.h"

namespace wasmlet::server {

// Answers a request; callable once, from any thread.
using Respond = std::function<void(abi::HttpResponse)>;
using Handler = std::function<void(abi::HttpRequest request, Respond respond)>;

class HttpServer {
 public:
  struct Options {
    uint64_t max_request_body = 1 << 20;
    uint32_t max_header_bytes = 64 * 1024;
    // Open connections past this get one 503 answer and are closed.
    size_t max_connections = 10000;
  };

  HttpServer(boost::asio::io_context& io, Options options, Handler handler);
  ~HttpServer();

  // Binds "host:port" (port 0 picks a free one) and starts accepting.
  Status Listen(const std::string& address);
  uint16_t port() const { return port_; }
  void Stop();
  size_t in_flight() const { return in_flight_->load(); }
  size_t connections() const { return connections_->load(); }

 private:
  class Session;
  void Accept();

  boost::asio::io_context& io_;
  Options options_;
  Handler handler_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_;  // after accept failed for lack of descriptors
  std::chrono::steady_clock::time_point last_accept_warning_{};
  uint16_t port_ = 0;
  std::shared_ptr<std::atomic<size_t>> in_flight_ = std::make_shared<std::atomic<size_t>>(0);
  std::shared_ptr<std::atomic<size_t>> connections_ = std::make_shared<std::atomic<size_t>>(0);
  std::atomic<bool> stopping_{false};
};

// A response with a one-line text body: how every error of the server reads.
abi::HttpResponse TextResponse(unsigned status, std::string message);

}  // namespace wasmlet::server
