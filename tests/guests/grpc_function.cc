// A Layotto-style function (`id: id_grpc`) that makes gRPC calls to the service test.Echo of the
// cluster named by its plugin item `cluster` (default "grpc"; tests/e2e/grpc_upstream.py serves
// it), waits for them and answers with what it got. The request header `mode` says what to do:
//
//   unary   GrpcCall(method: header `method` or Unary, message: header `message` or "hi",
//           metadata x-test: header `x-test` or "none", timeout: header `timeout-ms` or 2000;
//           header `cluster` overrides the cluster). 200 "ok MESSAGE\n" with the answer, else
//           502 "grpc status N: MSG\n", or 502 "grpc_call refused: N\n" when the host refused.
//   stream  GrpcStream(Stream), sends each comma-separated piece of header `messages`, the last
//           one ending the sending side (with header `half-close: close`: all sent open, then
//           GrpcClose). 200 with one line per event: "initial x-initial=V\n", "message M\n",
//           "trailing x-trailing=V\n", "close N MSG\n" (V is "(none)" when absent).
//   detach  GrpcStream(Hold) and one message; once the server holds the call (its initial
//           metadata), 200 "detached\n" with the call still open: it outlives the request (it
//           belongs to the plugin), and the root keeps its token for `release`.
//   release GrpcClose on every call `detach` left open: 200 "released N S\n", N the calls and S
//           the status of the last GrpcClose ("none" without any). The server then ends them OK.
//   cancel  GrpcStream(Hold) and one message, then GrpcCancel: 200 "cancelled S\n" with the
//           status of GrpcCancel. By default it cancels once the server holds the call; with
//           header `cancel-at: start` right after sending.
//   stats   200 "root_closes=N status=S dropped=D late=L\n": N OnGrpcClose that reached the root,
//           S the last status among them ("none" before any), D DroppedGrpcCallbacks(), L the
//           callbacks that reached this module's code for a cancelled token (must stay 0).
//
// The counters are members of the root context: the tests run the function as one instance.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "wasmlet/sdk.h"

using namespace wasmlet::sdk;

namespace {

std::string N(uint32_t n) { return std::to_string(n); }
std::string N(Status s) { return std::to_string(static_cast<uint32_t>(s)); }

std::optional<std::string> Header(std::string_view name) { return GetHeader(MapType::kRequestHeaders, name); }

// A decimal number, or `fallback` when `text` is absent or not one.
uint32_t Number(const std::optional<std::string>& text, uint32_t fallback) {
  if (!text || text->empty() || text->size() > 9) return fallback;
  uint32_t n = 0;
  for (char c : *text) {
    if (c < '0' || c > '9') return fallback;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n;
}

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> pieces;
  if (text.empty()) return pieces;
  size_t start = 0;
  for (size_t end; (end = text.find(separator, start)) != std::string::npos; start = end + 1) {
    pieces.push_back(text.substr(start, end - start));
  }
  pieces.push_back(text.substr(start));
  return pieces;
}

class Root : public RootContext {
 public:
  using RootContext::RootContext;

  // Layotto passes the plugin's string items as pairs (the header map format) in buffer 7.
  bool OnConfigure(size_t size) override {
    const std::string items = GetBuffer(BufferType::kPluginConfiguration, 0, size).value_or("");
    for (const auto& [key, value] : ParseHeaders(items)) {
      if (key == "cluster") cluster_ = value;
    }
    return true;
  }

  // Calls whose stream ended before them, and calls made by the root, report here.
  void OnGrpcReceiveInitialMetadata(uint32_t token, uint32_t) override { NoteLate(token); }
  void OnGrpcReceive(uint32_t token, size_t) override { NoteLate(token); }
  void OnGrpcReceiveTrailingMetadata(uint32_t token, uint32_t) override { NoteLate(token); }
  void OnGrpcClose(uint32_t token, uint32_t status_code) override {
    NoteLate(token);
    ++root_closes_;
    last_status_ = status_code;
  }

  const std::string& cluster() const { return cluster_; }
  void Cancelled(uint32_t token) { cancelled_.insert(token); }
  void Detached(uint32_t token) { detached_.push_back(token); }
  // Half-closes the calls `detach` left open.
  std::string Release() {
    std::optional<Status> last;
    for (uint32_t token : detached_) last = GrpcClose(token);
    const std::string answer = "released " + N(static_cast<uint32_t>(detached_.size())) + " " +
                               (last ? N(*last) : std::string("none")) + "\n";
    detached_.clear();
    return answer;
  }
  bool WasCancelled(uint32_t token) const { return cancelled_.count(token) > 0; }
  // A callback for `token` reached the module's code: wrong if the guest had cancelled it.
  void NoteLate(uint32_t token) {
    if (WasCancelled(token)) ++late_;
  }
  std::string Stats() const {
    return "root_closes=" + N(root_closes_) + " status=" + (last_status_ ? N(*last_status_) : "none") +
           " dropped=" + N(DroppedGrpcCallbacks()) + " late=" + N(late_) + "\n";
  }

 private:
  std::string cluster_ = "grpc";
  std::set<uint32_t> cancelled_;
  std::vector<uint32_t> detached_;
  uint32_t root_closes_ = 0;
  std::optional<uint32_t> last_status_;
  uint32_t late_ = 0;
};

class Function : public StreamContext {
 public:
  using StreamContext::StreamContext;

  Action OnRequestHeaders(uint32_t, bool) override {
    mode_ = Header("mode").value_or("");
    cluster_ = Header("cluster").value_or(root_ctx()->cluster());
    if (mode_ == "unary") {
      StartUnary();
    } else if (mode_ == "stream") {
      StartStream();
    } else if (mode_ == "detach" || mode_ == "cancel") {
      StartHold();
    } else if (mode_ == "stats") {
      Answer(200, root_ctx()->Stats());
    } else if (mode_ == "release") {
      Answer(200, root_ctx()->Release());
    } else {
      Answer(400, "unknown mode '" + mode_ + "'\n");
    }
    return Action::kPause;  // answered, or waiting for the call
  }

  void OnGrpcReceiveInitialMetadata(uint32_t token, uint32_t) override {
    root_ctx()->NoteLate(token);
    if (mode_ == "stream") {
      transcript_ +=
          "initial x-initial=" + Metadata(MapType::kGrpcReceiveInitialMetadata, "x-initial") + "\n";
    } else if (mode_ == "detach") {
      // The server holds the call: end the request with it still open.
      root_ctx()->Detached(token);
      Answer(200, "detached\n");
    } else if (mode_ == "cancel") {
      CancelAndAnswer(token);
    }
  }

  void OnGrpcReceive(uint32_t token, size_t message_size) override {
    root_ctx()->NoteLate(token);
    const std::string message = GetBuffer(BufferType::kGrpcReceiveBuffer, 0, message_size).value_or("");
    if (mode_ == "unary" && !answered_) {
      AppendBuffer(BufferType::kHttpResponseBody, "ok " + message + "\n");
      answered_ = true;
      ContinueRequest();
    } else if (mode_ == "stream") {
      transcript_ += "message " + message + "\n";
    }
  }

  void OnGrpcReceiveTrailingMetadata(uint32_t token, uint32_t) override {
    root_ctx()->NoteLate(token);
    if (mode_ == "stream") {
      transcript_ +=
          "trailing x-trailing=" + Metadata(MapType::kGrpcReceiveTrailingMetadata, "x-trailing") + "\n";
    }
  }

  void OnGrpcClose(uint32_t token, uint32_t status_code) override {
    root_ctx()->NoteLate(token);
    const std::string message = GetGrpcStatus().second;
    if (mode_ == "stream" && !answered_) {
      transcript_ += "close " + N(status_code) + " " + message + "\n";
      AppendBuffer(BufferType::kHttpResponseBody, transcript_);
      answered_ = true;
      ContinueRequest();
    } else {
      Answer(502, "grpc status " + N(status_code) + ": " + message + "\n");
    }
  }

 private:
  Root* root_ctx() const { return static_cast<Root*>(root()); }

  static std::string Metadata(MapType map, std::string_view name) {
    return GetHeader(map, name).value_or("(none)");
  }

  void Answer(uint32_t status, const std::string& body) {
    if (answered_) return;
    answered_ = true;
    SendLocalResponse(status, body);
  }

  void StartUnary() {
    Status status = Status::kOk;
    const Headers metadata = {{"x-test", Header("x-test").value_or("none")}};
    if (!GrpcCall(cluster_, "test.Echo", Header("method").value_or("Unary"), metadata,
                  Header("message").value_or("hi"), Number(Header("timeout-ms"), 2000), &status)) {
      Answer(502, "grpc_call refused: " + N(status) + "\n");
    }
  }

  void StartStream() {
    Status status = Status::kOk;
    auto token = GrpcStream(cluster_, "test.Echo", "Stream", {}, &status);
    if (!token) {
      Answer(502, "grpc_stream refused: " + N(status) + "\n");
      return;
    }
    const std::vector<std::string> messages = Split(Header("messages").value_or(""), ',');
    const bool half_close = Header("half-close").value_or("") == "close" || messages.empty();
    for (size_t i = 0; i < messages.size(); ++i) {
      const bool last = i + 1 == messages.size() && !half_close;
      status = GrpcSend(*token, messages[i], last);
      if (status != Status::kOk) {
        GrpcCancel(*token);
        Answer(502, "grpc_send refused: " + N(status) + "\n");
        return;
      }
    }
    if (half_close && (status = GrpcClose(*token)) != Status::kOk) {
      GrpcCancel(*token);
      Answer(502, "grpc_close refused: " + N(status) + "\n");
    }
  }

  // detach and cancel: a call the server keeps open until it is cancelled.
  void StartHold() {
    Status status = Status::kOk;
    auto token = GrpcStream(cluster_, "test.Echo", "Hold", {}, &status);
    if (!token) {
      Answer(502, "grpc_stream refused: " + N(status) + "\n");
      return;
    }
    status = GrpcSend(*token, "hold", false);
    if (status != Status::kOk) {
      GrpcCancel(*token);
      Answer(502, "grpc_send refused: " + N(status) + "\n");
      return;
    }
    if (mode_ == "cancel" && Header("cancel-at").value_or("") == "start") CancelAndAnswer(*token);
  }

  void CancelAndAnswer(uint32_t token) {
    root_ctx()->Cancelled(token);
    Answer(200, "cancelled " + N(GrpcCancel(token)) + "\n");
  }

  std::string mode_;
  std::string cluster_;
  std::string transcript_;
  bool answered_ = false;
};

}  // namespace

WASMLET_REGISTER_PLUGIN(Root, Function)
WASMLET_FUNCTION_ID("id_grpc")
