// ttrpc: containerd's small RPC protocol (gRPC's messages without HTTP/2), as containerd 1.6
// speaks it to its shims. A frame is a 10-byte header followed by a protobuf payload:
//
//   u32 BE payload length | u32 BE stream id | u8 type (1 request, 2 response, 3 data) | u8 flags
//
// A request carries ttrpc.Request{service, method, payload, timeout_nano, metadata}; the answer,
// on the same stream id, carries ttrpc.Response{status (google.rpc.Status), payload}. Payloads
// are at most 4 MiB. Clients use odd stream ids. Only unary calls exist in ttrpc 1.1.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace wasmlet::shim {

inline constexpr size_t kFrameHeaderSize = 10;
inline constexpr uint32_t kMaxPayload = 4 << 20;

enum class FrameType : uint8_t { kRequest = 1, kResponse = 2, kData = 3 };

struct FrameHeader {
  uint32_t length = 0;
  uint32_t stream_id = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
};

void EncodeFrameHeader(const FrameHeader& header, uint8_t out[kFrameHeaderSize]);
FrameHeader DecodeFrameHeader(const uint8_t in[kFrameHeaderSize]);

// gRPC's status code for a wasmlet Status (what containerd's errdefs turn back into errors).
int32_t RpcCodeFor(const Status& status);
// The wasmlet Status for a gRPC code and message.
Status StatusForRpcCode(int32_t code, std::string message);

// One socket that carries whole frames. Writes are serialised; reads belong to one thread.
class FrameSocket {
 public:
  explicit FrameSocket(int fd) : fd_(fd) {}
  ~FrameSocket();
  FrameSocket(const FrameSocket&) = delete;
  FrameSocket& operator=(const FrameSocket&) = delete;

  Status Write(uint32_t stream_id, FrameType type, const std::string& payload) EXCLUDES(write_mutex_);
  // Reads the next frame. kNotFound at a clean end of stream; kResourceExhausted (with the
  // header filled in and the payload skipped) when the payload is over kMaxPayload.
  // `timeout_ms` < 0 waits for ever.
  Status Read(FrameHeader& header, std::string& payload, int timeout_ms = -1);
  int fd() const { return fd_; }

 private:
  int fd_;
  Mutex write_mutex_;  // one frame at a time on the socket
};

using Metadata = std::multimap<std::string, std::string>;

// The server side: a handler per (service, method). Each request runs on its own thread, so a
// handler may block (Wait does, until its task stops) without holding up the others.
class TtrpcServer {
 public:
  // Returns the serialised response message, or an error sent as the call's status.
  using Handler = std::function<Result<std::string>(const std::string& payload, const Metadata& metadata)>;

  void Register(const std::string& service, const std::string& method, Handler handler);
  // Accepts connections on `listen_fd` (a listening unix socket) until Stop(); returns then.
  void Serve(int listen_fd);
  // Makes Serve return. Safe to call from a handler.
  void Stop();

 private:
  void ServeConnection(std::shared_ptr<FrameSocket> socket);
  void HandleRequest(std::shared_ptr<FrameSocket> socket, uint32_t stream_id, std::string frame);

  std::map<std::string, Handler> handlers_;  // "service/method"
  std::atomic<int> listen_fd_{-1};
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};  // calls being handled; Serve waits for them when it stops
};

// The client side, one call at a time (the shim only publishes events with it).
class TtrpcClient {
 public:
  // `address` is a socket path, with or without "unix://".
  static Result<std::unique_ptr<TtrpcClient>> Connect(const std::string& address, int timeout_ms);

  // Sends one request and waits for its response, at most `timeout_ms`.
  Result<std::string> Call(const std::string& service, const std::string& method, const std::string& payload,
                           const Metadata& metadata, int timeout_ms);

 private:
  explicit TtrpcClient(int fd) : socket_(fd) {}
  FrameSocket socket_;
  uint32_t next_stream_id_ = 1;
};

// Listens on a unix socket at `path` (replacing a stale socket file); returns the fd.
Result<int> ListenUnix(const std::string& path);
// Connects to a unix socket; "unix://" is stripped.
Result<int> ConnectUnix(const std::string& address, int timeout_ms);

}  // namespace wasmlet::shim
