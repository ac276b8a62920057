// End-to-end test harness: the real wasmlet binary and a real redis-server as child processes
// on free loopback ports, and a small HTTP/1.1 client. Everything stops by itself.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace wasmlet::testing {

namespace fs = std::filesystem;
using nlohmann::json;

// The whole of a file; empty when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Waits until `done` holds, looking every 20 ms; false if it still does not after 30 s (a bound
// for a stuck server, far above what a busy machine needs).
inline bool Eventually(const std::function<bool()>& done) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

inline uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

inline bool PortAccepts(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// A fresh directory under the system's temp dir, removed at the end.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("wasmlet-e2e-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

// A child process with its output in a log file; killed (TERM, then KILL) when destroyed.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path) : log_path_(std::move(log_path)) {
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      // Nothing else of the test's: a server that outlives a crashed test must not keep its
      // descriptors (the lock `flock` holds around the test run, a listening socket) open.
      close_range(3, ~0U, 0);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
  }
  ~Process() { Stop(); }

  // SIGTERM, then SIGKILL after `grace`. Returns the exit code (or 128 + signal).
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(10000)) {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    const auto give_up = std::chrono::steady_clock::now() + grace;
    while (!Exited() && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!Exited()) {
      kill(pid_, SIGKILL);
      WaitExit();
    }
    return exit_code_;
  }

  // SIGKILL at once, as a crash: nothing runs on the way out.
  void Kill() {
    if (pid_ <= 0 || Exited()) return;
    kill(pid_, SIGKILL);
    WaitExit();
  }

  // True once the process has exited (reaps it).
  bool Exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      Record(status);
      return true;
    }
    return false;
  }
  int WaitExit() {
    if (pid_ > 0) {
      int status = 0;
      waitpid(pid_, &status, 0);
      Record(status);
    }
    return exit_code_;
  }
  pid_t pid() const { return pid_; }
  std::string Log() const { return ReadFile(log_path_); }

 private:
  void Record(int status) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
  }
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
};

struct Response {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
};

// One HTTP/1.1 connection to 127.0.0.1:port, kept alive across requests.
class Client {
 public:
  explicit Client(uint16_t port) : stream_(io_) {
    boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), port);
    stream_.connect(endpoint);
  }
  Response Send(const std::string& method, const std::string& target,
                const std::map<std::string, std::string>& headers = {}, const std::string& body = "") {
    namespace http = boost::beast::http;
    http::request<http::string_body> request{http::string_to_verb(method), target, 11};
    request.set(http::field::host, "localhost");
    for (const auto& [k, v] : headers) request.set(k, v);
    request.body() = body;
    request.prepare_payload();
    stream_.expires_after(std::chrono::seconds(30));
    http::write(stream_, request);
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.header_limit(1 << 20);  // tests look at large headers too
    parser.body_limit(uint64_t{1} << 30);
    parser.skip(method == "HEAD");  // a HEAD answer has no body, whatever its Content-Length says
    http::read(stream_, buffer, parser);
    auto& response = parser.get();
    Response out;
    out.status = response.result_int();
    out.body = response.body();
    for (const auto& field : response)
      out.headers[std::string(field.name_string())] = std::string(field.value());
    return out;
  }

  // What the server sends until it closes the connection ("" when it closes without a word);
  // nullopt when it keeps it open for 30 s.
  std::optional<std::string> ReadUntilClosed() {
    stream_.expires_after(std::chrono::seconds(30));
    std::string out;
    char chunk[4096];
    for (;;) {
      boost::beast::error_code ec;
      const size_t n = stream_.read_some(boost::asio::buffer(chunk), ec);
      out.append(chunk, n);
      if (ec == boost::beast::error::timeout) return std::nullopt;
      if (ec) return out;
    }
  }

 private:
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
};

inline Response Get(uint16_t port, const std::string& target,
                    const std::map<std::string, std::string>& headers = {}, const std::string& body = "",
                    const std::string& method = "GET") {
  Client client(port);
  return client.Send(method, target, headers, body);
}

// A real redis-server on a free loopback port, with no persistence.
class Redis {
 public:
  explicit Redis(const TempDir& dir, uint16_t port = 0) : dir_(dir), port_(port ? port : FreePort()) {
    Start();
  }
  void Start() {
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", dir_.path().string()},
        dir_.File("redis-" + std::to_string(port_) + ".log"));
    for (int i = 0; i < 500 && !PortAccepts(port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(PortAccepts(port_)) << "redis-server did not start: " << process_->Log();
  }
  void Kill() { process_->Stop(); }
  uint16_t port() const { return port_; }
  // Runs redis-cli against this server.
  std::string Cli(const std::string& args) const {
    std::string command = "redis-cli -h 127.0.0.1 -p " + std::to_string(port_) + " " + args + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    std::string out;
    char buf[256];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    pclose(pipe);
    return out;
  }

 private:
  const TempDir& dir_;
  uint16_t port_;
  std::unique_ptr<Process> process_;
};

// A Layotto config with the given plugin items and state stores, listening on `port`.
inline json LayottoConfig(uint16_t port, const json& plugins, const json& stores = json::object(),
                          const json& settings = json::object()) {
  json grpc = {{"name", "grpc"},
               {"address", "127.0.0.1:0"},
               {"filter_chains",
                {{{"filters",
                   {{{"type", "grpc"},
                     {"config", {{"server_name", "runtime"}, {"grpc_config", {{"state", stores}}}}}}}}}}}};
  json wasm = {{"name", "wasm"},
               {"address", "127.0.0.1:" + std::to_string(port)},
               {"stream_filters", {{{"type", "Layotto"}, {"config", plugins}}}}};
  json config = {{"servers", {{{"listeners", {grpc, wasm}}}}}};
  json wasmlet = {{"workers", 4}, {"admin_address", "127.0.0.1:" + std::to_string(FreePort())}};
  wasmlet.update(settings);
  config["wasmlet"] = wasmlet;
  return config;
}

// A cluster_manager cluster in MOSN's shape with one host.
inline json Cluster(const std::string& name, const std::string& address,
                    const std::string& connect_timeout = "1s") {
  return {{"name", name},
          {"type", "SIMPLE"},
          {"lb_type", "LB_ROUNDROBIN"},
          {"connect_timeout", connect_timeout},
          {"hosts", {{{"address", address}}}}};
}

inline json Plugin(const std::string& name, const std::string& wasm, int instances = 1,
                   json vm = json::object()) {
  json vm_config = {{"engine", "wasmtime"}, {"path", wasm}};
  vm_config.update(vm);
  return {{"name", name}, {"instance_num", instances}, {"vm_config", vm_config}};
}

// The wasmlet binary serving `config`; waits until it accepts connections.
class Wasmlet {
 public:
  // `args` go after `start -c CONFIG` (--log-format json, ...).
  Wasmlet(const TempDir& dir, const json& config, uint16_t port, bool expect_start = true,
          const std::vector<std::string>& args = {})
      : port_(port) {
    const std::string admin = config["wasmlet"].value("admin_address", "");
    admin_port_ = admin.empty() ? 0 : static_cast<uint16_t>(std::stoi(admin.substr(admin.rfind(':') + 1)));
    config_path_ = dir.File("config-" + std::to_string(port) + ".json");
    std::ofstream(config_path_) << config.dump(2);
    std::vector<std::string> argv{WASMLET_BINARY, "start", "-c", config_path_};
    argv.insert(argv.end(), args.begin(), args.end());
    process_ =
        std::make_unique<Process>(std::move(argv), dir.File("wasmlet-" + std::to_string(port) + ".log"));
    if (!expect_start) return;
    for (int i = 0; i < 1000 && !PortAccepts(port_) && !process_->Exited(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(PortAccepts(port_)) << "wasmlet did not start:\n" << process_->Log();
  }
  uint16_t port() const { return port_; }
  uint16_t admin_port() const { return admin_port_; }
  Process& process() { return *process_; }
  const std::string& config_path() const { return config_path_; }

 private:
  uint16_t port_;
  uint16_t admin_port_ = 0;
  std::string config_path_;
  std::unique_ptr<Process> process_;
};

// The body of a response as JSON; fails the test (and answers null) when it is not JSON.
inline json Body(const Response& r) {
  try {
    return json::parse(r.body);
  } catch (...) {
    ADD_FAILURE() << "not JSON: " << r.body;
    return json();
  }
}

// A call to the admin API of `server`.
inline Response Admin(const Wasmlet& server, const std::string& method, const std::string& path,
                      const std::string& body = "", std::map<std::string, std::string> headers = {}) {
  return Get(server.admin_port(), path, headers, body, method);
}

// Whether the admin API's /metrics of `server` count `count` instances of function `id` in
// `state` ("busy" or "idle"): wait with Eventually on it to know a request is running.
inline bool InstancesAre(const Wasmlet& server, const std::string& id, const std::string& state, int count) {
  const std::string line =
      "wasmlet_instances{id=\"" + id + "\",state=\"" + state + "\"} " + std::to_string(count) + "\n";
  return Admin(server, "GET", "/metrics").body.find(line) != std::string::npos;
}

// AddressSanitizer keeps freed memory in quarantine (256 MiB), so under it the resident set
// says nothing about what the process holds: the RSS checks apply to the normal build (the suite
// CI runs first), and the sanitized run checks memory safety instead.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kRssIsMeaningful = false;
#else
inline constexpr bool kRssIsMeaningful = true;
#endif

// ThreadSanitizer runs every thread 5-15 times slower and serialises them on its own locks, so
// under it a ratio of two throughputs measured one after the other moves by more than in the
// normal build; tests that compare rates allow it this much more room (the normal build, run
// first in CI, holds them to the full figure).
#if defined(__SANITIZE_THREAD__)
inline constexpr double kRateSlackUnderTsan = 0.8;
#else
inline constexpr double kRateSlackUnderTsan = 1.0;
#endif

// The resident set of a process, in KiB.
inline size_t RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

// A loopback listener that never accepts: connections complete in the kernel and then hang,
// as a peer that is alive but stuck would.
class Blackhole {
 public:
  Blackhole() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Blackhole() { close(fd_); }
  Blackhole(const Blackhole&) = delete;
  Blackhole& operator=(const Blackhole&) = delete;
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Runs a shell command to completion; returns (exit code, its stdout and stderr).
inline std::pair<int, std::string> RunShell(const std::string& command_line) {
  const std::string command = "(" + command_line + ") 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Runs `wasmlet ARGS` to completion; returns (exit code, output).
inline std::pair<int, std::string> RunWasmlet(const std::string& args) {
  return RunShell(std::string(WASMLET_BINARY) + " " + args);
}

// Writes `config` to a file in `dir` and runs `wasmlet state set STORE KEY VALUE -c FILE`, as
// a user seeds a store; returns the file's path.
inline std::string SeedState(const TempDir& dir, const json& config, const std::string& store,
                             const std::string& key, const std::string& value) {
  const std::string path = dir.File("seed-" + key + ".json");
  std::ofstream(path) << config.dump();
  auto [code, out] = RunWasmlet("state set " + store + " " + key + " " + value + " -c " + path);
  EXPECT_EQ(code, 0) << out;
  return path;
}

}  // namespace wasmlet::testing
