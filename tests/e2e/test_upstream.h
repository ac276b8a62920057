// A loopback HTTP/1.1 server for tests of upstreams and outbound calls.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace wasmlet::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// A loopback HTTP/1.1 server on its own thread. `mode` decides what each request gets:
//   "echo"    200, body = the request line, its headers and its body; keep-alive
//   "close"   as echo, then closes the connection (Connection: close)
//   "drop"    as echo, then closes the connection without saying so
//   "interim" as echo, with a 100 Continue before the answer
// A HEAD request gets the headers of the echo, without its body, as HTTP says.
//   "reset"   reads the request and resets the connection
//   "silent"  reads the request and never answers
//   "delay"   as echo, 300 ms after the request came
//   "held"    as echo, but only once Release() has been called (at once from then on)
// In every mode, a request whose path starts with /slow is never answered, one to /reset is
// answered with a reset, and one to /deny gets a 403.
class TestUpstream {
 public:
  explicit TestUpstream(std::string mode)
      : mode_(std::move(mode)), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    Accept();  // before the thread runs: an io_context with no work returns from run() at once
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestUpstream() {
    io_.stop();
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }
  // Connections closed by the client while a request on them waited for an answer.
  int abandoned() const { return abandoned_.load(); }
  // The most requests it has held at once: received and not yet answered (nor reset, nor
  // abandoned by the client).
  int most_in_flight() const { return most_in_flight_.load(); }
  // Connections this side has closed after an answer ("close" and "drop").
  int closed() const { return closed_.load(); }
  // "held": answers the requests held so far, and every later one at once.
  void Release() {
    asio::post(io_, [this] {
      released_ = true;
      for (auto& [conn, answer] : held_) Answer(conn, answer);
      held_.clear();
    });
  }

 private:
  struct Conn {
    explicit Conn(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::string in;
    char chunk[4096];
  };

  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      ++connections_;
      Serve(std::make_shared<Conn>(std::move(socket)));
      Accept();
    });
  }

  void Serve(std::shared_ptr<Conn> conn) {
    conn->socket.async_read_some(asio::buffer(conn->chunk), [this, conn](boost::system::error_code ec,
                                                                         size_t n) {
      if (ec) return;
      conn->in.append(conn->chunk, n);
      const size_t end = conn->in.find("\r\n\r\n");
      if (end == std::string::npos) return Serve(conn);
      size_t length = 0;
      const size_t cl = conn->in.find("Content-Length: ");
      if (cl != std::string::npos && cl < end) length = std::stoul(conn->in.substr(cl + 16));
      if (conn->in.size() < end + 4 + length) return Serve(conn);
      const std::string request = conn->in.substr(0, end + 4 + length);
      conn->in.erase(0, end + 4 + length);
      ++requests_;
      if (++in_flight_ > most_in_flight_) most_in_flight_ = in_flight_;
      const size_t path_start = request.find(' ') + 1;
      const std::string path = request.substr(path_start, request.find(' ', path_start) - path_start);
      if (mode_ == "silent" || path.starts_with("/slow")) return Wait(conn);
      if (path.starts_with("/deny")) {
        auto denied =
            std::make_shared<std::string>("HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\ndenied\n");
        --in_flight_;
        asio::async_write(conn->socket, asio::buffer(*denied),
                          [this, conn, denied](boost::system::error_code, size_t) { Serve(conn); });
        return;
      }
      if (mode_ == "reset" || path.starts_with("/reset")) {
        --in_flight_;
        linger hard{1, 0};
        setsockopt(conn->socket.native_handle(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        conn->socket.close();
        return;
      }
      const bool head = request.rfind("HEAD ", 0) == 0;
      auto answer = std::make_shared<std::string>(
          std::string(mode_ == "interim" ? "HTTP/1.1 100 Continue\r\n\r\n" : "") +
          "HTTP/1.1 200 OK\r\nx-upstream: yes\r\nContent-Length: " + std::to_string(request.size()) + "\r\n" +
          (mode_ == "close" ? "Connection: close\r\n" : "") + "\r\n" + (head ? "" : request));
      if (mode_ == "held" && !released_) {
        held_.emplace_back(conn, answer);
        return;
      }
      if (mode_ == "delay") {  // answered 300 ms later
        auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(300));
        timer->async_wait([this, conn, answer, timer](boost::system::error_code) { Answer(conn, answer); });
        return;
      }
      Answer(conn, answer);
    });
  }

  void Answer(std::shared_ptr<Conn> conn, std::shared_ptr<std::string> answer) {
    --in_flight_;
    asio::async_write(conn->socket, asio::buffer(*answer),
                      [this, conn, answer](boost::system::error_code write_ec, size_t) {
                        if (write_ec) return;
                        if (mode_ == "close" || mode_ == "drop") {
                          boost::system::error_code ignored;
                          conn->socket.shutdown(tcp::socket::shutdown_both, ignored);
                          conn->socket.close(ignored);
                          ++closed_;
                          return;
                        }
                        Serve(conn);
                      });
  }

  // A request that gets no answer: the connection is watched until the client closes it.
  void Wait(std::shared_ptr<Conn> conn) {
    conn->socket.async_read_some(asio::buffer(conn->chunk),
                                 [this, conn](boost::system::error_code ec, size_t) {
                                   if (ec) {
                                     --in_flight_;
                                     ++abandoned_;
                                     return;
                                   }
                                   Wait(conn);
                                 });
  }

  std::string mode_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> abandoned_{0};
  std::atomic<int> most_in_flight_{0};
  std::atomic<int> closed_{0};
  int in_flight_ = 0;  // on the server's thread only
  // "held": on the server's thread only.
  bool released_ = false;
  std::vector<std::pair<std::shared_ptr<Conn>, std::shared_ptr<std::string>>> held_;
  std::thread thread_;
};

}  // namespace wasmlet::testing
