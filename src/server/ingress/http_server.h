// An HTTP/1.1 server (Boost.Beast): keep-alive, chunked request bodies, a request body limit,
// and handlers that answer from any thread. Stop() stops accepting; in-flight requests finish.
//
// It listens on the same port from every io_context it is given (SO_REUSEPORT: the kernel
// spreads new connections over them). A connection stays on the io_context that accepted it:
// its requests are parsed, handled and answered on that one thread, and an answer given on
// that thread is written at once, without a hand-off.
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
#include <unordered_map>
#include <vector>

#include "abi/http.h"
#include "common/address.h"
#include "common/mutex.h"
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
    // How long a connection may wait for its client: to send (the rest of) a request, or to take
    // an answer. Past it the connection is closed.
    std::chrono::milliseconds idle_timeout{60000};
  };

  // Each io_context must be run by one thread (the handler is called on it).
  HttpServer(std::vector<boost::asio::io_context*> loops, Options options, Handler handler);
  ~HttpServer();

  // Binds "host:port" (port 0 picks a free one) and starts accepting.
  Status Listen(const std::string& address);
  uint16_t port() const { return port_; }
  // Stops accepting, closes the connections waiting for a request, and lets each request in
  // hand be answered, after which its connection closes. Returns at once; stopped() says when
  // every loop has done so, and then in_flight() only goes down.
  void Stop();
  bool stopped() const { return stopping_ && listeners_stopping_ == 0; }
  // Requests read and not yet answered on the wire.
  size_t in_flight() const { return in_flight_->load(); }
  size_t connections() const { return connections_->load(); }

 private:
  class Session;
  // One listening socket on one io_context; used only on that io_context's thread once
  // listening.
  struct Listener {
    explicit Listener(boost::asio::io_context& io) : io(io), acceptor(io), retry(io) {}
    boost::asio::io_context& io;
    boost::asio::ip::tcp::acceptor acceptor;
    boost::asio::steady_timer retry;  // after accept failed for lack of descriptors
    std::chrono::steady_clock::time_point last_warning{};
  };
  void Accept(Listener& listener);

  // The open sessions, so that Stop can reach the idle ones. Shared with them: a session may end
  // on another thread (its last reference in an answer) and after the server.
  struct SessionSet {
    void Add(Session* session, std::weak_ptr<Session> handle) EXCLUDES(mutex);
    void Remove(Session* session) EXCLUDES(mutex);
    Mutex mutex;
    std::unordered_map<Session*, std::weak_ptr<Session>> open GUARDED_BY(mutex);
  };

  Options options_;
  Handler handler_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  uint16_t port_ = 0;
  std::shared_ptr<std::atomic<size_t>> in_flight_ = std::make_shared<std::atomic<size_t>>(0);
  std::shared_ptr<std::atomic<size_t>> connections_ = std::make_shared<std::atomic<size_t>>(0);
  std::shared_ptr<SessionSet> sessions_ = std::make_shared<SessionSet>();
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> listeners_stopping_{0};  // loops that have not run Stop's part yet
};

// A response with a one-line text body: how every error of the server reads.
abi::HttpResponse TextResponse(unsigned status, std::string message);

}  // namespace wasmlet::server
