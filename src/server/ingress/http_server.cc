#include "server/ingress/http_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstring>
#include <optional>

#include "common/text.h"
#include "server/runtime/loop_io.h"

namespace wasmlet::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string Text(beast::string_view s) { return std::string(s.data(), s.size()); }

// Beast keeps each field's name and value in 16-bit sizes (with 2 bytes for ": " or CRLF).
constexpr size_t kMaxFieldBytes = 65535 - 2;

// What is wrong with a response a handler (a guest, in the end) produced, or OK.
Status CheckResponse(const abi::HttpResponse& response) {
  if (response.status < 100 || response.status > 599) {
    return InvalidArgument("the response status " + std::to_string(response.status) +
                           " is not an HTTP status (100-599)");
  }
  if (response.status < 200) {
    // A client reads a 1xx as an interim answer and keeps waiting for the final one.
    return InvalidArgument("the response status " + std::to_string(response.status) +
                           " is an interim (1xx) status; a request needs a final answer (200-599)");
  }
  for (const auto& [name, value] : response.headers) {
    if (name.empty() || name.size() > kMaxFieldBytes || !std::all_of(name.begin(), name.end(), [](char c) {
          return IsHttpTokenChar(static_cast<unsigned char>(c));
        })) {
      return InvalidArgument("the response header name '" + Printable(name, 64) +
                             "' is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)");
    }
    if (value.size() > kMaxFieldBytes) {
      return InvalidArgument("the response header '" + Printable(name, 64) + "' has a value of " +
                             std::to_string(value.size()) + " bytes, over HTTP/1.1's limit here of " +
                             std::to_string(kMaxFieldBytes));
    }
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return InvalidArgument("the response header '" + Printable(name, 64) +
                             "' has a CR, LF or NUL byte in its value");
    }
  }
  return Status::Ok();
}

// Whether a response with this status has no content (RFC 9110 §6.4.1): no body and no
// Content-Length go on the wire, whatever the handler put in the body.
bool HasNoContent(unsigned status) { return status == 204 || status == 304; }

// Writes the response's bytes into `out` (kept by the connection, so its capacity is reused).
// The answer to a HEAD request says how long the body would be, and sends none.
void Serialize(const abi::HttpResponse& response, unsigned version, bool keep_alive, bool head,
               std::string& out) {
  const unsigned status = response.status;
  const beast::string_view reason = http::obsolete_reason(http::int_to_status(status));
  out.clear();
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  char code[4] = {static_cast<char>('0' + status / 100), static_cast<char>('0' + status / 10 % 10),
                  static_cast<char>('0' + status % 10), ' '};
  out.append(code, 4).append(reason.data(), reason.size()).append("\r\n");
  for (const auto& [name, value] : response.headers) {
    if (beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
        beast::iequals(name, "connection")) {
      continue;  // the server frames the message itself
    }
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (version == 10 && keep_alive) out.append("Connection: keep-alive\r\n");
  if (version != 10 && !keep_alive) out.append("Connection: close\r\n");
  const bool body = !HasNoContent(status);
  if (body) out.append("Content-Length: ").append(std::to_string(response.body.size())).append("\r\n");
  out.append("\r\n");
  if (body && !head) out.append(response.body);
}

}  // namespace

abi::HttpResponse TextResponse(unsigned status, std::string message) {
  abi::HttpResponse r;
  r.status = status;
  r.headers = {{"content-type", "text/plain; charset=utf-8"}};
  r.body = std::move(message) + "\n";
  return r;
}

class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  // The loop's own executor type, not a type-erased one: no executor copies on each operation.
  using Socket = LoopSocket;
  using Timer = LoopTimer;
  using Clock = std::chrono::steady_clock;

  // A `refused` session reads one request and answers it 503: the server is at max_connections.
  Session(Socket socket, HttpServer& server, bool refused)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        server_(server),
        in_flight_(server.in_flight_),
        connections_(server.connections_),
        sessions_(server.sessions_),
        refused_(refused) {
    connections_->fetch_add(1);
    // Once per connection, not per request: each is a system call.
    beast::error_code ignored;
    const tcp::endpoint remote = socket_.remote_endpoint(ignored);
    const tcp::endpoint local = socket_.local_endpoint(ignored);
    remote_address_ = remote.address().to_string(ignored);
    remote_port_ = remote.port();
    local_address_ = local.address().to_string(ignored);
    local_port_ = local.port();
  }

  ~Session() {
    connections_->fetch_sub(1);
    sessions_->Remove(this);
  }

  void Start() {
    sessions_->Add(this, weak_from_this());
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  asio::io_context& io() { return socket_.get_executor().context(); }

  // On the connection's thread, once the server stops: a connection waiting for its next request
  // is closed before reading one; one with a request in hand answers it and closes after.
  void StopIfIdle() {
    if (!waiting_for_request_) return;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);  // the read in progress ends with operation_aborted
  }

 private:
  void Read() {
    method_.clear();  // an error answered before the request is parsed is not a HEAD's
    parser_.emplace();
    parser_->body_limit(server_.options_.max_request_body);
    parser_->header_limit(server_.options_.max_header_bytes);
    SetDeadline(Clock::now() + server_.options_.idle_timeout);  // idle keep-alive connections close
    waiting_for_request_ = true;
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    waiting_for_request_ = false;
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || timed_out_) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      return Send(TextResponse(413, "request body is over the limit of " +
                                        std::to_string(server_.options_.max_request_body) + " bytes"),
                  11, false);
    }
    if (ec == http::error::header_limit)
      return Send(TextResponse(431, "request headers are too large"), 11, false);
    if (ec) return Send(TextResponse(400, "malformed HTTP request: " + ec.message()), 11, false);
    if (refused_) {
      return Send(TextResponse(503, "the server is at its connection limit (max_connections = " +
                                        std::to_string(server_.options_.max_connections) +
                                        "); retry on an existing connection or later"),
                  parser_->get().version(), false);
    }

    auto& message = parser_->get();
    abi::HttpRequest request;
    request.method = Text(message.method_string());
    request.path = Text(message.target());
    method_ = request.method;
    target_ = request.path;
    request.protocol = message.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
    for (const auto& field : message) {
      const std::string name = Text(field.name_string());
      if (field.name() == http::field::host) {
        request.authority = Text(field.value());
        continue;
      }
      if (field.name() == http::field::transfer_encoding || field.name() == http::field::content_length)
        continue;
      request.headers.emplace_back(name, Text(field.value()));
    }
    request.body = std::move(message.body());
    request.source_address = remote_address_;
    request.source_port = remote_port_;
    request.destination_address = local_address_;
    request.destination_port = local_port_;

    const unsigned version = message.version();
    const bool keep_alive = message.keep_alive();
    SetDeadline(Clock::time_point::max());  // the handler has its own limits
    // Counted until its answer is on the wire: a graceful stop waits for the write, not only
    // for the handler.
    in_flight_->fetch_add(1);
    counted_ = true;
    auto self = shared_from_this();
    auto answered = std::make_shared<std::atomic<bool>>(false);
    Respond respond = [self, version, keep_alive, answered](abi::HttpResponse response) {
      if (answered->exchange(true)) return;  // a second answer is a bug upstream; the first stands
      // On the connection's own thread (the common case) this writes at once.
      asio::dispatch(self->socket_.get_executor(),
                     [self, response = std::move(response), version, keep_alive]() mutable {
                       self->Send(std::move(response), version, keep_alive);
                     });
    };
    try {
      server_.handler_(std::move(request), respond);
    } catch (const std::exception& e) {
      // The last line of defence: one request never takes the process down.
      spdlog::error("internal error while handling {} {}: {}", Printable(method_), Printable(target_),
                    Printable(e.what()));
      respond(TextResponse(500, "internal error while handling the request (logged by the server)"));
    }
  }

  void Send(abi::HttpResponse response, unsigned version, bool keep_alive) {
    // A stopping server answers what it has in flight and closes the connection after it.
    if (server_stopping_()) keep_alive = false;
    if (Status bad = CheckResponse(response); !bad.ok()) {
      // Never put what a guest wrote on the wire unchecked: Beast would throw on it, and a
      // CR or LF would let a guest split the response.
      spdlog::warn("answering 502 instead of an invalid response: {}", bad.message());
      response = TextResponse(502, "the function produced an invalid HTTP response: " + bad.message());
    }
    Serialize(response, version, keep_alive, method_ == "HEAD", out_);
    SetDeadline(Clock::now() + server_.options_.idle_timeout);  // a client that never takes it is cut off
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        if (self->counted_) {
                          self->counted_ = false;
                          self->in_flight_->fetch_sub(1);
                        }
                        if (ec || !keep_alive || self->server_stopping_()) return self->Close();
                        self->Read();
                      });
  }

  // One timer per connection bounds how long it may wait for the client (to send a request, or
  // to take an answer). Deadlines mostly move later, so the timer is not re-armed for each
  // request: when it fires early it sleeps again until the deadline of the moment.
  void SetDeadline(Clock::time_point deadline) {
    deadline_ = deadline;
    if (timer_armed_ || deadline == Clock::time_point::max()) return;
    ArmTimer();
  }

  void ArmTimer() {
    timer_armed_ = true;
    timer_.expires_at(deadline_);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      self->timer_armed_ = false;
      if (ec) return;
      if (self->deadline_ == Clock::time_point::max()) return;  // the next deadline re-arms it
      if (Clock::now() < self->deadline_) return self->ArmTimer();
      // The client kept the connection idle past the limit: end it; the pending operation
      // fails with operation_aborted.
      self->timed_out_ = true;
      beast::error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
      self->socket_.close(ignored);
    });
  }

  bool server_stopping_() const { return server_.stopping_.load(); }

  void Close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    // The timer's handler holds the session. If it has fired already (queued, so cancel does
    // not reach it), this deadline keeps it from arming again.
    deadline_ = Clock::time_point::max();
    timer_.cancel();
  }

  Socket socket_;
  Timer timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timer_armed_ = false;
  bool timed_out_ = false;
  bool waiting_for_request_ = false;  // between Read and OnRead: nothing of a request in hand
  bool counted_ = false;              // the request being answered is in in_flight_
  // The connection's ends, as text once per connection (formatting an address costs a
  // sprintf).
  std::string remote_address_;
  uint16_t remote_port_ = 0;
  std::string local_address_;
  uint16_t local_port_ = 0;
  HttpServer& server_;
  std::shared_ptr<std::atomic<size_t>> in_flight_;
  std::shared_ptr<std::atomic<size_t>> connections_;
  std::shared_ptr<SessionSet> sessions_;
  const bool refused_;
  std::string method_;  // of the request being handled, for the log
  std::string target_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;  // the answer being written
};

HttpServer::HttpServer(std::vector<asio::io_context*> loops, Options options, Handler handler)
    : options_(options), handler_(std::move(handler)) {
  for (asio::io_context* io : loops) listeners_.push_back(std::make_unique<Listener>(*io));
}

HttpServer::~HttpServer() = default;

Status HttpServer::Listen(const std::string& address) {
  auto split = SplitHostPort(address);
  if (!split.ok()) return split.status();
  if (split->first.empty()) split->first = "0.0.0.0";  // ":2045": every address
  beast::error_code ec;
  tcp::resolver resolver(listeners_.front()->io);
  auto endpoints = resolver.resolve(split->first, std::to_string(split->second), ec);
  if (ec || endpoints.empty()) return InvalidArgument("cannot resolve " + address + ": " + ec.message());
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  for (auto& listener : listeners_) {
    tcp::acceptor& acceptor = listener->acceptor;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && listeners_.size() > 1) acceptor.set_option(reuse_port(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      for (auto& opened : listeners_) {
        beast::error_code ignored;
        opened->acceptor.close(ignored);
      }
      return Status(StatusCode::kFailedPrecondition,
                    "cannot listen on " + address + ": " + ec.message() +
                        (ec == asio::error::address_in_use ? " (is another server running?)" : ""));
    }
    // Port 0 picked a free port for the first socket; the others share it.
    endpoint.port(acceptor.local_endpoint().port());
  }
  port_ = endpoint.port();
  for (auto& listener : listeners_) {
    asio::post(listener->io, [this, raw = listener.get()] { Accept(*raw); });
  }
  return Status::Ok();
}

void HttpServer::Accept(Listener& listener) {
  listener.acceptor.async_accept(
      listener.io, [this, &listener](beast::error_code ec, Session::Socket socket) {
        if (ec == asio::error::operation_aborted || !listener.acceptor.is_open()) return;
        if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
            ec == asio::error::no_memory || ec.value() == ENFILE) {
          // Out of file descriptors: the pending connection stays in the backlog and accept would
          // fail again at once. Pause instead of spinning, and say why in the log.
          const auto now = std::chrono::steady_clock::now();
          if (now - listener.last_warning > std::chrono::seconds(5)) {
            listener.last_warning = now;
            spdlog::warn(
                "cannot accept connections on port {}: {} ({} open); pausing accepts for 100 ms. "
                "Raise the file limit (ulimit -n) or lower wasmlet.max_connections",
                port_, ec.message(), connections_->load());
          }
          listener.retry.expires_after(std::chrono::milliseconds(100));
          listener.retry.async_wait([this, &listener](beast::error_code wait_ec) {
            if (!wait_ec && listener.acceptor.is_open()) Accept(listener);
          });
          return;
        }
        if (!ec) {
          socket.set_option(tcp::no_delay(true), ec);
          const bool refused = connections_->load() >= options_.max_connections;
          std::make_shared<Session>(std::move(socket), *this, refused)->Start();
        }
        Accept(listener);
      });
}

void HttpServer::SessionSet::Add(Session* session, std::weak_ptr<Session> handle) {
  MutexLock lock(mutex);
  open.emplace(session, std::move(handle));
}

void HttpServer::SessionSet::Remove(Session* session) {
  MutexLock lock(mutex);
  open.erase(session);
}

void HttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  listeners_stopping_ = listeners_.size();
  for (auto& listener : listeners_) {
    asio::post(listener->io, [this, raw = listener.get()] {
      beast::error_code ignored;
      raw->acceptor.close(ignored);
      raw->retry.cancel();
      // No session of this loop reads a new request from here on: the idle ones close now, the
      // others after their answer (Send sees stopping_). Sessions of other loops are theirs.
      std::vector<std::shared_ptr<Session>> here;
      {
        MutexLock lock(sessions_->mutex);
        for (auto& [session, handle] : sessions_->open) {
          if (auto alive = handle.lock(); alive && &alive->io() == &raw->io) here.push_back(std::move(alive));
        }
      }
      for (auto& session : here) session->StopIfIdle();
      listeners_stopping_.fetch_sub(1);
    });
  }
}

}  // namespace wasmlet::server
