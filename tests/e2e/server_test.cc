// The function server as users run it: the real binary, real HTTP over loopback, a real
// redis-server. Each test starts its own processes on free ports.
#include <atomic>
#include <set>
#include <sstream>

#include "e2e/harness.h"

namespace wasmlet::testing {
namespace {

const std::string kExamples = WASMLET_EXAMPLES;
const std::string kGuests = WASMLET_TEST_GUESTS;

json QuickstartPlugins() {
  return {{"function1", Plugin("function1", kExamples + "/function1.wasm", 2)},
          {"function2", Plugin("function2", kExamples + "/function2.wasm", 2)}};
}

TEST(ServerTest, QuickstartAnswersFromTheEmbeddedStore) {
  TempDir dir;
  const uint16_t port = FreePort();
  json stores = {
      {"state_demo", {{"type", "embedded"}, {"metadata", {{"path", dir.File("new/folder/state.db")}}}}}};
  json config = LayottoConfig(port, QuickstartPlugins(), stores);
  const std::string config_path = SeedState(dir, config, "state_demo", "book1", "100");
  auto [get_code, value] = RunWasmlet("state get state_demo book1 -c " + config_path);
  EXPECT_EQ(value, "100\n");

  Wasmlet server(dir, config, port);
  auto response = Get(port, "/?name=book1", {{"id", "id_1"}});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "There are 100 inventories for book1.");
  // function 2 on its own: the body is the book's name.
  EXPECT_EQ(Get(port, "/", {{"id", "id_2"}}, "book1", "POST").body, "100");
  // A key that is not there: an empty stock, not an error.
  EXPECT_EQ(Get(port, "/?name=nobook", {{"id", "id_1"}}).body, "There are  inventories for nobook.");
}

TEST(ServerTest, QuickstartAnswersFromRedis) {
  TempDir dir;
  Redis redis(dir);
  const uint16_t port = FreePort();
  json stores = {
      {"state_demo",
       {{"type", "redis"}, {"metadata", {{"redisHost", "127.0.0.1:" + std::to_string(redis.port())}}}}}};
  json config = LayottoConfig(port, QuickstartPlugins(), stores);
  SeedState(dir, config, "state_demo", "book1", "100");
  // `wasmlet state set` writes the hash form Layotto's and Dapr's Redis stores write.
  EXPECT_EQ(redis.Cli("HGET book1 data"), "100\n");
  EXPECT_EQ(redis.Cli("HGET book1 version"), "1\n");
  redis.Cli("HSET book2 data 42 version 1");
  // A plain string, as Layotto's demo seeds it with redis-cli, is read too.
  redis.Cli("SET book3 7");

  Wasmlet server(dir, config, port);
  EXPECT_EQ(Get(port, "/?name=book1", {{"id", "id_1"}}).body, "There are 100 inventories for book1.");
  EXPECT_EQ(Get(port, "/?name=book2", {{"id", "id_1"}}).body, "There are 42 inventories for book2.");
  EXPECT_EQ(Get(port, "/?name=book3", {{"id", "id_1"}}).body, "There are 7 inventories for book3.");
}

TEST(ServerTest, TheJsonLogFormatIsOneObjectPerLineWhateverTheGuestPrints) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"filter", Plugin("filter", kGuests + "/abi_filter.wasm", 1)}};
  Wasmlet server(dir, LayottoConfig(port, plugins), port, true, {"--log-format", "json"});
  EXPECT_EQ(Get(port, "/", {{"id", "filter"}, {"x-op", "log"}}).status, 200);   // proxy_log and printf
  EXPECT_EQ(Get(port, "/", {{"id", "filter"}, {"x-op", "trap"}}).status, 500);  // a warning naming the trap
  server.process().Stop();
  const std::string text = server.process().Log();
  std::istringstream log(text);
  std::string line;
  std::set<std::string> levels;
  std::string messages;
  size_t lines = 0;
  while (std::getline(log, line)) {
    ++lines;
    json entry;
    try {
      entry = json::parse(line);
    } catch (...) {
      ADD_FAILURE() << "not a JSON object: " << line;
      continue;
    }
    ASSERT_TRUE(entry.is_object()) << line;
    ASSERT_TRUE(entry["time"].is_string()) << line;
    EXPECT_EQ(entry["time"].get<std::string>().size(), 24u) << line;  // 2026-12-02T08:00:00.123Z
    EXPECT_EQ(entry["time"].get<std::string>().back(), 'Z') << line;
    EXPECT_TRUE(entry["thread"].is_number()) << line;
    levels.insert(entry["level"].get<std::string>());
    messages += entry["message"].get<std::string>() + "\n";
  }
  EXPECT_GE(lines, 5u) << text;  // start-up, the guest's two lines, the trap, the stop
  EXPECT_NE(messages.find("trapped: unreachable"), std::string::npos) << text;
  EXPECT_NE(messages.find("abi_filter: a warning from the guest"), std::string::npos) << messages;
  EXPECT_NE(messages.find("abi_filter: printed to stdout"), std::string::npos) << messages;
  EXPECT_TRUE(levels.count("info") && levels.count("warning")) << text;

  auto [code, out] = RunWasmlet("start -c " + server.config_path() + " --log-format yaml");
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("unknown log format 'yaml' (use text or json)"), std::string::npos) << out;
}

TEST(ServerTest, ErrorsAreRealHttpErrorsWithAMessage) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"filter", Plugin("filter", kGuests + "/abi_filter.wasm", 1, {{"cpu", 300}})},
                  {"slow", Plugin("slow", kGuests + "/abi_filter.wasm", 1, {{"cpu", 1500}})}};
  Wasmlet server(
      dir,
      LayottoConfig(port, plugins, json::object(), {{"max_request_body", 1024}, {"queue_timeout_ms", 200}}),
      port);

  auto missing = Get(port, "/");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("missing header 'id'"), std::string::npos) << missing.body;

  auto unknown = Get(port, "/", {{"id", "no_such_function"}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body, "no function is registered under id 'no_such_function'\n");

  auto too_big = Get(port, "/", {{"id", "filter"}}, std::string(4096, 'x'), "POST");
  EXPECT_EQ(too_big.status, 413);
  EXPECT_NE(too_big.body.find("over the limit of 1024 bytes"), std::string::npos) << too_big.body;

  auto trapped = Get(port, "/", {{"id", "filter"}, {"x-op", "trap"}});
  EXPECT_EQ(trapped.status, 500);
  EXPECT_NE(trapped.body.find("function 'filter' (filter) failed"), std::string::npos) << trapped.body;
  EXPECT_NE(trapped.body.find("unreachable"), std::string::npos) << trapped.body;

  // A guest that never returns is stopped by its CPU budget, as the answer says.
  auto spun = Get(port, "/", {{"id", "filter"}, {"x-op", "spin"}});
  EXPECT_EQ(spun.status, 504);
  EXPECT_NE(spun.body.find("ran past its 300 ms limit"), std::string::npos) << spun.body;

  // A function's first request over inline_limit_ms runs on a serving loop (and stalls that
  // loop's connections for its budget); then the function moves to the pool loops.
  EXPECT_EQ(Get(port, "/", {{"id", "slow"}, {"x-op", "spin"}}).status, 504);
  // Its instance is let go of a moment after that answer: seen busy before then, it would pass
  // for the next request's.
  EXPECT_TRUE(Eventually([&] { return InstancesAre(server, "slow", "busy", 0); }));
  // One instance, busy spinning: the next request waits 200 ms for it, then gets 503.
  std::thread busy([port] { Get(port, "/", {{"id", "slow"}, {"x-op", "spin"}}); });
  EXPECT_TRUE(Eventually([&] { return InstancesAre(server, "slow", "busy", 1); }));
  auto unavailable = Get(port, "/", {{"id", "slow"}, {"x-op", "local"}});
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_NE(unavailable.body.find("became free within 200 ms"), std::string::npos) << unavailable.body;
  busy.join();

  // None of that hurt anything: the failed instances were replaced.
  for (const char* id : {"filter", "slow"}) {
    auto fine = Get(port, "/", {{"id", id}, {"x-op", "local"}});
    EXPECT_EQ(fine.status, 403) << id << ": " << fine.body;  // the guest's own local response
    EXPECT_EQ(fine.headers["x-reason"], "policy");
  }
}

TEST(ServerTest, ManyConcurrentRequestsAreAllAnsweredCorrectly) {
  TempDir dir;
  const uint16_t port = FreePort();
  json stores = {{"state_demo", {{"type", "in-memory"}}}};
  json plugins = {{"f", Plugin("f", kGuests + "/abi_filter.wasm", 4)}};
  Wasmlet server(dir, LayottoConfig(port, plugins, stores), port);

  std::atomic<int> correct{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 50; ++c) {
    clients.emplace_back([&, c] {
      Client client(port);  // one keep-alive connection, four requests
      for (int r = 0; r < 4; ++r) {
        const std::string body = "client " + std::to_string(c) + " request " + std::to_string(r);
        auto response = client.Send("POST", "/", {{"id", "f"}, {"x-op", "echo"}}, body);
        if (response.status == 200 && response.body == "echo=" + body + "\n") correct++;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(correct, 200);
}

// A raw loopback connection whose receive buffer is small, so that a large answer cannot wait
// in the kernel: the server can only finish writing it as fast as the test reads.
class SlowReader {
 public:
  explicit SlowReader(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int small = 16 * 1024;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~SlowReader() { close(fd_); }
  bool connected() const { return connected_; }
  bool SendAll(const std::string& bytes) {
    for (size_t sent = 0; sent < bytes.size();) {
      const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // Up to `max` bytes; empty at the end of the stream or on an error.
  std::string Read(size_t max) {
    std::string chunk(max, '\0');
    const ssize_t n = recv(fd_, chunk.data(), max, 0);
    chunk.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return chunk;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Issue 26, bug 1: a graceful stop counted a request done when its handler answered, not when
// the answer was written, and stopped the loops 20 ms later, cutting an answer a client took
// slowly; a keep-alive connection idle at the stop could still have a request read and never
// answered. Now the stop closes idle connections at once, and waits (up to drain_timeout_ms)
// until every answer of a request it read is written.
TEST(ServerTest, AGracefulStopWritesEveryAnswerItOwesAndClosesIdleConnections) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"f", Plugin("f", kGuests + "/abi_filter.wasm", 2)}};
  Wasmlet server(dir, LayottoConfig(port, plugins, json::object(), {{"max_request_body", 8 << 20}}), port);

  Client idle(port);  // answered once, then waiting for its next request
  ASSERT_EQ(idle.Send("POST", "/", {{"id", "f"}, {"x-op", "echo"}}, "first").status, 200);

  std::string body(4 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  const std::string expected = "echo=" + body + "\n";
  SlowReader slow(port);
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(slow.SendAll("POST / HTTP/1.1\r\nHost: t\r\nid: f\r\nx-op: echo\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body));
  std::string answer;
  while (answer.find("\r\n\r\n") == std::string::npos) {
    std::string chunk = slow.Read(4096);
    ASSERT_FALSE(chunk.empty()) << "no answer to the large request";
    answer += chunk;
  }
  // The handler has answered and the write has begun; most of it is still to go.
  ASSERT_LT(answer.size(), expected.size());
  kill(server.process().pid(), SIGTERM);

  // The idle connection is closed without another request being read: its next read ends.
  EXPECT_EQ(idle.ReadUntilClosed(), std::optional<std::string>("")) << "an idle connection gets no answer, only its end";

  // The slow client takes the rest at its pace (16 KiB, then a pause: a slow reader is the
  // workload here, not a wait), and gets all of it; then the server closes the connection.
  for (;;) {
    std::string chunk = slow.Read(16 * 1024);
    if (chunk.empty()) break;
    answer += chunk;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  const size_t head_end = answer.find("\r\n\r\n");
  EXPECT_EQ(answer.size() - head_end - 4, expected.size()) << "the answer was cut";
  EXPECT_TRUE(answer.compare(head_end + 4, std::string::npos, expected) == 0);
  EXPECT_EQ(server.process().WaitExit(), 0) << server.process().Log();
}

TEST(ServerTest, PluginsSharingAnIdBothReceiveTraffic) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"a", Plugin("copy_a", kGuests + "/layotto_function.wasm")},
                  {"b", Plugin("copy_b", kGuests + "/layotto_function.wasm")}};
  Wasmlet server(dir, LayottoConfig(port, plugins), port);
  std::map<std::string, int> seen;
  for (int i = 0; i < 60; ++i) {
    auto response = Get(port, "/?whoami", {{"id", "id_test"}});
    ASSERT_EQ(response.status, 200) << response.body;
    seen[response.body]++;
  }
  EXPECT_GT(seen["whoami status=0 value=copy_a"], 5);
  EXPECT_GT(seen["whoami status=0 value=copy_b"], 5);
}

TEST(ServerTest, AFunctionCallingItselfGetsAnErrorQuickly) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, {{"t", Plugin("t", kGuests + "/layotto_function.wasm")}}), port);
  // Refused at once, naming the cause, rather than waiting for invoke_timeout on its own instance.
  auto response = Get(port, "/?call:id_test", {{"id", "id_test"}});
  EXPECT_EQ(response.body, "call status=10 value=");
  EXPECT_NE(server.process().Log().find("called itself"), std::string::npos) << server.process().Log();
  EXPECT_EQ(server.process().Log().find("did not answer within"), std::string::npos) << server.process().Log();
}

TEST(ServerTest, ChunkedRequestBodiesArriveWhole) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, {{"f", Plugin("f", kGuests + "/abi_filter.wasm")}}), port);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string request =
      "POST / HTTP/1.1\r\nHost: localhost\r\nid: f\r\nx-op: echo\r\nConnection: close\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) response.append(buf, n);
  close(fd);
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("\r\n\r\necho=hello world\n"), std::string::npos) << response;
}

TEST(ServerTest, InvokeServiceReachesAnotherServerThroughTheRpcChannel) {
  TempDir dir;
  // Server B runs function 2 with its store; server A runs only function 1, whose
  // proxy_invoke_service goes to B over HTTP.
  const uint16_t port_b = FreePort();
  json stores = {{"state_demo", {{"type", "embedded"}, {"metadata", {{"path", dir.File("b.db")}}}}}};
  json config_b =
      LayottoConfig(port_b, {{"function2", Plugin("function2", kExamples + "/function2.wasm")}}, stores);
  SeedState(dir, config_b, "state_demo", "book9", "9");
  Wasmlet server_b(dir, config_b, port_b);

  const uint16_t port_a = FreePort();
  json config_a = LayottoConfig(port_a, {{"function1", Plugin("function1", kExamples + "/function1.wasm")}});
  config_a["servers"][0]["listeners"][0]["filter_chains"][0]["filters"][0]["config"]["grpc_config"]["rpcs"] =
      {{"mosn",
        {{"config",
          {{"channel", {{{"protocol", "http"}, {"address", "127.0.0.1:" + std::to_string(port_b)}}}}}}}}};
  Wasmlet server_a(dir, config_a, port_a);
  EXPECT_EQ(Get(port_a, "/?name=book9", {{"id", "id_1"}}).body, "There are 9 inventories for book9.");
}

TEST(ServerTest, BadConfigFailsAtStartWithOneLineNamingTheItem) {
  TempDir dir;
  std::ofstream(dir.File("not.wasm")) << "this is not wasm";
  const std::string good = kExamples + "/function2.wasm";
  struct Case {
    std::string what;
    json plugins;
    json stores;
    std::string message;
  };
  std::vector<Case> cases = {
      {"unknown store type",
       {{"f", Plugin("f", good)}},
       {{"s", {{"type", "etcd"}}}},
       "config servers[0].listeners[0].filter_chains[0].filters[0].config.grpc_config.state.s.type: unknown "
       "state "
       "store type \"etcd\""},
      {"missing wasm",
       {{"f", Plugin("f", dir.File("missing.wasm"))}},
       json::object(),
       "config servers[0].listeners[1].stream_filters[0].config.f.vm_config.path: cannot read"},
      {"md5 mismatch",
       {{"f", Plugin("f", good, 1, {{"md5", "00000000000000000000000000000000"}})}},
       json::object(),
       "config servers[0].listeners[1].stream_filters[0].config.f.vm_config.md5: "},
      {"not wasm",
       {{"f", Plugin("f", dir.File("not.wasm"))}},
       json::object(),
       "config servers[0].listeners[1].stream_filters[0].config.f.vm_config.path: " + dir.File("not.wasm") +
           " is not a WebAssembly module (it does not start with \\0asm)"},
      {"unknown engine",
       {{"f", Plugin("f", good, 1, {{"engine", "wamr"}})}},
       json::object(),
       "config servers[0].listeners[1].stream_filters[0].config.f.vm_config.engine: unknown engine \"wamr\""},
  };
  for (const auto& c : cases) {
    const uint16_t port = FreePort();
    Wasmlet server(dir, LayottoConfig(port, c.plugins, c.stores), port, /*expect_start=*/false);
    EXPECT_EQ(server.process().WaitExit(), 1) << c.what;
    const std::string log = server.process().Log();
    EXPECT_NE(log.find(c.message), std::string::npos) << c.what << ":\n" << log;
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << c.what << ":\n" << log;
  }
}

TEST(ServerTest, ABrokenPluginDoesNotStopTheOthers) {
  TempDir dir;
  const uint16_t port = FreePort();
  json stores = {{"state_demo", {{"type", "in-memory"}}}};
  json plugins = {{"broken", Plugin("broken", dir.File("missing.wasm"))},
                  {"f", Plugin("f", kGuests + "/abi_filter.wasm")}};
  Wasmlet server(dir, LayottoConfig(port, plugins, stores), port);
  EXPECT_EQ(Get(port, "/", {{"id", "f"}, {"x-op", "local"}}).status, 403);
  EXPECT_NE(server.process().Log().find("config.broken.vm_config.path: cannot read"), std::string::npos)
      << server.process().Log();
}

TEST(ServerTest, RedisGoingAwayFailsOnlyWhatNeedsItAndRecoversByItself) {
  TempDir dir;
  Redis redis(dir);
  const uint16_t port = FreePort();
  json stores = {
      {"state_demo",
       {{"type", "redis"}, {"metadata", {{"redisHost", "127.0.0.1:" + std::to_string(redis.port())}}}}}};
  json plugins = QuickstartPlugins();
  plugins["filter"] = Plugin("filter", kGuests + "/abi_filter.wasm");
  redis.Cli("SET book1 100");
  Wasmlet server(dir, LayottoConfig(port, plugins, stores), port);
  EXPECT_EQ(Get(port, "/?name=book1", {{"id", "id_1"}}).body, "There are 100 inventories for book1.");

  redis.Kill();
  auto down = Get(port, "/?name=book1", {{"id", "id_1"}});
  EXPECT_EQ(down.status, 502);
  // The answer names the store, that it is Redis, and where (wasmlet.last_error).
  const std::string where =
      "state store 'state_demo' (redis at 127.0.0.1:" + std::to_string(redis.port()) + ")";
  EXPECT_TRUE(down.body.starts_with("function id_2 did not answer: ")) << down.body;
  EXPECT_NE(down.body.find(where), std::string::npos) << down.body;
  auto direct = Get(port, "/", {{"id", "id_2"}}, "book1", "POST");
  EXPECT_EQ(direct.status, 502);
  EXPECT_TRUE(
      direct.body.starts_with("the state store state_demo is unavailable: proxy_get_state('state_demo', "
                              "'book1'): " +
                              where + ": "))
      << direct.body;
  EXPECT_NE(server.process().Log().find("redis at 127.0.0.1:" + std::to_string(redis.port())),
            std::string::npos);
  // Functions that do not need Redis keep working.
  EXPECT_EQ(Get(port, "/", {{"id", "filter"}, {"x-op", "local"}}).status, 403);

  redis.Start();  // same port, empty data
  redis.Cli("SET book1 7");
  EXPECT_EQ(Get(port, "/?name=book1", {{"id", "id_1"}}).body, "There are 7 inventories for book1.");
}

TEST(ServerTest, StopsGracefullyOnSigterm) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(
      dir, LayottoConfig(port, {{"f", Plugin("f", kGuests + "/abi_filter.wasm", 1, {{"cpu", 1000}})}}), port);
  // A request in flight when SIGTERM arrives still gets its answer.
  std::thread in_flight([port] {
    auto response = Get(port, "/", {{"id", "f"}, {"x-op", "spin"}});
    EXPECT_EQ(response.status, 504);
  });
  // In flight: its instance is busy spinning (for its 1 s budget).
  EXPECT_TRUE(Eventually([&] { return InstancesAre(server, "f", "busy", 1); }));
  EXPECT_EQ(server.process().Stop(), 0) << server.process().Log();
  in_flight.join();
  EXPECT_FALSE(PortAccepts(port));
}

}  // namespace
}  // namespace wasmlet::testing
