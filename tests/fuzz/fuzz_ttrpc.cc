// The shim's ttrpc framing and messages from arbitrary bytes, as containerd (or anyone who can
// reach the shim's socket) could send them: the bytes go into one end of a socketpair,
// FrameSocket::Read takes frames from the other end until it fails, and each frame goes
// through what TtrpcServer::ServeConnection / HandleRequest (server side) and
// TtrpcClient::Call (client side) do with it, down to the task service's request messages.
#include <google/protobuf/stubs/logging.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "shim/ttrpc.h"
#include "task.pb.h"
#include "ttrpc.pb.h"

namespace {

namespace ttrpc = wasmlet::shim::ttrpc;
namespace task = containerd::task::v2;
using wasmlet::Status;
using wasmlet::StatusCode;
using wasmlet::shim::FrameHeader;
using wasmlet::shim::FrameSocket;
using wasmlet::shim::FrameType;
using wasmlet::shim::kFrameHeaderSize;

// A socketpair holds about 200 KiB unread; the input is written whole before it is read.
constexpr size_t kMaxInput = 64 << 10;

void Check(bool ok) {
  if (!ok) std::abort();
}

// A message that parses must serialise and parse back (what a handler answers goes out this way).
template <typename Message>
void Decode(const std::string& bytes) {
  Message message;
  if (!message.ParseFromString(bytes)) return;
  Message again;
  Check(again.ParseFromString(message.SerializeAsString()));
}

// The task service's request types, by method (shim/task_service.cc registers these).
void DecodeTaskRequest(const std::string& method, const std::string& payload) {
  if (method == "Create") return Decode<task::CreateTaskRequest>(payload);
  if (method == "Start") return Decode<task::StartRequest>(payload);
  if (method == "Kill") return Decode<task::KillRequest>(payload);
  if (method == "Wait") return Decode<task::WaitRequest>(payload);
  if (method == "Delete") return Decode<task::DeleteRequest>(payload);
  if (method == "State") return Decode<task::StateRequest>(payload);
  if (method == "Pids") return Decode<task::PidsRequest>(payload);
  if (method == "Stats") return Decode<task::StatsRequest>(payload);
  if (method == "Connect") return Decode<task::ConnectRequest>(payload);
  if (method == "Shutdown") return Decode<task::ShutdownRequest>(payload);
  if (method == "CloseIO") return Decode<task::CloseIORequest>(payload);
}

// What the server answers a frame over the size limit (ServeConnection).
void AnswerTooLarge(const Status& status) {
  ttrpc::Response response;
  response.mutable_status()->set_code(wasmlet::shim::RpcCodeFor(status));
  response.mutable_status()->set_message(status.message());
  Check(!response.SerializeAsString().empty());
}

void HandleRequest(const std::string& frame) {
  ttrpc::Request request;
  if (!request.ParseFromString(frame)) return;
  wasmlet::shim::Metadata metadata;
  for (const auto& kv : request.metadata()) metadata.emplace(kv.key(), kv.value());
  if (request.service() == "containerd.task.v2.Task") DecodeTaskRequest(request.method(), request.payload());
}

void HandleResponse(const std::string& frame) {
  ttrpc::Response response;
  if (!response.ParseFromString(frame)) return;
  if (response.has_status() && response.status().code() != 0) {
    Status status = wasmlet::shim::StatusForRpcCode(response.status().code(), response.status().message());
    Check(!status.ok());
  }
  // The answers the shim's client reads (events are published with an Empty answer).
  Decode<task::Empty>(response.payload());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs every string field that is not UTF-8; that is expected here.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size = std::min(size, kMaxInput);
  if (size >= kFrameHeaderSize) {
    uint8_t encoded[kFrameHeaderSize];
    wasmlet::shim::EncodeFrameHeader(wasmlet::shim::DecodeFrameHeader(data), encoded);
    Check(std::memcmp(encoded, data, kFrameHeaderSize) == 0);
  }

  int fds[2];
  Check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  for (size_t done = 0; done < size;) {
    const ssize_t n = send(fds[0], data + done, size - done, MSG_NOSIGNAL);
    Check(n > 0);
    done += static_cast<size_t>(n);
  }
  shutdown(fds[0], SHUT_WR);  // the reader sees the end of the stream after the input

  {
    FrameSocket socket(fds[1]);  // owns fds[1]
    for (;;) {
      FrameHeader header;
      std::string payload;
      Status status = socket.Read(header, payload, /*timeout_ms=*/100);
      // Everything was written before reading began: Read must never wait for more.
      Check(status.code() != StatusCode::kDeadlineExceeded);
      if (status.code() == StatusCode::kResourceExhausted && header.type == uint8_t(FrameType::kRequest)) {
        AnswerTooLarge(status);
        continue;
      }
      if (!status.ok()) break;
      Check(payload.size() == header.length);
      if (header.type == uint8_t(FrameType::kRequest)) HandleRequest(payload);
      if (header.type == uint8_t(FrameType::kResponse)) HandleResponse(payload);
    }
  }
  close(fds[0]);
  return 0;
}
