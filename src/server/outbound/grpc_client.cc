#include "server/outbound/grpc_client.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <cstring>
#include <optional>

#include "common/address.h"
#include "common/text.h"
#include "server/runtime/loop_io.h"

namespace wasmlet::server {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using abi::HeaderList;
using abi::OutboundGrpc;

namespace {

// gRPC status codes (grpc/doc/statuscodes.md).
enum GrpcCode : uint32_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kDeadlineExceeded = 4,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

// An answer without grpc-status: its HTTP status says what happened, as gRPC's clients read it.
uint32_t CodeOfHttpStatus(unsigned status) {
  switch (status) {
    case 400: return kInternal;
    case 401: return kUnauthenticated;
    case 403: return kPermissionDenied;
    case 404: return kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504: return kUnavailable;
    default: return kUnknown;
  }
}

// A stream the server reset: its HTTP/2 error code as a gRPC code.
uint32_t CodeOfReset(uint32_t error) {
  switch (error) {
    case NGHTTP2_REFUSED_STREAM: return kUnavailable;  // never processed: safe to try again
    case NGHTTP2_CANCEL: return kCancelled;
    case NGHTTP2_ENHANCE_YOUR_CALM: return kResourceExhausted;
    case NGHTTP2_INADEQUATE_SECURITY: return kPermissionDenied;
    default: return kInternal;
  }
}

// A message on the wire: a flag byte (0: not compressed), its length (4 bytes, big-endian), it.
void AppendFrame(std::string& out, std::string_view message) {
  const auto size = static_cast<uint32_t>(message.size());
  const char prefix[5] = {0, static_cast<char>(size >> 24), static_cast<char>(size >> 16),
                          static_cast<char>(size >> 8), static_cast<char>(size)};
  out.append(prefix, 5).append(message);
}

// grpc-timeout: at most 8 digits and a unit.
std::string GrpcTimeout(std::chrono::milliseconds timeout) {
  const int64_t ms = timeout.count();
  if (ms < 100'000'000) return std::to_string(ms) + "m";
  return std::to_string(std::min<int64_t>(ms / 1000, 99'999'999)) + "S";
}

bool IsNameChar(unsigned char c) {
  return std::islower(c) || std::isdigit(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// What the client writes itself, or what belongs to a connection and not to a call.
bool IsReserved(std::string_view name) {
  for (std::string_view r : {"content-type", "te", "grpc-timeout", "host", "connection", "keep-alive",
                             "proxy-connection", "transfer-encoding", "upgrade", "content-length"}) {
    if (name == r) return true;
  }
  return false;
}

// Why the call cannot be sent as it is; empty when it can.
std::string InvalidRequest(const OutboundGrpc::Request& request) {
  auto is_path_part = [](std::string_view part) {
    return !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return std::isalnum(u) || c == '.' || c == '_' || c == '-' || c == '$';
    });
  };
  if (!is_path_part(request.service))
    return "the service name '" + Printable(request.service, 64) +
           "' is empty or holds a character other than letters, digits, '.', '_', '-'";
  if (!is_path_part(request.method))
    return "the method name '" + Printable(request.method, 64) +
           "' is empty or holds a character other than letters, digits, '.', '_', '-'";
  for (const auto& [name, value] : request.metadata) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (lower.empty() || !std::all_of(lower.begin(), lower.end(), [](char c) { return IsNameChar(c); }))
      return "the metadata name '" + Printable(name, 64) + "' is not a valid header name";
    if (IsReserved(lower)) return "the metadata name '" + lower + "' is set by the host and may not be given";
    if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; }))
      return "the value of metadata '" + Printable(name, 64) + "' holds CR, LF or NUL";
  }
  return {};
}

nghttp2_nv Pair(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

// One call: the Call the guest holds, and its state on its connection.
class GrpcClient::Stream : public OutboundGrpc::Call {
 public:
  Stream(std::weak_ptr<Session> session, OutboundGrpc::Events events, std::string where, uint64_t max_pending)
      : session_(std::move(session)),
        events(std::move(events)),
        where(std::move(where)),
        max_pending_(max_pending) {}

  Status Send(std::string message, bool end_of_stream) override;
  Status CloseSend() override;
  void Cancel() override;

  std::weak_ptr<Session> session_;
  const OutboundGrpc::Events events;
  const std::string where;  // "cluster 'x', host h:p", for messages
  const uint64_t max_pending_;
  int32_t id = -1;
  std::chrono::milliseconds timeout{0};
  std::optional<LoopTimer> deadline;

  // Request side: framed messages not yet taken by nghttp2 (from `taken` on).
  std::string outbox;
  size_t taken = 0;
  bool send_ended = false;  // the guest ended the request side
  bool eof_sent = false;    // ... and nghttp2 has sent END_STREAM

  // Response side.
  std::string inbox;  // bytes of messages not yet whole
  HeaderList block;   // the header block being received
  size_t block_bytes = 0;
  bool got_headers = false;
  unsigned http_status = 0;
  std::optional<uint32_t> grpc_status;
  std::string grpc_message;

  bool over = false;       // ended: the connection ignores it from now on
  bool cancelled = false;  // the guest cancelled: none of its events is delivered
};

// One HTTP/2 connection to one host, carrying any number of calls.
class GrpcClient::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::io_context& io, const ClusterConfig& cluster, std::string address, const Options& options)
      : io_(io),
        socket_(io.get_executor()),
        connect_timer_(io.get_executor()),
        cluster_(cluster.name),
        connect_timeout_(cluster.connect_timeout),
        address_(std::move(address)),
        options_(options) {}

  ~Session() {
    if (h2_) nghttp2_session_del(h2_);
  }

  // Makes the nghttp2 session and queues the connection preface; then Connect.
  Status Init() {
    nghttp2_session_callbacks* callbacks = nullptr;
    if (nghttp2_session_callbacks_new(&callbacks) != 0) return Internal("nghttp2: out of memory");
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &Session::OnHeader);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &Session::OnBeginHeaders);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Session::OnFrame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Session::OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Session::OnStreamClose);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks, &Session::OnNotSent);
    const int rv = nghttp2_session_client_new(&h2_, callbacks, this);
    nghttp2_session_callbacks_del(callbacks);
    if (rv != 0) return Internal(std::string("nghttp2: ") + nghttp2_strerror(rv));
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(options_.max_metadata)},
    };
    nghttp2_submit_settings(h2_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    return {};
  }

  std::string Where() const { return "cluster '" + cluster_ + "', host " + address_; }

  // Whether another call may start on it (not broken, no GOAWAY received).
  bool Usable() const { return !dead_ && nghttp2_session_check_request_allowed(h2_) != 0; }
  bool open() const { return !dead_; }

  Result<std::shared_ptr<Stream>> Open(const OutboundGrpc::Request& request, OutboundGrpc::Events events) {
    auto stream =
        std::make_shared<Stream>(weak_from_this(), std::move(events), Where(), options_.max_pending_send);
    const std::string path = "/" + request.service + "/" + request.method;
    const std::string timeout = GrpcTimeout(request.timeout);
    std::vector<nghttp2_nv> nva = {Pair(":method", "POST"),
                                   Pair(":scheme", "http"),
                                   Pair(":path", path),
                                   Pair(":authority", address_),
                                   Pair("content-type", "application/grpc"),
                                   Pair("te", "trailers")};
    if (request.timeout.count() > 0) nva.push_back(Pair("grpc-timeout", timeout));
    std::vector<std::string> names;  // HTTP/2 wants lower-case names
    names.reserve(request.metadata.size());
    for (const auto& [name, value] : request.metadata) {
      names.push_back(name);
      std::transform(names.back().begin(), names.back().end(), names.back().begin(),
                     [](unsigned char c) { return std::tolower(c); });
      nva.push_back(Pair(names.back(), value));
    }
    nghttp2_data_provider body{};
    body.read_callback = &Session::ReadBody;
    const int32_t id = nghttp2_submit_request(h2_, nullptr, nva.data(), nva.size(), &body, nullptr);
    if (id < 0) return Unavailable(Where() + ": cannot start a stream: " + nghttp2_strerror(id));
    stream->id = id;
    streams_[id] = stream;
    if (request.timeout.count() > 0) {
      stream->timeout = request.timeout;
      stream->deadline.emplace(io_.get_executor());
      stream->deadline->expires_after(request.timeout);
      stream->deadline->async_wait(
          [self = shared_from_this(), weak = std::weak_ptr<Stream>(stream)](boost::system::error_code ec) {
            auto s = weak.lock();
            if (ec || !s || s->over) return;
            self->Finish(*s, kDeadlineExceeded,
                         s->where + ": no answer within " + std::to_string(s->timeout.count()) + " ms",
                         NGHTTP2_CANCEL);
            self->Drain();
            self->Flush();
          });
    }
    ScheduleFlush();
    return stream;
  }

  void Connect() {
    auto split = SplitHostPort(address_);
    if (!split.ok()) {
      dead_ = true;
      return asio::post(io_, [self = shared_from_this(), why = split.status().message()] {
        self->FailAll(kUnavailable, self->Where() + ": " + why);
      });
    }
    connect_timer_.expires_after(connect_timeout_);
    connect_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->dead_ || self->connected_) return;
      self->Broken(kUnavailable, "cannot connect within connect_timeout (" +
                                     std::to_string(self->connect_timeout_.count()) + " ms)");
    });
    std::string host = split->first;
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    resolver_.emplace(io_);
    resolver_->async_resolve(
        host, std::to_string(split->second),
        [self = shared_from_this()](boost::system::error_code ec, tcp::resolver::results_type found) {
          if (self->dead_) return;
          if (ec) return self->Broken(kUnavailable, "cannot resolve the host: " + ec.message());
          asio::async_connect(self->socket_, found,
                              [self](boost::system::error_code connect_ec, const tcp::endpoint&) {
                                self->OnConnect(connect_ec);
                              });
        });
  }

  // Ends every call quietly and closes the connection (the client is going away).
  void Close() {
    for (auto& [id, stream] : streams_) {
      stream->over = stream->cancelled = true;
      if (stream->deadline) stream->deadline->cancel();
    }
    streams_.clear();
    Shut();
  }

  // From a Stream (the guest's host calls): never delivers an event.
  void Resume(Stream& stream) {
    nghttp2_session_resume_data(h2_, stream.id);  // an error when not deferred: nothing to do
    ScheduleFlush();
  }
  void Abandon(Stream& stream) {
    streams_.erase(stream.id);
    if (stream.deadline) stream.deadline->cancel();
    // A request not sent yet is dropped from nghttp2's queue; a stream sent is reset.
    if (!dead_) nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, stream.id, NGHTTP2_CANCEL);
    ScheduleFlush();
  }

 private:
  static Session& Of(void* user_data) { return *static_cast<Session*>(user_data); }

  Stream* Find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() || it->second->over ? nullptr : it->second.get();
  }

  // An event of `stream`, delivered once the current nghttp2 call has returned (its callbacks
  // must not re-enter the session) and only if the guest has not cancelled by then.
  void Emit(Stream& stream, std::function<void(const OutboundGrpc::Events&)> event) {
    auto it = streams_.find(stream.id);
    if (it != streams_.end()) pending_.emplace_back(it->second, std::move(event));
  }

  void Drain() {
    while (!pending_.empty()) {
      auto batch = std::move(pending_);
      pending_.clear();
      for (auto& [stream, event] : batch) {
        if (!stream->cancelled) event(stream->events);
      }
    }
  }

  // Ends `stream` with `code`: its close is queued, the connection forgets it, and the HTTP/2
  // stream is reset with `reset` if it is still open.
  void Finish(Stream& stream, uint32_t code, std::string message,
              std::optional<uint32_t> reset = std::nullopt) {
    if (stream.over) return;
    Emit(stream, [code, message = std::move(message)](const OutboundGrpc::Events& events) {
      if (events.close) events.close(code, message);
    });
    stream.over = true;
    if (stream.deadline) stream.deadline->cancel();
    if (reset && !dead_) nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, stream.id, *reset);
    streams_.erase(stream.id);
  }

  void FailAll(uint32_t code, const std::string& why) {
    std::vector<std::shared_ptr<Stream>> all;
    for (auto& [id, stream] : streams_) all.push_back(stream);
    for (auto& stream : all) Finish(*stream, code, why);
    Drain();
  }

  // The connection cannot go on: every call on it ends with `code`.
  void Broken(uint32_t code, const std::string& why) {
    Shut();
    FailAll(code, Where() + ": " + why);
  }

  void Shut() {
    dead_ = true;
    boost::system::error_code ignored;
    connect_timer_.cancel();
    if (resolver_) resolver_->cancel();
    socket_.close(ignored);
  }

  void OnConnect(boost::system::error_code ec) {
    if (dead_) return;
    connect_timer_.cancel();
    if (ec) return Broken(kUnavailable, "cannot connect: " + ec.message());
    connected_ = true;
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    Read();
    Flush();
  }

  void Read() {
    socket_.async_read_some(asio::buffer(read_buffer_), [self = shared_from_this()](
                                                            boost::system::error_code ec, size_t n) {
      if (self->dead_) return;
      if (ec) {
        return self->Broken(kUnavailable, ec == asio::error::eof ? "the server closed the connection"
                                                                 : "the connection broke: " + ec.message());
      }
      const ssize_t rv = nghttp2_session_mem_recv(self->h2_, self->read_buffer_.data(), n);
      if (rv < 0) {
        self->Drain();
        return self->Broken(
            kInternal, std::string("the server broke HTTP/2: ") + nghttp2_strerror(static_cast<int>(rv)));
      }
      self->Drain();
      self->Flush();
      if (!self->dead_) self->Read();
    });
  }

  // Everything done within one turn of the loop (a guest's call and its messages) goes out in
  // one write.
  void ScheduleFlush() {
    if (flush_scheduled_ || dead_ || !connected_) return;
    flush_scheduled_ = true;
    asio::post(io_, [self = shared_from_this()] {
      self->flush_scheduled_ = false;
      self->Flush();
    });
  }

  void Flush() {
    if (dead_ || !connected_ || writing_) return;
    write_buffer_.clear();
    while (write_buffer_.size() < (256u << 10)) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(h2_, &data);
      if (n < 0) {
        Broken(kInternal, std::string("HTTP/2 failed: ") + nghttp2_strerror(static_cast<int>(n)));
        return;
      }
      if (n == 0) break;
      write_buffer_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    Drain();  // a request nghttp2 could not send ends in OnNotSent
    if (write_buffer_.empty()) {
      // After a GOAWAY with no stream left, the session wants nothing more: close it.
      if (!nghttp2_session_want_read(h2_) && !nghttp2_session_want_write(h2_)) Shut();
      return;
    }
    writing_ = true;
    asio::async_write(socket_, asio::buffer(write_buffer_),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        self->writing_ = false;
                        if (self->dead_) return;
                        if (ec) return self->Broken(kUnavailable, "the connection broke: " + ec.message());
                        self->Flush();
                      });
  }

  // nghttp2 callbacks (inside mem_recv or mem_send). They only record and queue.

  static ssize_t ReadBody(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                          nghttp2_data_source*, void* user_data) {
    Stream* s = Of(user_data).Find(id);
    if (!s) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    const size_t n = std::min(length, s->outbox.size() - s->taken);
    std::memcpy(buf, s->outbox.data() + s->taken, n);
    s->taken += n;
    if (s->taken == s->outbox.size()) {
      s->outbox.clear();
      s->taken = 0;
      if (s->send_ended) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        s->eof_sent = true;
        return static_cast<ssize_t>(n);
      }
      if (n == 0) return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (Stream* s = Of(user_data).Find(frame->hd.stream_id)) {
      s->block.clear();
      s->block_bytes = 0;
    }
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t name_size,
                      const uint8_t* value, size_t value_size, uint8_t, void* user_data) {
    Session& self = Of(user_data);
    Stream* s = self.Find(frame->hd.stream_id);
    if (!s) return 0;
    s->block_bytes += name_size + value_size + 32;  // as HTTP/2 counts a header list's size
    if (s->block_bytes > self.options_.max_metadata) {
      self.Finish(*s, kResourceExhausted,
                  s->where + ": the server's metadata is larger than " +
                      std::to_string(self.options_.max_metadata) + " bytes",
                  NGHTTP2_CANCEL);
      return 0;
    }
    s->block.emplace_back(std::string(reinterpret_cast<const char*>(name), name_size),
                          std::string(reinterpret_cast<const char*>(value), value_size));
    return 0;
  }

  static int OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    Session& self = Of(user_data);
    Stream* s = self.Find(frame->hd.stream_id);
    if (!s) return 0;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS) self.OnHeaders(*s, end);
    if (end && !s->over) self.OnEnd(*s);
    return 0;
  }

  // A whole header block: the response's headers (maybe trailers-only) or its trailers.
  void OnHeaders(Stream& s, bool end) {
    HeaderList metadata;
    for (auto& [name, value] : s.block) {
      if (name == ":status") {
        if (!s.got_headers) s.http_status = static_cast<unsigned>(std::atoi(value.c_str()));
      } else if (name == "grpc-status") {
        s.grpc_status = static_cast<uint32_t>(std::strtoul(value.c_str(), nullptr, 10));
      } else if (name == "grpc-message") {
        s.grpc_message = PercentDecode(value);
      } else if (!name.empty() && name.front() != ':') {
        metadata.emplace_back(std::move(name), std::move(value));
      }
    }
    s.block.clear();
    const bool first = !s.got_headers;
    s.got_headers = true;
    if (first && !end) {
      if (s.http_status != 200 && !s.grpc_status) {
        // Not a gRPC answer: what it is says its HTTP status.
        return Finish(s, CodeOfHttpStatus(s.http_status),
                      s.where + ": the server answered HTTP " + std::to_string(s.http_status) + ", not gRPC",
                      NGHTTP2_CANCEL);
      }
      return Emit(s, [metadata = std::move(metadata)](const OutboundGrpc::Events& events) mutable {
        if (events.initial_metadata) events.initial_metadata(std::move(metadata));
      });
    }
    // Trailers, or a trailers-only answer: metadata for the end (OnEnd follows).
    Emit(s, [metadata = std::move(metadata)](const OutboundGrpc::Events& events) mutable {
      if (events.trailing_metadata) events.trailing_metadata(std::move(metadata));
    });
  }

  // The server ended the stream.
  void OnEnd(Stream& s) {
    // The request side may still be open: the call is over either way.
    const std::optional<uint32_t> reset =
        s.eof_sent ? std::nullopt : std::optional<uint32_t>(NGHTTP2_NO_ERROR);
    if (!s.inbox.empty()) {
      return Finish(s, kInternal, s.where + ": the server ended the stream inside a message", reset);
    }
    if (!s.grpc_status) {
      if (s.http_status != 200) {
        return Finish(s, CodeOfHttpStatus(s.http_status),
                      s.where + ": the server answered HTTP " + std::to_string(s.http_status) + ", not gRPC",
                      reset);
      }
      return Finish(s, kUnknown, s.where + ": the server ended the stream without a grpc-status", reset);
    }
    Finish(s, *s.grpc_status, s.grpc_message, reset);
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t size,
                    void* user_data) {
    Session& self = Of(user_data);
    Stream* s = self.Find(id);
    if (!s) return 0;
    s->inbox.append(reinterpret_cast<const char*>(data), size);
    size_t at = 0;
    while (!s->over && s->inbox.size() - at >= 5) {
      const auto* p = reinterpret_cast<const unsigned char*>(s->inbox.data() + at);
      const uint64_t length = (uint64_t{p[1]} << 24) | (uint64_t{p[2]} << 16) | (uint64_t{p[3]} << 8) | p[4];
      if (p[0] != 0) {
        self.Finish(*s, kInternal,
                    s->where + ": the server sent a compressed message, which was not asked for",
                    NGHTTP2_CANCEL);
        break;
      }
      if (length > self.options_.max_message) {
        self.Finish(*s, kResourceExhausted,
                    s->where + ": the server sent a message of " + std::to_string(length) +
                        " bytes, more than the limit of " + std::to_string(self.options_.max_message),
                    NGHTTP2_CANCEL);
        break;
      }
      if (s->inbox.size() - at < 5 + length) break;
      self.Emit(*s, [message = s->inbox.substr(at + 5, length)](const OutboundGrpc::Events& events) mutable {
        if (events.message) events.message(std::move(message));
      });
      at += 5 + length;
    }
    if (s->over) {
      s->inbox.clear();
    } else {
      s->inbox.erase(0, at);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error, void* user_data) {
    Session& self = Of(user_data);
    Stream* s = self.Find(id);
    if (!s) return 0;
    // Closed before the server ended it: reset by the server, or refused by a GOAWAY.
    self.Finish(*s, CodeOfReset(error),
                s->where + ": the server reset the stream (" + nghttp2_http2_strerror(error) + ")");
    return 0;
  }

  static int OnNotSent(nghttp2_session*, const nghttp2_frame* frame, int error, void* user_data) {
    Session& self = Of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (Stream* s = self.Find(frame->hd.stream_id)) {
      self.Finish(*s, kUnavailable, s->where + ": the call could not be sent: " + nghttp2_strerror(error));
    }
    return 0;
  }

  asio::io_context& io_;
  LoopSocket socket_;
  LoopTimer connect_timer_;
  std::optional<tcp::resolver> resolver_;
  const std::string cluster_;
  const std::chrono::milliseconds connect_timeout_;
  const std::string address_;
  const Options options_;
  nghttp2_session* h2_ = nullptr;
  std::map<int32_t, std::shared_ptr<Stream>> streams_;
  std::vector<std::pair<std::shared_ptr<Stream>, std::function<void(const OutboundGrpc::Events&)>>> pending_;
  std::array<uint8_t, 16 << 10> read_buffer_{};
  std::string write_buffer_;
  bool connected_ = false;
  bool writing_ = false;
  bool flush_scheduled_ = false;
  bool dead_ = false;
};

Status GrpcClient::Stream::Send(std::string message, bool end_of_stream) {
  if (over) return FailedPrecondition("the call has ended");
  if (send_ended) return FailedPrecondition("the call's request side was closed already");
  auto session = session_.lock();
  if (!session) return FailedPrecondition("the call has ended");
  if (outbox.size() - taken + message.size() > max_pending_) {
    return ResourceExhausted("more than " + std::to_string(max_pending_) +
                             " bytes would wait to be sent on this call; wait for answers first");
  }
  AppendFrame(outbox, message);
  send_ended = end_of_stream;
  session->Resume(*this);
  return {};
}

Status GrpcClient::Stream::CloseSend() {
  if (over) return FailedPrecondition("the call has ended");
  if (send_ended) return {};
  auto session = session_.lock();
  if (!session) return FailedPrecondition("the call has ended");
  send_ended = true;
  session->Resume(*this);
  return {};
}

void GrpcClient::Stream::Cancel() {
  cancelled = true;
  if (over) return;
  over = true;
  if (auto session = session_.lock()) session->Abandon(*this);
}

GrpcClient::GrpcClient(asio::io_context& io, const std::vector<ClusterConfig>& clusters, Options options)
    : io_(io), options_(options) {
  for (const ClusterConfig& config : clusters) {
    Cluster& cluster = clusters_[config.name];
    cluster.config = config;
    for (const std::string& address : config.hosts) cluster.hosts.push_back(Host{address, nullptr});
  }
}

GrpcClient::~GrpcClient() {
  for (auto& [name, cluster] : clusters_) {
    for (Host& host : cluster.hosts) {
      if (host.session) host.session->Close();
    }
  }
}

bool GrpcClient::HasCluster(const std::string& name) const {
  auto it = clusters_.find(name);
  return it != clusters_.end() && !it->second.hosts.empty();
}

GrpcClient::Host& GrpcClient::PickHost(Cluster& cluster) {
  if (cluster.config.lb == LoadBalancing::kRandom)
    return cluster.hosts[std::uniform_int_distribution<size_t>(0, cluster.hosts.size() - 1)(random_)];
  return cluster.hosts[cluster.next++ % cluster.hosts.size()];
}

Result<std::shared_ptr<OutboundGrpc::Call>> GrpcClient::Start(OutboundGrpc::Request request,
                                                              OutboundGrpc::Events events) {
  auto it = clusters_.find(request.cluster);
  if (it == clusters_.end() || it->second.hosts.empty())
    return NotFound("no cluster is named '" + Printable(request.cluster, 64) + "'");
  if (std::string why = InvalidRequest(request); !why.empty()) return InvalidArgument(why);
  Host& host = PickHost(it->second);
  if (!host.session || !host.session->Usable()) {
    auto session = std::make_shared<Session>(io_, it->second.config, host.address, options_);
    if (Status s = session->Init(); !s.ok()) return s;
    session->Connect();
    host.session = std::move(session);
  }
  auto stream = host.session->Open(request, std::move(events));
  if (!stream.ok()) return stream.status();
  return std::shared_ptr<OutboundGrpc::Call>(std::move(*stream));
}

size_t GrpcClient::connections() const {
  size_t n = 0;
  for (const auto& [name, cluster] : clusters_) {
    for (const Host& host : cluster.hosts) n += host.session && host.session->open() ? 1 : 0;
  }
  return n;
}

}  // namespace wasmlet::server
