#include "server/outbound/upstream.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <optional>

#include "common/address.h"
#include "common/text.h"
#include "server/runtime/loop_io.h"

namespace wasmlet::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::chrono::milliseconds kDefaultTimeout{15000};
// A connection idle for less than this is reused without probing it first. Under load a
// connection goes back to work within microseconds, and the probe (one recv per request) was
// the largest single syscall cost of a proxied request. A peer that closes it in this window
// without saying so is covered for idempotent requests by Broken()'s one retry.
constexpr std::chrono::milliseconds kProbeAfterIdle{1};

// Headers that belong to one connection, not to the message: never passed on (RFC 9110 §7.6.1).
bool IsHopByHop(beast::string_view name) {
  // expect: this client sends the body at once and reads past any 100 Continue.
  for (beast::string_view hop : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
                                 "trailer", "upgrade", "content-length", "host", "expect"}) {
    if (beast::iequals(name, hop)) return true;
  }
  return false;
}

std::string Serialize(const abi::HttpRequest& request, const std::string& host_address) {
  std::string out;
  out.reserve(128 + request.body.size());
  out.append(request.method)
      .append(" ")
      .append(request.path.empty() ? "/" : request.path)
      .append(" HTTP/1.1\r\n");
  out.append("Host: ").append(request.authority.empty() ? host_address : request.authority).append("\r\n");
  for (const auto& [name, value] : request.headers) {
    if (IsHopByHop(name)) continue;
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (!request.body.empty() || (request.method != "GET" && request.method != "HEAD"))
    out.append("Content-Length: ").append(std::to_string(request.body.size())).append("\r\n");
  out.append("\r\n").append(request.body);
  return out;
}

// No control character (CR and LF above all) and, with `no_space`, no space either.
bool IsPrintable(std::string_view text, bool no_space) {
  return std::none_of(text.begin(), text.end(), [no_space](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f || (no_space && (c == ' ' || c == '\t'));
  });
}

// What would make the request's bytes say something else than its fields (a CR/LF that ends
// a line early: request smuggling on a connection other clients share); empty when none. The
// request may come from a filter or a guest's call, so nothing in it is trusted.
std::string InvalidRequest(const abi::HttpRequest& request) {
  if (!IsHttpToken(request.method)) return "its method is not an HTTP token";
  if (!request.path.empty() && (request.path.front() != '/' || !IsPrintable(request.path, true)))
    return "its path does not start with '/' or holds a space or a control character";
  if (!IsPrintable(request.authority, true)) return "its authority holds a space or a control character";
  for (const auto& [name, value] : request.headers) {
    if (!IsHttpToken(name)) return "a header name is not an HTTP token";
    if (!IsPrintable(value, false)) return "the value of header '" + name + "' holds a control character";
  }
  return {};
}

// RFC 9110 §9.2.2: sending one of these twice does what sending it once does.
bool IsIdempotent(std::string_view method) {
  for (std::string_view m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
    if (method == m) return true;
  }
  return false;
}

// Whether an idle keep-alive connection has been closed by its peer (or has bytes nobody asked
// for): either way it must not carry another request.
bool Unusable(LoopSocket& socket) {
  char byte;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

abi::HttpResponse ErrorResponse(unsigned status, std::string message) {
  abi::HttpResponse response;
  response.status = status;
  response.headers = {{"content-type", "text/plain; charset=utf-8"}};
  response.details = std::move(message);
  response.body = response.details + "\n";
  response.local = true;  // made here: the upstream did not answer
  return response;
}

}  // namespace

struct UpstreamClient::Connection {
  explicit Connection(asio::io_context& io) : socket(io.get_executor()), timer(io.get_executor()) {}
  LoopSocket socket;
  beast::flat_buffer buffer;
  uint32_t requests = 0;
  // The deadline of the exchange on it. One timer per connection, armed lazily: when it fires
  // before the deadline (a later exchange moved it), it sleeps again until then. Arming a timer
  // per request would cost a timer update, and a cancelled wait to run, every time.
  LoopTimer timer;
  bool armed = false;
  std::chrono::steady_clock::time_point armed_at{};  // when the armed timer fires
  uint64_t generation = 0;                           // of the wait that counts
  std::chrono::steady_clock::time_point deadline{};
  std::weak_ptr<Exchange> exchange;
  std::chrono::steady_clock::time_point idle_since{};  // when it last went back to its pool
};

// One request, from picking a connection to the callback.
class UpstreamClient::Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(UpstreamClient& client, Cluster& cluster, Host& host, abi::HttpRequest request,
           std::chrono::milliseconds timeout, Done done)
      : client_(client),
        alive_(client.self_),
        cluster_(cluster),
        host_(host),
        bytes_(Serialize(request, host.address)),
        head_(request.method == "HEAD"),
        idempotent_(IsIdempotent(request.method)),
        timeout_(timeout.count() > 0 ? timeout : kDefaultTimeout),
        done_(std::move(done)) {}

  // Ends the exchange without its callback; its connection is closed, not reused.
  void Cancel() {
    if (finished_) return;
    finished_ = true;
    if (connect_timer_) connect_timer_->cancel();
    if (resolver_) resolver_->cancel();
    if (connection_) {
      beast::error_code ignored;
      connection_->socket.close(ignored);
    }
  }

  void Start() {
    const auto now = std::chrono::steady_clock::now();
    deadline_ = now + timeout_;
    while (!host_.idle.empty()) {  // the most recently used: the least likely to have been closed
      std::shared_ptr<Connection> idle = std::move(host_.idle.back());
      host_.idle.pop_back();
      if (now - idle->idle_since >= kProbeAfterIdle && Unusable(idle->socket)) continue;  // closed as it goes
      connection_ = std::move(idle);
      reused_ = true;
      Watch();
      return Write();
    }
    Connect();
  }

  // Puts this exchange's deadline on its connection's timer.
  void Watch() {
    Connection& c = *connection_;
    c.deadline = deadline_;
    c.exchange = weak_from_this();
    // Armed for an earlier time: it fires then and sleeps on to this deadline.
    if (c.armed && c.armed_at <= deadline_) return;
    Arm(connection_);
  }

  static void Arm(const std::shared_ptr<Connection>& connection) {
    connection->armed = true;
    connection->armed_at = connection->deadline;
    const uint64_t generation = ++connection->generation;
    connection->timer.expires_at(connection->deadline);  // replaces a later wait, if any
    connection->timer.async_wait([weak = std::weak_ptr<Connection>(connection),
                                  generation](beast::error_code ec) {
      auto c = weak.lock();
      if (!c || generation != c->generation) return;  // a wait that was replaced
      c->armed = false;
      if (ec) return;
      auto exchange = c->exchange.lock();
      if (!exchange || exchange->Over()) return;  // idle: armed again by the next exchange
      if (std::chrono::steady_clock::now() < c->deadline) return Arm(c);
      exchange->Fail(504, "no complete answer within " + std::to_string(exchange->timeout_.count()) + " ms");
    });
  }

 private:
  // Finished, or its client is gone (the client, its clusters and hosts with it): a handler
  // that finds this does nothing more.
  bool Over() const { return finished_ || alive_.expired(); }

  std::string Where() const { return "cluster '" + cluster_.config.name + "', host " + host_.address; }

  void Connect() {
    reused_ = false;
    connection_ = std::make_shared<Connection>(client_.io_);
    Watch();
    connecting_ = true;
    auto split = SplitHostPort(host_.address);
    if (!split.ok()) return Fail(503, split.status().message());
    // The connect timeout runs inside the exchange's: whichever ends first.
    connect_timer_.emplace(client_.io_.get_executor());
    connect_timer_->expires_after(cluster_.config.connect_timeout);
    connect_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->Over() || !self->connecting_) return;
      self->Fail(503, "cannot connect within connect_timeout (" +
                          std::to_string(self->cluster_.config.connect_timeout.count()) + " ms)");
    });
    std::string host = split->first;
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    if (!resolver_) resolver_.emplace(client_.io_);
    resolver_->async_resolve(
        host, std::to_string(split->second),
        [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type found) {
          if (self->Over()) return;
          if (ec) return self->Fail(503, "cannot resolve the host: " + ec.message());
          asio::async_connect(
              self->connection_->socket, found,
              [self](beast::error_code connect_ec, const tcp::endpoint&) { self->OnConnect(connect_ec); });
        });
  }

  void OnConnect(beast::error_code ec) {
    if (Over()) return;
    connecting_ = false;
    if (connect_timer_) connect_timer_->cancel();
    if (ec) return Fail(503, "cannot connect: " + ec.message());
    beast::error_code ignored;
    connection_->socket.set_option(tcp::no_delay(true), ignored);
    Write();
  }

  void Write() {
    ++connection_->requests;
    asio::async_write(connection_->socket, asio::buffer(bytes_),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (self->Over()) return;
                        if (ec) return self->Broken(ec, /*got_some=*/false);
                        self->Read();
                      });
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(client_.options_.max_response_body);
    parser_->skip(head_);  // the answer to a HEAD has no body, whatever its Content-Length says
    http::async_read(connection_->socket, connection_->buffer, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (Over()) return;
    if (ec == http::error::body_limit) {
      return Fail(502, "the answer's body is larger than " +
                           std::to_string(client_.options_.max_response_body) + " bytes");
    }
    if (ec) return Broken(ec, parser_->got_some());
    auto& message = parser_->get();
    if (message.result_int() == 101)
      return Fail(502, "the upstream switched protocols (101), which is not supported");
    if (message.result_int() < 200) return Read();  // an interim answer: the final one follows
    abi::HttpResponse response;
    response.status = message.result_int();
    for (const auto& field : message) {
      if (IsHopByHop(field.name_string())) continue;
      response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    response.body = std::move(message.body());
    response.details = host_.address;  // who answered (the upstream.address property)
    const bool keep = message.keep_alive() && (cluster_.config.max_request_per_conn == 0 ||
                                               connection_->requests < cluster_.config.max_request_per_conn);
    if (keep) client_.ReturnIdle(host_, std::move(connection_));
    Finish(std::move(response));
  }

  // The connection failed before a complete answer.
  void Broken(beast::error_code ec, bool got_some) {
    if (reused_ && !got_some && !retried_ && idempotent_) {
      // Most likely an idle connection the upstream closed just as it was picked. The upstream
      // may have seen the request, so only a request that may run twice is sent again.
      retried_ = true;
      beast::error_code ignored;
      connection_->socket.close(ignored);
      return Connect();
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
      return Fail(502,
                  "the upstream closed the connection before the whole answer came (" + ec.message() + ")");
    }
    if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
      return Fail(502, "the upstream's answer is not valid HTTP: " + ec.message());
    }
    Fail(502, "the connection to the upstream broke: " + ec.message());
  }

  void Fail(unsigned status, const std::string& why) {
    if (connection_) {
      beast::error_code ignored;
      connection_->socket.close(ignored);
      connection_->timer.cancel();
    }
    if (resolver_) resolver_->cancel();
    Finish(ErrorResponse(status, Where() + ": " + why));
  }

  void Finish(abi::HttpResponse response) {
    if (finished_) return;
    finished_ = true;
    if (connect_timer_) connect_timer_->cancel();
    if (!alive_.lock()) return;  // the client is gone (its loop is stopping)
    Done done = std::move(done_);
    done(std::move(response));
  }

  UpstreamClient& client_;
  std::weak_ptr<UpstreamClient*> alive_;
  Cluster& cluster_;
  Host& host_;
  const std::string bytes_;
  const bool head_;
  const bool idempotent_;
  const std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point deadline_{};
  std::optional<LoopTimer> connect_timer_;
  std::optional<tcp::resolver> resolver_;  // only to open a new connection
  Done done_;
  std::shared_ptr<Connection> connection_;
  std::optional<http::response_parser<http::string_body>> parser_;
  bool reused_ = false;
  bool retried_ = false;
  bool connecting_ = false;
  bool finished_ = false;
};

UpstreamClient::UpstreamClient(asio::io_context& io, const std::vector<ClusterConfig>& clusters,
                               Options options)
    : io_(io), options_(options), self_(std::make_shared<UpstreamClient*>(this)) {
  for (const ClusterConfig& config : clusters) {
    Cluster& cluster = clusters_[config.name];
    cluster.config = config;
    for (const std::string& address : config.hosts) cluster.hosts.push_back(Host{address, {}});
  }
}

UpstreamClient::~UpstreamClient() = default;

UpstreamClient::Host& UpstreamClient::PickHost(Cluster& cluster) {
  if (cluster.config.lb == LoadBalancing::kRandom)
    return cluster.hosts[std::uniform_int_distribution<size_t>(0, cluster.hosts.size() - 1)(random_)];
  return cluster.hosts[cluster.next++ % cluster.hosts.size()];
}

void UpstreamClient::ReturnIdle(Host& host, std::shared_ptr<Connection> connection) {
  if (host.idle.size() >= options_.max_idle_per_host) return;  // closed as it goes
  connection->idle_since = std::chrono::steady_clock::now();
  host.idle.push_back(std::move(connection));
}

void UpstreamClient::Handle::Cancel() {
  if (auto exchange = exchange_.lock()) exchange->Cancel();
  exchange_.reset();
}

bool UpstreamClient::HasCluster(const std::string& name) const {
  auto it = clusters_.find(name);
  return it != clusters_.end() && !it->second.hosts.empty();
}

UpstreamClient::Handle UpstreamClient::Send(const std::string& cluster_name, abi::HttpRequest request,
                                            std::chrono::milliseconds timeout, Done done) {
  auto it = clusters_.find(cluster_name);
  if (it == clusters_.end() || it->second.hosts.empty()) {
    done(ErrorResponse(503, "no cluster is named '" + Printable(cluster_name, 64) + "'"));
    return {};
  }
  return Start(it->second, std::move(request), timeout, std::move(done));
}

UpstreamClient::Handle UpstreamClient::SendToAddress(const std::string& address, abi::HttpRequest request,
                                                     std::chrono::milliseconds timeout, Done done) {
  // Each address gets a cluster of its own, named after it (its connections are kept as a
  // cluster's are); only so many, so that a guest cannot make the client hold without bound.
  const std::string name = "address " + address;
  auto it = clusters_.find(name);
  if (it == clusters_.end()) {
    if (address_clusters_ >= options_.max_addresses) {
      done(ErrorResponse(503, "calls went to more than " + std::to_string(options_.max_addresses) +
                                  " different addresses; '" + Printable(address, 64) + "' is refused"));
      return {};
    }
    ++address_clusters_;
    Cluster& cluster = clusters_[name];
    cluster.config.name = name;
    cluster.hosts.push_back(Host{address, {}});
    it = clusters_.find(name);
  }
  return Start(it->second, std::move(request), timeout, std::move(done));
}

UpstreamClient::Handle UpstreamClient::Start(Cluster& cluster, abi::HttpRequest request,
                                             std::chrono::milliseconds timeout, Done done) {
  if (std::string why = InvalidRequest(request); !why.empty()) {
    done(ErrorResponse(500, "cluster '" + Printable(cluster.config.name, 64) +
                                "': the request was not sent, because " + Printable(why, 128)));
    return {};
  }
  Host& host = PickHost(cluster);
  auto exchange =
      std::make_shared<Exchange>(*this, cluster, host, std::move(request), timeout, std::move(done));
  Handle handle;
  handle.exchange_ = exchange;
  exchange->Start();
  return handle;
}

size_t UpstreamClient::idle_connections() const {
  size_t n = 0;
  for (const auto& [name, cluster] : clusters_) {
    for (const Host& host : cluster.hosts) n += host.idle.size();
  }
  return n;
}

}  // namespace wasmlet::server
