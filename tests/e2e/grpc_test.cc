// gRPC calls from a function, end to end: the wasmlet binary in function mode running
// tests/guests/grpc_function.cc, which calls the service test.Echo of a real gRPC server
// (tests/e2e/grpc_upstream.py, Python's grpcio) over cleartext HTTP/2 and answers with what it got.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <cerrno>
#include <iostream>
#include <mutex>

#include "e2e/harness.h"

namespace wasmlet::testing {
namespace {

const std::string kGuests = WASMLET_TEST_GUESTS;
using namespace std::chrono_literals;

// The Python gRPC server as a child process: its stdin a pipe held open (it stops when the pipe
// closes), its stdout the pipe it prints its port on, its stderr a log file.
class GrpcUpstream {
 public:
  explicit GrpcUpstream(const TempDir& dir) : log_path_(dir.File("grpc-upstream.log")) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return;
    if (pipe2(out, O_CLOEXEC) != 0) {
      close(in[0]);
      close(in[1]);
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);  // dup2 clears close-on-exec on the copies
      dup2(out[1], 1);
      int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log >= 0) dup2(log, 2);
      execl(WASMLET_GRPC_PYTHON, WASMLET_GRPC_PYTHON, WASMLET_GRPC_SERVER, static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    if (pid_ < 0) {
      close(out[0]);
      return;
    }
    port_ = ReadPort(out[0], std::chrono::steady_clock::now() + 20s);
    close(out[0]);
  }

  ~GrpcUpstream() {
    if (stdin_ >= 0) close(stdin_);  // the server's signal to stop
    if (pid_ <= 0) return;
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > give_up) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
  }

  GrpcUpstream(const GrpcUpstream&) = delete;
  GrpcUpstream& operator=(const GrpcUpstream&) = delete;

  // 0 when the server did not start.
  uint16_t port() const { return port_; }
  std::string Log() const { return ReadFile(log_path_); }

 private:
  // The first line the server prints, as a port number; 0 on timeout, EOF or garbage.
  static uint16_t ReadPort(int fd, std::chrono::steady_clock::time_point give_up) {
    std::string line;
    while (line.find('\n') == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now());
      if (left <= 0ms) return 0;
      pollfd p{fd, POLLIN, 0};
      const int ready = poll(&p, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return 0;
      char buf[64];
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 0;
      line.append(buf, static_cast<size_t>(n));
    }
    line.resize(line.find('\n'));
    if (line.empty() || line.size() > 5 || line.find_first_not_of("0123456789") != std::string::npos)
      return 0;
    const int port = std::stoi(line);
    return port > 0 && port < 65536 ? static_cast<uint16_t>(port) : 0;
  }

  std::string log_path_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  uint16_t port_ = 0;
};

bool StartsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

class GrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = std::make_unique<GrpcUpstream>(dir_);
    ASSERT_NE(upstream_->port(), 0) << "the gRPC server did not start (" << WASMLET_GRPC_PYTHON << " "
                                    << WASMLET_GRPC_SERVER << "):\n"
                                    << upstream_->Log();
    // One instance of the function: its root context keeps the counters `mode: stats` reports.
    json plugin = Plugin("grpc", kGuests + "/grpc_function.wasm", 1);
    plugin["cluster"] = "grpc";
    port_ = FreePort();
    json config = LayottoConfig(port_, {{"grpc", plugin}});
    config["cluster_manager"] = {{"clusters",
                                  {Cluster("grpc", "127.0.0.1:" + std::to_string(upstream_->port())),
                                   // Nobody listens there.
                                   Cluster("down", "127.0.0.1:" + std::to_string(FreePort()), "300ms")}}};
    server_ = std::make_unique<Wasmlet>(dir_, config, port_);
  }

  void TearDown() override {
    if (HasFailure() && server_) {
      std::cerr << "---- wasmlet log ----\n"
                << server_->process().Log() << "---- gRPC server log ----\n"
                << upstream_->Log();
    }
    server_.reset();  // before the gRPC server goes
    upstream_.reset();
  }

  // A request to the function with these headers (`mode` and the rest).
  Response Call(std::map<std::string, std::string> headers) {
    headers["id"] = "id_grpc";
    return Get(port_, "/", headers);
  }
  Response Unary(const std::string& method, const std::string& message,
                 std::map<std::string, std::string> headers = {}) {
    headers["mode"] = "unary";
    headers["method"] = method;
    headers["message"] = message;
    return Call(headers);
  }
  std::string Stats() { return Call({{"mode", "stats"}}).body; }
  // How many Hold calls the server has seen end, asked through the function; -1 on failure.
  int HeldCallsEnded() {
    auto r = Unary("Cancelled", "");
    if (r.status != 200 || !StartsWith(r.body, "ok ") || r.body.size() < 5) {
      ADD_FAILURE() << "Cancelled: " << r.status << " " << r.body;
      return -1;
    }
    return std::stoi(r.body.substr(3));
  }
  TempDir dir_;
  std::unique_ptr<GrpcUpstream> upstream_;
  uint16_t port_ = 0;
  std::unique_ptr<Wasmlet> server_;
};

TEST_F(GrpcTest, UnaryCallReturnsTheServersMessage) {
  // Three times: later calls reuse the connection the first one opened.
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    auto r = Unary("Unary", "hello", {{"x-test", "abc"}});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "ok echo:hello|x-test=abc\n") << "the message or the metadata did not make the trip";
  }
}

TEST_F(GrpcTest, UnaryCallFailureGivesStatusAndMessage) {
  auto r = Unary("Fail", "x");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(r.body, "grpc status 3: bad thing\n") << "INVALID_ARGUMENT and the server's message";
}

TEST_F(GrpcTest, UnaryUnknownMethodIsUnimplemented) {
  auto r = Unary("Nope", "x");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_TRUE(StartsWith(r.body, "grpc status 12")) << r.body;
}

TEST_F(GrpcTest, UnaryDeadlineExceeded) {
  auto r = Unary("Slow", "x", {{"timeout-ms", "300"}});
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_TRUE(StartsWith(r.body, "grpc status 4")) << "DEADLINE_EXCEEDED expected: " << r.body;
  // Ended by the client's own 300 ms timer: not by the slow server's answer (2 s), nor by the
  // server keeping the grpc-timeout it was sent.
  EXPECT_NE(r.body.find("no answer within 300 ms"), std::string::npos) << r.body;
}

TEST_F(GrpcTest, UnaryToADownClusterIsUnavailable) {
  auto r = Unary("Unary", "x", {{"cluster", "down"}});
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_TRUE(StartsWith(r.body, "grpc status 14")) << "UNAVAILABLE expected: " << r.body;
}

TEST_F(GrpcTest, UnknownClusterIsRefused) {
  auto r = Unary("Unary", "x", {{"cluster", "nope"}});
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_EQ(r.body, "grpc_call refused: 4\n") << "PARSE_FAILURE from proxy_grpc_call expected";
}

TEST_F(GrpcTest, StreamDeliversMetadataMessagesAndClose) {
  auto r = Call({{"mode", "stream"}, {"messages", "a,b,c"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            "initial x-initial=hello\n"
            "message a\nmessage b\nmessage c\n"
            "trailing x-trailing=bye\n"
            "close 0 \n");
}

TEST_F(GrpcTest, StreamHalfCloseWithGrpcClose) {
  // All three sent with the stream open, then proxy_grpc_close ends the sending side.
  auto r = Call({{"mode", "stream"}, {"messages", "a,b,c"}, {"half-close", "close"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            "initial x-initial=hello\n"
            "message a\nmessage b\nmessage c\n"
            "trailing x-trailing=bye\n"
            "close 0 \n");
}

TEST_F(GrpcTest, CancelStopsTheCallAndNoCallbackFollows) {
  const int before = HeldCallsEnded();
  // The function cancels once the server holds the call (it answered with initial metadata).
  auto r = Call({{"mode", "cancel"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "cancelled 0\n");
  EXPECT_TRUE(Eventually([&] { return HeldCallsEnded() >= before + 1; }))
      << "the server never saw the call cancelled";
  // No callback for the cancelled call reached the module, not even its close.
  EXPECT_EQ(Stats(), "root_closes=0 status=none dropped=0 late=0\n");
}

TEST_F(GrpcTest, ACallCancelledAtOnceGetsNoCallback) {
  // Cancelled in the callback that started it, before the host could have sent anything.
  auto r = Call({{"mode", "cancel"}, {"cancel-at", "start"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "cancelled 0\n");
  // Calls go on working, and the next one is the sync point: it goes over the same loop and
  // connection (one instance, one host). The server took the cancelled call's reset, if any of
  // it was sent at all, before this call's request, so whatever it sent for it is ahead of this
  // answer on the connection, and the loop hands what it reads to the module in that order.
  EXPECT_EQ(Unary("Unary", "after").body, "ok echo:after|x-test=none\n");
  EXPECT_EQ(Stats(), "root_closes=0 status=none dropped=0 late=0\n");
}

TEST_F(GrpcTest, ACallOutlivesTheRequestThatMadeItAndReportsToTheRoot) {
  const int before = HeldCallsEnded();
  // The function answers once the server holds its call, leaving the call open.
  auto r = Call({{"mode", "detach"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "detached\n");
  // The request is over, its call is not: the call belongs to the plugin, as in Envoy.
  EXPECT_EQ(HeldCallsEnded(), before) << "the call was cancelled with the request that made it";
  EXPECT_EQ(Stats(), "root_closes=0 status=none dropped=0 late=0\n");
  // Half-closed from another request, the call ends OK, and its close reaches the root.
  auto released = Call({{"mode", "release"}});
  EXPECT_EQ(released.body, "released 1 0\n");
  EXPECT_TRUE(Eventually([&] { return HeldCallsEnded() >= before + 1; }))
      << "the server never saw the call end";
  std::string stats;
  EXPECT_TRUE(Eventually([&] { return StartsWith(stats = Stats(), "root_closes=1"); })) << stats;
  EXPECT_EQ(stats, "root_closes=1 status=0 dropped=0 late=0\n");
}

TEST_F(GrpcTest, ManyConcurrentUnaryCalls) {
  // 16 clients at once, 10 requests each: every answer is its own request's, whatever the order
  // in which the calls share the connection to the server.
  std::mutex mutex;
  std::vector<std::string> wrong;
  std::atomic<int> right{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const std::string message = "m" + std::to_string(t) + "-" + std::to_string(i);
        const std::string tag = "t" + std::to_string(t);
        std::string problem;
        try {
          auto r = Unary("Unary", message, {{"x-test", tag}});
          const std::string want = "ok echo:" + message + "|x-test=" + tag + "\n";
          if (r.status != 200 || r.body != want) {
            problem = message + ": " + std::to_string(r.status) + " " + r.body;
          }
        } catch (const std::exception& e) {
          problem = message + ": " + e.what();
        }
        if (problem.empty()) {
          ++right;
        } else {
          std::lock_guard lock(mutex);
          wrong.push_back(problem);
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(right.load(), 160);
  for (size_t i = 0; i < wrong.size() && i < 10; ++i) ADD_FAILURE() << wrong[i];
}

TEST_F(GrpcTest, ALargeAnswerArrivesWhole) {
  auto r = Unary("Big", "100000");
  EXPECT_EQ(r.status, 200) << r.body.substr(0, 200);
  EXPECT_EQ(r.body.size(), 3u + 100000u + 1u);
  EXPECT_TRUE(r.body == "ok " + std::string(100000, 'x') + "\n") << "not the server's message";
}

}  // namespace
}  // namespace wasmlet::testing
