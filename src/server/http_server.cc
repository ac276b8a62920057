#include "server/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace wasmlet::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string Text(beast::string_view s) { return std::string(s.data(), s.size()); }

http::response<http::string_body> ToBeast(const abi::HttpResponse& response, unsigned version,
                                          bool keep_alive) {
  http::response<http::string_body> out;
  out.version(version);
  out.result(static_cast<unsigned>(response.status));
  for (const auto& [name, value] : response.headers) {
    if (name == "content-length" || name == "transfer-encoding" || name == "connection") continue;
    out.insert(name, value);
  }
  out.body() = response.body;
  out.keep_alive(keep_alive);
  out.prepare_payload();
  return out;
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
  Session(tcp::socket socket, HttpServer& server)
      : stream_(std::move(socket)), server_(server), in_flight_(server.in_flight_) {
    // Once per connection, not per request: each is a system call.
    beast::error_code ignored;
    remote_ = stream_.socket().remote_endpoint(ignored);
    local_ = stream_.socket().local_endpoint(ignored);
  }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(server_.options_.max_request_body);
    parser_->header_limit(server_.options_.max_header_bytes);
    stream_.expires_after(std::chrono::seconds(60));  // idle keep-alive connections close
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
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

    auto& message = parser_->get();
    abi::HttpRequest request;
    request.method = Text(message.method_string());
    request.path = Text(message.target());
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
    request.source_address = remote_.address().to_string();
    request.source_port = remote_.port();
    request.destination_address = local_.address().to_string();
    request.destination_port = local_.port();

    const unsigned version = message.version();
    const bool keep_alive = message.keep_alive();
    stream_.expires_never();  // the handler has its own limits
    in_flight_->fetch_add(1);
    auto self = shared_from_this();
    server_.handler_(std::move(request), [self, version, keep_alive](abi::HttpResponse response) {
      asio::post(self->stream_.get_executor(),
                 [self, response = std::move(response), version, keep_alive]() mutable {
                   self->in_flight_->fetch_sub(1);
                   self->Send(std::move(response), version, keep_alive);
                 });
    });
  }

  void Send(abi::HttpResponse response, unsigned version, bool keep_alive) {
    // A stopping server answers what it has in flight and closes the connection after it.
    if (server_stopping_()) keep_alive = false;
    response_ = std::make_shared<http::response<http::string_body>>(ToBeast(response, version, keep_alive));
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        if (ec || !keep_alive) return self->Close();
                        self->Read();
                      });
  }

  bool server_stopping_() const { return server_.stopping_.load(); }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  tcp::endpoint remote_;
  tcp::endpoint local_;
  HttpServer& server_;
  std::shared_ptr<std::atomic<size_t>> in_flight_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::string_body>> response_;
};

HttpServer::HttpServer(asio::io_context& io, Options options, Handler handler)
    : io_(io), options_(options), handler_(std::move(handler)), acceptor_(io) {}

HttpServer::~HttpServer() = default;

Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("\"" + address + "\" is not host:port");
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  try {
    port = std::stoi(address.substr(colon + 1));
  } catch (...) {
  }
  if (port < 0 || port > 65535) return InvalidArgument("\"" + address + "\" has no valid port");
  if (host.empty()) host = "0.0.0.0";
  return std::make_pair(host, static_cast<uint16_t>(port));
}

Status HttpServer::Listen(const std::string& address) {
  auto split = SplitHostPort(address);
  if (!split.ok()) return split.status();
  beast::error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(split->first, std::to_string(split->second), ec);
  if (ec || endpoints.empty()) return InvalidArgument("cannot resolve " + address + ": " + ec.message());
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor_.close(ignored);
    return Status(StatusCode::kFailedPrecondition,
                  "cannot listen on " + address + ": " + ec.message() +
                      (ec == asio::error::address_in_use ? " (is another server running?)" : ""));
  }
  port_ = acceptor_.local_endpoint().port();
  Accept();
  return Status::Ok();
}

void HttpServer::Accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket), *this)->Start();
    }
    Accept();
  });
}

void HttpServer::Stop() {
  stopping_ = true;
  asio::post(io_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
}

}  // namespace wasmlet::server
