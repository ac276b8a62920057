// Hostile input against the real binary: each case here once aborted the process or made it
// hold memory without bound. Every one must now end in a clear 4xx/5xx (or a refused host
// call) while the process keeps serving.
#include <sys/stat.h>

#include <atomic>

#include "e2e/harness.h"

namespace wasmlet::testing {
namespace {

const std::string kGuests = WASMLET_TEST_GUESTS;

// Sends `bytes` as they are on a new connection and returns all the server wrote back before it
// closed the connection (or 5 s passed).
std::string RawExchange(uint16_t port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  (void)!write(fd, bytes.data(), bytes.size());
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
  close(fd);
  return out;
}

bool Alive(Wasmlet& server) {
  return !server.process().Exited() && Admin(server, "GET", "/health/liveness").status == 200;
}

// CPU seconds (user + system) the process has used.
double CpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
    if (i == 15) break;
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(HardeningTest, InvalidUtf8InAnAdminPathOrBodyGetsAnErrorNotAnAbort) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, {{"f", Plugin("f", kGuests + "/hostile.wasm")}}), port);

  const std::string path_reply =
      RawExchange(server.admin_port(), "GET /\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(path_reply.find("HTTP/1.1 404"), std::string::npos) << path_reply;
  EXPECT_NE(path_reply.find("no admin endpoint GET /\\\\xFF"), std::string::npos) << path_reply;

  for (const char* endpoint : {"/wasm/install", "/wasm/uninstall", "/wasm/update"}) {
    auto bad = Admin(server, "POST", endpoint, "\xff");
    EXPECT_EQ(bad.status, 400) << endpoint << ": " << bad.body;
    EXPECT_NE(Body(bad)["error"].get<std::string>().find("not valid JSON"), std::string::npos) << bad.body;
    // A string with a bad byte inside valid JSON syntax.
    auto inside = Admin(server, "POST", endpoint, "{\"name\": \"\xff\"}");
    EXPECT_EQ(inside.status, 400) << endpoint << ": " << inside.body;
  }
  EXPECT_TRUE(Alive(server)) << server.process().Log();
  EXPECT_EQ(Get(port, "/", {{"id", "f"}}).status, 200);
}

TEST(HardeningTest, AModuleReportingAnIdThatIsNotUtf8IsRefusedAndTheListStaysJson) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"good", Plugin("good", kGuests + "/hostile.wasm")},
                  {"bad", Plugin("bad", kGuests + "/hostile_bad_id.wasm")}};
  Wasmlet server(dir, LayottoConfig(port, plugins), port);
  ASSERT_TRUE(Alive(server)) << server.process().Log();
  EXPECT_NE(server.process().Log().find("not UTF-8 text"), std::string::npos) << server.process().Log();

  auto list = Admin(server, "GET", "/wasm/list");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(Body(list).size(), 1u) << list.body;
  EXPECT_EQ(Body(list)[0]["id"], "good");

  auto install =
      Admin(server, "POST", "/wasm/install",
            json{{"name", "bad2"}, {"vm_config", {{"path", kGuests + "/hostile_bad_id.wasm"}}}}.dump());
  EXPECT_EQ(install.status, 400) << install.body;
  EXPECT_NE(Body(install)["error"].get<std::string>().find("'bad\\xFF\\xFE', which is not UTF-8 text"),
            std::string::npos)
      << install.body;
  EXPECT_EQ(Admin(server, "GET", "/wasm/list").status, 200);
  EXPECT_TRUE(Alive(server));
}

TEST(HardeningTest, ResponseHeadersAndStatusesAGuestWritesAreChecked) {
  TempDir dir;
  const uint16_t port = FreePort();
  // "loose" lifts the host's header limit, so that the HTTP layer's own check is what stops it.
  json plugins = {{"f", Plugin("f", kGuests + "/hostile.wasm")}};
  Wasmlet strict(dir, LayottoConfig(port, plugins), port);
  auto refused = Get(port, "/", {{"id", "f"}, {"x-op", "big_header"}, {"x-size", "70000"}});
  EXPECT_EQ(refused.status, 200);
  EXPECT_EQ(refused.body, "add_response_header 10\n");  // INTERNAL_FAILURE: over header_bytes
  EXPECT_EQ(refused.headers.count("x-big"), 0u);
  EXPECT_NE(strict.process().Log().find("refused at the header_bytes limit"), std::string::npos);

  const uint16_t loose_port = FreePort();
  Wasmlet loose(
      dir,
      LayottoConfig(loose_port, plugins, json::object(), {{"guest_limits", {{"header_bytes", 1 << 20}}}}),
      loose_port);
  for (const char* size : {"65535", "70000", "200000"}) {
    auto big = Get(loose_port, "/", {{"id", "f"}, {"x-op", "big_header"}, {"x-size", size}});
    EXPECT_EQ(big.status, 502) << size;
    EXPECT_NE(big.body.find("the response header 'x-big' has a value of " + std::string(size) + " bytes"),
              std::string::npos)
        << big.body;
  }
  auto fits = Get(loose_port, "/", {{"id", "f"}, {"x-op", "big_header"}, {"x-size", "60000"}});
  EXPECT_EQ(fits.status, 200);
  EXPECT_EQ(fits.headers["x-big"].size(), 60000u);

  for (const char* status : {"0", "99", "600", "1000", "4294967295"}) {
    auto odd = Get(loose_port, "/", {{"id", "f"}, {"x-op", "status"}, {"x-status", status}});
    EXPECT_EQ(odd.status, 502) << status;
    EXPECT_NE(odd.body.find("is not an HTTP status"), std::string::npos) << odd.body;
  }
  auto split = Get(loose_port, "/", {{"id", "f"}, {"x-op", "crlf"}});
  EXPECT_EQ(split.status, 502);
  EXPECT_EQ(split.headers.count("x-injected"), 0u);
  EXPECT_NE(split.body.find("CR, LF or NUL"), std::string::npos) << split.body;
  auto name = Get(loose_port, "/", {{"id", "f"}, {"x-op", "bad_header_name"}});
  EXPECT_EQ(name.status, 502);
  EXPECT_NE(name.body.find("is not an HTTP token"), std::string::npos) << name.body;

  EXPECT_TRUE(Alive(loose)) << loose.process().Log();
  EXPECT_EQ(Get(loose_port, "/", {{"id", "f"}}).status, 200);
}

TEST(HardeningTest, ModuleSourcesThatAreNotRegularFilesOrTooLargeAreRefusedQuickly) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir,
                 LayottoConfig(port, {{"f", Plugin("f", kGuests + "/hostile.wasm")}}, json::object(),
                               {{"max_module_bytes", 1 << 20}}),
                 port);
  const std::string fifo = dir.File("never-written.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  const std::string sparse = dir.File("sparse.wasm");
  {
    std::ofstream out(sparse, std::ios::binary);
    out.write("\0asm\1\0\0\0", 8);
  }
  fs::resize_file(sparse, uint64_t{2} << 30);  // 2 GiB, almost all holes
  const std::string big = dir.File("big.wasm");
  {
    std::ofstream out(big, std::ios::binary);
    out.write("\0asm\1\0\0\0", 8);
  }
  fs::resize_file(big, (1 << 20) + 1);

  struct Case {
    json vm;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"path", "/proc/self/mem"}}, "too short to be a wasm module"},
      {{{"path", dir.path().string()}}, "is a directory, not a .wasm file"},
      {{{"path", "/dev/zero"}}, "is a device, not a .wasm file"},
      {{{"path", fifo}}, "is a FIFO, not a .wasm file"},
      {{{"path", sparse}},
       "is 2147483648 bytes, over the module size limit of 1 MiB (wasmlet.max_module_bytes)"},
      {{{"path", big}}, "is 1048577 bytes, over the module size limit of 1 MiB"},
      {{{"url", "file:///etc/passwd"}}, "is not an http:// or https:// URL"},
      {{{"url", "ftp://127.0.0.1/x.wasm"}}, "is not an http:// or https:// URL"},
  };
  // Quickly, because unread: each file's message comes from the checks on its open descriptor
  // (type, then size) before a byte is read, and each URL's before anything is fetched. Were
  // /dev/zero or the FIFO read instead, the call could go on until the admin client's own 30 s
  // timeout failed the test.
  for (const auto& c : cases) {
    auto r = Admin(server, "POST", "/wasm/install", json{{"name", "x"}, {"vm_config", c.vm}}.dump());
    EXPECT_EQ(r.status, 400) << c.vm.dump() << ": " << r.body;
    EXPECT_NE(r.body.find(c.message), std::string::npos) << c.vm.dump() << ": " << r.body;
  }
  if (kRssIsMeaningful) {
    EXPECT_LT(RssKiB(server.process().pid()), 400u * 1024) << "a refused module was read into memory";
  }
  EXPECT_TRUE(Alive(server)) << server.process().Log();
  auto ok = Admin(server, "POST", "/wasm/install",
                  json{{"name", "y"}, {"vm_config", {{"path", kGuests + "/version1.wasm"}}}}.dump());
  EXPECT_EQ(ok.status, 200) << ok.body;

  // The same checks apply to the items of the config a server starts with.
  const uint16_t other = FreePort();
  Wasmlet refused(dir, LayottoConfig(other, {{"z", Plugin("z", "/dev/zero")}}), other,
                  /*expect_start=*/false);
  EXPECT_EQ(refused.process().WaitExit(), 1);
  EXPECT_NE(refused.process().Log().find("/dev/zero is a device, not a .wasm file"), std::string::npos)
      << refused.process().Log();
}

TEST(HardeningTest, WhatAGuestMakesTheHostHoldIsCappedCountedAndReported) {
  TempDir dir;
  const uint16_t port = FreePort();
  json limits = {
      {"shared_data_bytes", 4 << 20}, {"queue_entries", 100}, {"queue_bytes", 4 << 20}, {"metrics", 50},
      {"property_bytes", 64 << 10},   {"header_count", 64},   {"buffer_bytes", 2 << 20}};
  Wasmlet server(dir,
                 LayottoConfig(port, {{"f", Plugin("f", kGuests + "/hostile.wasm", 1, {{"mem", 16}})}},
                               json::object(), {{"guest_limits", limits}}),
                 port);
  const size_t rss_before = RssKiB(server.process().pid());
  // 40 requests of 1 MiB of shared data each: only the first 3 fit in 4 MiB (keys count too).
  int ok = 0, refused = 0;
  for (int i = 0; i < 40; ++i) {
    auto r = Get(port, "/", {{"id", "f"}, {"x-op", "shared"}, {"x-size", std::to_string(1 << 20)}});
    ASSERT_EQ(r.status, 200) << r.body;
    ok += Count(r.body, "set_shared_data 0\n");
    refused += Count(r.body, "set_shared_data 10\n");
  }
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(refused, 37);
  auto queue = Get(port, "/", {{"id", "f"}, {"x-op", "queue"}, {"x-count", "150"}, {"x-size", "10"}});
  EXPECT_EQ(Count(queue.body, "enqueue 0\n"), 100) << queue.body;
  EXPECT_EQ(Count(queue.body, "enqueue 10\n"), 50);
  auto metrics = Get(port, "/", {{"id", "f"}, {"x-op", "metrics"}, {"x-count", "80"}, {"x-size", "1000"}});
  EXPECT_EQ(Count(metrics.body, "define_metric 0\n"), 50) << metrics.body;
  EXPECT_EQ(Count(metrics.body, "define_metric 10\n"), 30);
  auto properties =
      Get(port, "/", {{"id", "f"}, {"x-op", "property"}, {"x-count", "100"}, {"x-size", "1024"}});
  EXPECT_EQ(Count(properties.body, "set_property 10\n"), 100 - 63) << properties.body;
  auto headers = Get(port, "/", {{"id", "f"}, {"x-op", "headers"}, {"x-count", "100"}, {"x-size", "10"}});
  EXPECT_GT(Count(headers.body, "add_header 10\n"), 30) << headers.body;
  auto body =
      Get(port, "/", {{"id", "f"}, {"x-op", "body"}, {"x-count", "4"}, {"x-size", std::to_string(1 << 20)}});
  EXPECT_EQ(Count(body.body, "append_body 0\n"), 2) << body.body;
  EXPECT_EQ(Count(body.body, "append_body 10\n"), 2);

  // The host kept what the limits allow and no more.
  if (kRssIsMeaningful) {
    EXPECT_LT(RssKiB(server.process().pid()), rss_before + 24 * 1024);
  }
  auto list = Body(Admin(server, "GET", "/wasm/list"));
  ASSERT_EQ(list.size(), 1u);
  const json host = list[0]["host"];
  EXPECT_LE(host["shared_data_bytes"].get<uint64_t>(), uint64_t{4} << 20);
  EXPECT_GE(host["shared_data_bytes"].get<uint64_t>(), uint64_t{3} << 20);
  EXPECT_EQ(host["queue_entries"], 100);
  EXPECT_EQ(host["queue_bytes"], 1000);
  EXPECT_EQ(host["metrics"], 50);
  EXPECT_GE(host["refusals"].get<uint64_t>(), 37u + 50 + 30 + 37 + 2);
  const std::string exposition = Admin(server, "GET", "/metrics").body;
  EXPECT_NE(exposition.find("wasmlet_guest_host_usage{id=\"f\",plugin=\"f\",resource=\"queue_entries\"} 100"),
            std::string::npos)
      << exposition;
  EXPECT_NE(exposition.find("wasmlet_guest_limit_refusals{id=\"f\",plugin=\"f\"}"), std::string::npos);
  EXPECT_NE(server.process().Log().find("plugin 'f': a host call was refused at the shared_data_bytes limit"),
            std::string::npos)
      << server.process().Log();
}

TEST(HardeningTest, IdsThatNameNoFunctionShareOneMetricsLabel) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, {{"f", Plugin("f", kGuests + "/hostile.wasm")}}), port);
  Client client(port);
  for (int i = 0; i < 2000; ++i) client.Send("GET", "/", {{"id", "made-up-" + std::to_string(i)}});
  const std::string exposition = Admin(server, "GET", "/metrics").body;
  EXPECT_EQ(exposition.find("made-up-"), std::string::npos);
  EXPECT_NE(exposition.find("wasmlet_requests_total{id=\"(unknown)\",status=\"404\"} 2000"),
            std::string::npos)
      << exposition;
  EXPECT_LT(exposition.size(), 32u << 10);
}

TEST(HardeningTest, PastMaxConnectionsANewConnectionGetsA503AndTheOthersGoOn) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir,
                 LayottoConfig(port, {{"f", Plugin("f", kGuests + "/hostile.wasm")}}, json::object(),
                               {{"max_connections", 4}}),
                 port);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<Client>(port));
    EXPECT_EQ(idle.back()->Send("GET", "/", {{"id", "f"}}).status, 200);
  }
  auto refused = Get(port, "/", {{"id", "f"}});
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("connection limit (max_connections = 4)"), std::string::npos) << refused.body;
  EXPECT_EQ(idle.front()->Send("GET", "/", {{"id", "f"}}).status, 200);  // the open ones keep working
  idle.pop_back();
  // The closed connection's slot frees up once the server has seen the close.
  EXPECT_TRUE(Eventually([&] { return Get(port, "/", {{"id", "f"}}).status == 200; }));
}

// A loopback connection to `port` that sends `bytes`, as a client that then goes quiet.
int QuietClient(uint16_t port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      (!bytes.empty() && send(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads until the server closes `fd`: true once it has, false if it keeps the connection open
// for `patience` (a bound for a stuck server, far above the timeouts the tests set).
bool ClosedByPeer(int fd, std::chrono::milliseconds patience) {
  const auto give_up = std::chrono::steady_clock::now() + patience;
  timeval tv{0, 50 * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buffer[4096];
  while (std::chrono::steady_clock::now() < give_up) {
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return true;
  }
  return false;
}

TEST(HardeningTest, AClientThatGoesQuietIsDisconnectedAfterIdleTimeoutAndTheOthersGoOn) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir,
                 LayottoConfig(port, {{"f", Plugin("f", kGuests + "/hostile.wasm")}}, json::object(),
                               {{"idle_timeout_ms", 300}}),
                 port);
  const int silent = QuietClient(port, "");                                          // never sends a byte
  const int half = QuietClient(port, "GET / HTTP/1.1\r\nhost: x\r\nid: f\r\n");      // stops mid-headers
  const int kept = QuietClient(port, "GET / HTTP/1.1\r\nhost: x\r\nid: f\r\n\r\n");  // answered, then idle
  ASSERT_GE(silent, 0);
  ASSERT_GE(half, 0);
  ASSERT_GE(kept, 0);
  // Nothing but the idle timer closes a connection the client keeps open and quiet.
  for (int fd : {silent, half, kept}) {
    EXPECT_TRUE(ClosedByPeer(fd, std::chrono::seconds(10))) << "a quiet connection was kept open";
    close(fd);
  }
  // A connection in use is not cut: requests spaced closer than the timeout keep it open.
  Client busy(port);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(busy.Send("GET", "/", {{"id", "f"}}).status, 200);
    // Pacing, not a wait: half the idle timeout between requests, 750 ms in all, longer than
    // the timeout, so that only a timer restarted by each request keeps the connection.
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  EXPECT_TRUE(Alive(server));
}

TEST(HardeningTest, ResponsesWithoutContentOrWithAnInterimStatusKeepTheConnectionsFramingRight) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, {{"f", Plugin("f", kGuests + "/hostile.wasm")}}), port);
  Client client(port);  // one connection: the framing must stay right for the next request
  for (const char* status : {"204", "304"}) {
    auto answer = client.Send("GET", "/", {{"id", "f"}, {"x-op", "status"}, {"x-status", status}});
    EXPECT_EQ(answer.status, std::stoi(status));
    EXPECT_EQ(answer.body, "");
    EXPECT_EQ(answer.headers.count("Content-Length") + answer.headers.count("content-length"), 0u);
  }
  for (const char* status : {"100", "101", "199"}) {  // interim statuses: the client would wait on
    auto answer = client.Send("GET", "/", {{"id", "f"}, {"x-op", "status"}, {"x-status", status}});
    EXPECT_EQ(answer.status, 502) << status;
    EXPECT_NE(answer.body.find("is an interim (1xx) status"), std::string::npos) << answer.body;
  }
  // A HEAD answer says how long the body would be and sends none; the next answer still parses.
  auto head = client.Send("HEAD", "/", {{"id", "f"}, {"x-op", "status"}, {"x-status", "200"}});
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.headers["Content-Length"], std::to_string(std::string("a status out of range\n").size()));
  EXPECT_EQ(client.Send("GET", "/", {{"id", "f"}}).status, 200);
  EXPECT_TRUE(Alive(server));
}

TEST(HardeningTest, OutOfFileDescriptorsTheAcceptLoopBacksOffAndSaysSo) {
  TempDir dir;
  const uint16_t port = FreePort();
  const json config =
      LayottoConfig(port, {{"f", Plugin("f", kGuests + "/hostile.wasm")}}, json::object(), {{"workers", 1}});
  const std::string config_path = dir.File("config.json");
  std::ofstream(config_path) << config.dump();
  Process server(
      {"sh", "-c", "ulimit -n 96 && exec " + std::string(WASMLET_BINARY) + " start -c " + config_path},
      dir.File("wasmlet.log"));
  for (int i = 0; i < 1000 && !PortAccepts(port); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(PortAccepts(port)) << server.Log();

  // More idle connections than the process has descriptors left.
  std::vector<int> idle;
  for (int i = 0; i < 150; ++i) {
    if (int fd = QuietClient(port, ""); fd >= 0) idle.push_back(fd);
  }
  const std::string backing_off = "cannot accept connections on port " + std::to_string(port);
  ASSERT_TRUE(Eventually([&] { return server.Log().find(backing_off) != std::string::npos; }))
      << server.Log();
  const double cpu_before = CpuSeconds(server.pid());
  // A measurement window, not a wait: the CPU time the process uses in 1 s of backing off.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const double cpu = CpuSeconds(server.pid()) - cpu_before;
  EXPECT_LT(cpu, 0.3) << "the accept loop spins";
  for (int fd : idle) close(fd);
  // Served again once the server has seen the closes and accepts again.
  EXPECT_TRUE(Eventually([&] {
    try {
      return Get(port, "/", {{"id", "f"}}).status == 200;
    } catch (const std::exception&) {
      return false;
    }
  })) << server.Log();
}

TEST(HardeningTest, AnAdminListenerOthersCanReachNeedsATokenOrAnExplicitOptOut) {
  TempDir dir;
  const uint16_t port = FreePort();
  const json plugins = {{"f", Plugin("f", kGuests + "/hostile.wasm")}};
  const std::string exposed = "0.0.0.0:" + std::to_string(FreePort());
  Wasmlet refused(dir, LayottoConfig(port, plugins, json::object(), {{"admin_address", exposed}}), port,
                  /*expect_start=*/false);
  EXPECT_EQ(refused.process().WaitExit(), 1);
  EXPECT_NE(refused.process().Log().find("no admin_token is set"), std::string::npos)
      << refused.process().Log();
  EXPECT_NE(refused.process().Log().find("admin_allow_insecure"), std::string::npos);

  const uint16_t port2 = FreePort();
  Wasmlet allowed(dir,
                  LayottoConfig(port2, plugins, json::object(),
                                {{"admin_address", "0.0.0.0:" + std::to_string(FreePort())},
                                 {"admin_allow_insecure", true}}),
                  port2);
  EXPECT_NE(allowed.process().Log().find("has no token and is reachable from other machines"),
            std::string::npos)
      << allowed.process().Log();
  const uint16_t port3 = FreePort();
  Wasmlet with_token(
      dir,
      LayottoConfig(port3, plugins, json::object(),
                    {{"admin_address", "0.0.0.0:" + std::to_string(FreePort())}, {"admin_token", "s3cret"}}),
      port3);
  EXPECT_FALSE(with_token.process().Exited());
}

TEST(HardeningTest, AFileThatKeepsChangingIsStillReloadedWithinMaxReloadDelay) {
  TempDir dir;
  const uint16_t port = FreePort();
  const std::string live = dir.File("live.wasm");
  fs::copy_file(kGuests + "/version1.wasm", live);
  Wasmlet server(
      dir, LayottoConfig(port, {{"v", Plugin("v", live)}}, json::object(), {{"max_reload_delay_ms", 1000}}),
      port);
  ASSERT_EQ(Get(port, "/", {{"id", "versioned"}}).body, "version 1\n");
  // Rewrite it every 100 ms (always the new version, by rename) until it is served: the 200 ms
  // quiet period never comes while the test looks, so only max_reload_delay_ms can switch it.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop) {
      fs::copy_file(kGuests + "/version2.wasm", live + ".tmp", fs::copy_options::overwrite_existing);
      fs::rename(live + ".tmp", live);
      // Pacing, not a wait: a change every 100 ms, half the quiet period.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  const bool switched =
      Eventually([&] { return Get(port, "/", {{"id", "versioned"}}).body == "version 2\n"; });
  stop = true;
  writer.join();
  EXPECT_TRUE(switched) << server.process().Log();
}

TEST(HardeningTest, ARemoteInvokeToAServerThatNeverAnswersEndsAtItsDeadline) {
  TempDir dir;
  Blackhole blackhole;
  const std::string remote = blackhole.address();

  const uint16_t port = FreePort();
  json config = LayottoConfig(port, {{"fn", Plugin("fn", kGuests + "/layotto_function.wasm")}},
                              json::object(), {{"invoke_timeout_ms", 500}});
  // Layotto's rpc channel: proxy_invoke_service goes to `remote`.
  config["servers"][0]["listeners"][0]["filter_chains"][0]["filters"][0]["config"]["grpc_config"]["rpcs"] = {
      {"mosn", {{"config", {{"channel", {{{"address", remote}}}}}}}}};
  Wasmlet server(dir, config, port);
  // The blackhole neither answers nor closes: the call's invoke_timeout_ms is what ends it, and
  // what the log says ended it.
  auto r = Get(port, "/", {{"id", "id_test"}}, "call:elsewhere", "POST");
  EXPECT_EQ(r.body.rfind("call status=10", 0), 0u) << r.body;
  EXPECT_NE(server.process().Log().find("got no answer within 500 ms"), std::string::npos)
      << server.process().Log();
}

TEST(HardeningTest, AnInProcessInvokeThatTimesOutIsCancelledNotRunLater) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"caller", Plugin("caller", kGuests + "/layotto_function.wasm")},
                  {"slow", Plugin("slow", kGuests + "/abi_filter.wasm", 1, {{"cpu", 1500}})}};
  Wasmlet server(dir, LayottoConfig(port, plugins, json::object(), {{"invoke_timeout_ms", 300}}), port);
  // Its first spin moves the callee to the pool loops: afterwards, spinning, it holds no serving
  // loop (and no connection of the caller's) up.
  EXPECT_EQ(Get(port, "/", {{"id", "slow"}, {"x-op", "spin"}}).status, 504);
  // Its instance is let go of a moment after that answer: seen busy before then, it would pass
  // for the next request's.
  ASSERT_TRUE(Eventually([&] { return InstancesAre(server, "slow", "busy", 0); }));
  // The callee's one instance is busy spinning for 1.5 s.
  std::thread busy([port] { Get(port, "/", {{"id", "slow"}, {"x-op", "spin"}}); });
  ASSERT_TRUE(Eventually([&] { return InstancesAre(server, "slow", "busy", 1); }));
  // The call ends at invoke_timeout_ms, before the instance is free: it says so, and it was
  // taken out of the queue rather than left to run later.
  auto r = Get(port, "/", {{"id", "id_test"}}, "call:slow", "POST");
  busy.join();
  EXPECT_EQ(r.body.rfind("call status=10", 0), 0u) << r.body;
  EXPECT_NE(
      server.process().Log().find("did not answer within 300 ms (the call was cancelled before it ran)"),
      std::string::npos)
      << server.process().Log();
  const std::string exposition = Get(server.admin_port(), "/metrics").body;
  EXPECT_NE(exposition.find("wasmlet_invokes_cancelled_total{id=\"slow\"} 1"), std::string::npos)
      << exposition;
}

TEST(HardeningTest, AGuestThatLogsWithoutEndIsCutToAHundredLinesASecond) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, {{"f", Plugin("f", kGuests + "/hostile.wasm")}}), port);
  EXPECT_EQ(Get(port, "/", {{"id", "f"}, {"x-op", "log"}, {"x-count", "1000"}}).status, 200);
  // The other 900 are dropped. That they are counted when the second ends, and the next second's
  // lines kept, PluginVmTest sees on a clock it moves.
  EXPECT_EQ(Count(server.process().Log(), "hostile line "), 100) << server.process().Log();
  EXPECT_TRUE(Alive(server));
}

TEST(HardeningTest, ARedisThatAcceptsButNeverAnswersFailsTheCallAtItsTimeoutNamingIt) {
  TempDir dir;
  Blackhole blackhole;
  const std::string redis = blackhole.address();
  const uint16_t port = FreePort();
  json stores = {
      {"state_demo", {{"type", "redis"}, {"metadata", {{"redisHost", redis}, {"timeoutMs", "300"}}}}}};
  Wasmlet server(
      dir,
      LayottoConfig(port,
                    {{"function2", Plugin("function2", std::string(WASMLET_EXAMPLES) + "/function2.wasm")}},
                    stores),
      port);
  // The blackhole never answers nor closes: the read ends by the socket's receive timeout,
  // which hiredis sets to timeoutMs and reports as EAGAIN ("Resource temporarily unavailable").
  auto r = Get(port, "/", {{"id", "id_2"}}, "book1", "POST");
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("state store 'state_demo' (redis at " + redis +
                        "): GET failed: Resource temporarily unavailable"),
            std::string::npos)
      << r.body;
}

}  // namespace
}  // namespace wasmlet::testing
