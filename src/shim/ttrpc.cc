#include "shim/ttrpc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "ttrpc.pb.h"

namespace wasmlet::shim {

namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Waits until `fd` is readable (or `timeout_ms` passes; < 0 waits for ever).
Status WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    const int n = poll(&p, 1, timeout_ms);
    if (n > 0) return Status::Ok();
    if (n == 0)
      return Status(StatusCode::kDeadlineExceeded, "no answer within " + std::to_string(timeout_ms) + " ms");
    if (errno != EINTR) return Internal(Errno("poll"));
  }
}

// Reads exactly `size` bytes. kNotFound when the peer closed before the first byte.
Status ReadFull(int fd, char* out, size_t size, int timeout_ms) {
  size_t done = 0;
  while (done < size) {
    WASMLET_RETURN_IF_ERROR(WaitReadable(fd, timeout_ms));
    const ssize_t n = recv(fd, out + done, size - done, 0);
    if (n == 0) {
      return done == 0 ? NotFound("connection closed") : Internal("connection closed inside a frame");
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return NotFound("connection reset");
      return Internal(Errno("recv"));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status WriteFull(int fd, const char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = send(fd, data + done, size - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable(Errno("send"));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

std::string StripUnixScheme(const std::string& address) {
  constexpr std::string_view kScheme = "unix://";
  return address.rfind(kScheme, 0) == 0 ? address.substr(kScheme.size()) : address;
}

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidArgument("socket path '" + path + "' is empty or longer than " +
                           std::to_string(sizeof addr.sun_path - 1) +
                           " bytes; choose a shorter state directory");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

void EncodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderSize]) {
  out[0] = static_cast<uint8_t>(h.length >> 24);
  out[1] = static_cast<uint8_t>(h.length >> 16);
  out[2] = static_cast<uint8_t>(h.length >> 8);
  out[3] = static_cast<uint8_t>(h.length);
  out[4] = static_cast<uint8_t>(h.stream_id >> 24);
  out[5] = static_cast<uint8_t>(h.stream_id >> 16);
  out[6] = static_cast<uint8_t>(h.stream_id >> 8);
  out[7] = static_cast<uint8_t>(h.stream_id);
  out[8] = h.type;
  out[9] = h.flags;
}

FrameHeader DecodeFrameHeader(const uint8_t in[kFrameHeaderSize]) {
  FrameHeader h;
  h.length = uint32_t{in[0]} << 24 | uint32_t{in[1]} << 16 | uint32_t{in[2]} << 8 | in[3];
  h.stream_id = uint32_t{in[4]} << 24 | uint32_t{in[5]} << 16 | uint32_t{in[6]} << 8 | in[7];
  h.type = in[8];
  h.flags = in[9];
  return h;
}

int32_t RpcCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kInvalidArgument: return 3;
    case StatusCode::kDeadlineExceeded: return 4;
    case StatusCode::kNotFound: return 5;
    case StatusCode::kAlreadyExists: return 6;
    case StatusCode::kResourceExhausted: return 8;
    case StatusCode::kFailedPrecondition: return 9;
    case StatusCode::kOutOfRange: return 11;
    case StatusCode::kUnimplemented: return 12;
    case StatusCode::kInternal: return 13;
    case StatusCode::kUnavailable: return 14;
    case StatusCode::kTrap:
    case StatusCode::kExit: return 2;  // UNKNOWN
  }
  return 2;
}

Status StatusForRpcCode(int32_t code, std::string message) {
  switch (code) {
    case 0: return Status::Ok();
    case 3: return InvalidArgument(std::move(message));
    case 4: return Status(StatusCode::kDeadlineExceeded, std::move(message));
    case 5: return NotFound(std::move(message));
    case 6: return AlreadyExists(std::move(message));
    case 8: return ResourceExhausted(std::move(message));
    case 9: return FailedPrecondition(std::move(message));
    case 11: return OutOfRange(std::move(message));
    case 12: return Unimplemented(std::move(message));
    case 14: return Unavailable(std::move(message));
    default: return Internal(std::move(message));
  }
}

FrameSocket::~FrameSocket() {
  if (fd_ >= 0) close(fd_);
}

Status FrameSocket::Write(uint32_t stream_id, FrameType type, const std::string& payload) {
  if (payload.size() > kMaxPayload) {
    return ResourceExhausted("a message of " + std::to_string(payload.size()) +
                             " bytes is over ttrpc's 4 MiB limit");
  }
  uint8_t header[kFrameHeaderSize];
  EncodeFrameHeader({static_cast<uint32_t>(payload.size()), stream_id, static_cast<uint8_t>(type), 0},
                    header);
  MutexLock lock(write_mutex_);
  WASMLET_RETURN_IF_ERROR(WriteFull(fd_, reinterpret_cast<const char*>(header), sizeof header));
  return WriteFull(fd_, payload.data(), payload.size());
}

Status FrameSocket::Read(FrameHeader& header, std::string& payload, int timeout_ms) {
  uint8_t raw[kFrameHeaderSize];
  WASMLET_RETURN_IF_ERROR(ReadFull(fd_, reinterpret_cast<char*>(raw), sizeof raw, timeout_ms));
  header = DecodeFrameHeader(raw);
  if (header.length > kMaxPayload) {
    // Skip the payload so the stream stays in step, then report it.
    char sink[16384];
    for (uint32_t left = header.length; left > 0;) {
      const uint32_t chunk = std::min<uint32_t>(left, sizeof sink);
      WASMLET_RETURN_IF_ERROR(ReadFull(fd_, sink, chunk, timeout_ms));
      left -= chunk;
    }
    return ResourceExhausted("a frame of " + std::to_string(header.length) +
                             " bytes is over ttrpc's 4 MiB limit");
  }
  payload.resize(header.length);
  if (header.length == 0) return Status::Ok();
  Status status = ReadFull(fd_, payload.data(), header.length, timeout_ms);
  if (status.code() == StatusCode::kNotFound) return Internal("connection closed inside a frame");
  return status;
}

void TtrpcServer::Register(const std::string& service, const std::string& method, Handler handler) {
  handlers_[service + "/" + method] = std::move(handler);
}

void TtrpcServer::Serve(int listen_fd) {
  listen_fd_ = listen_fd;
  while (!stopping_) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;  // Stop() shut the socket down
    }
    auto socket = std::make_shared<FrameSocket>(fd);
    std::thread([this, socket] { ServeConnection(socket); }).detach();
  }
  // The call that stopped the server (Shutdown) is still answering: let its answer, and any
  // other in flight, reach the wire before the caller ends the process.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (in_flight_ > 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void TtrpcServer::Stop() {
  stopping_ = true;
  const int fd = listen_fd_.load();
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

void TtrpcServer::ServeConnection(std::shared_ptr<FrameSocket> socket) {
  for (;;) {
    FrameHeader header;
    std::string payload;
    Status status = socket->Read(header, payload);
    if (status.code() == StatusCode::kResourceExhausted && header.type == uint8_t(FrameType::kRequest)) {
      ttrpc::Response response;
      response.mutable_status()->set_code(RpcCodeFor(status));
      response.mutable_status()->set_message(status.message());
      (void)socket->Write(header.stream_id, FrameType::kResponse, response.SerializeAsString());
      continue;
    }
    if (!status.ok()) return;  // peer gone or the stream is broken: drop the connection
    if (header.type != uint8_t(FrameType::kRequest)) continue;  // nothing else is meant for a server
    in_flight_++;
    std::thread([this, socket, id = header.stream_id, frame = std::move(payload)]() mutable {
      HandleRequest(socket, id, std::move(frame));
      in_flight_--;
    }).detach();
  }
}

void TtrpcServer::HandleRequest(std::shared_ptr<FrameSocket> socket, uint32_t stream_id, std::string frame) {
  ttrpc::Request request;
  ttrpc::Response response;
  auto fail = [&](const Status& status) {
    response.mutable_status()->set_code(RpcCodeFor(status));
    response.mutable_status()->set_message(status.message());
  };
  if (!request.ParseFromString(frame)) {
    fail(InvalidArgument("the request is not a ttrpc.Request message"));
  } else {
    auto it = handlers_.find(request.service() + "/" + request.method());
    if (it == handlers_.end()) {
      fail(Unimplemented(request.service() + "/" + request.method() +
                         " is not implemented by wasmlet's shim"));
    } else {
      Metadata metadata;
      for (const auto& kv : request.metadata()) metadata.emplace(kv.key(), kv.value());
      auto result = it->second(request.payload(), metadata);
      if (result.ok()) {
        response.set_payload(std::move(*result));
      } else {
        fail(result.status());
      }
    }
  }
  (void)socket->Write(stream_id, FrameType::kResponse, response.SerializeAsString());
}

Result<std::unique_ptr<TtrpcClient>> TtrpcClient::Connect(const std::string& address, int timeout_ms) {
  auto fd = ConnectUnix(address, timeout_ms);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<TtrpcClient>(new TtrpcClient(*fd));
}

Result<std::string> TtrpcClient::Call(const std::string& service, const std::string& method,
                                      const std::string& payload, const Metadata& metadata, int timeout_ms) {
  ttrpc::Request request;
  request.set_service(service);
  request.set_method(method);
  request.set_payload(payload);
  request.set_timeout_nano(int64_t{timeout_ms} * 1000000);
  for (const auto& [key, value] : metadata) {
    auto* kv = request.add_metadata();
    kv->set_key(key);
    kv->set_value(value);
  }
  const uint32_t stream_id = next_stream_id_;
  next_stream_id_ += 2;
  WASMLET_RETURN_IF_ERROR(socket_.Write(stream_id, FrameType::kRequest, request.SerializeAsString()));
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Status(StatusCode::kDeadlineExceeded, service + "/" + method + ": no answer in time");
    FrameHeader header;
    std::string frame;
    Status status = socket_.Read(header, frame, static_cast<int>(left.count()));
    if (!status.ok()) return Unavailable(service + "/" + method + ": " + status.message());
    if (header.stream_id != stream_id || header.type != uint8_t(FrameType::kResponse)) continue;
    ttrpc::Response response;
    if (!response.ParseFromString(frame))
      return Internal(service + "/" + method + ": the answer is not a ttrpc.Response");
    if (response.has_status() && response.status().code() != 0) {
      return StatusForRpcCode(response.status().code(), response.status().message());
    }
    return std::move(*response.mutable_payload());
  }
}

Result<int> ListenUnix(const std::string& path) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(Errno("socket"));
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0 || listen(fd, 64) != 0) {
    const std::string message = Errno("cannot listen on " + path);
    close(fd);
    return Internal(message);
  }
  return fd;
}

Result<int> ConnectUnix(const std::string& address, int timeout_ms) {
  const std::string path = StripUnixScheme(address);
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Internal(Errno("socket"));
    if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) == 0) return fd;
    const int error = errno;
    close(fd);
    // A socket that is not there yet, or whose backlog is full, may answer a moment later.
    const bool retry = error == ENOENT || error == ECONNREFUSED || error == EAGAIN;
    if (!retry || std::chrono::steady_clock::now() >= give_up) {
      errno = error;
      return Unavailable(Errno("cannot connect to " + path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace wasmlet::shim
