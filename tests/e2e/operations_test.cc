// Operating wasmlet: the admin API, hot reload under load, URL loading, CPU and memory limits,
// fault isolation and metrics, against the real binary over loopback.
#include <atomic>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <map>
#include <set>

#include "e2e/harness.h"

namespace wasmlet::testing {
namespace {

const std::string kGuests = WASMLET_TEST_GUESTS;

// An admin call with a JSON body (none for null).
Response Admin(const Wasmlet& server, const std::string& method, const std::string& path, const json& body,
               std::map<std::string, std::string> headers = {}) {
  return testing::Admin(server, method, path, body.is_null() ? "" : body.dump(), std::move(headers));
}

// Prometheus text exposition: sample name with labels -> value. Fails the test on a malformed
// line, or on a sample whose metric has no # TYPE line before it.
std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> samples;
  std::set<std::string> typed;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      typed.insert(name);
      continue;
    }
    if (line[0] == '#') continue;
    const auto space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    const std::string key = line.substr(0, space);
    std::string name = key.substr(0, key.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!typed.count(name) && name.size() > strlen(suffix) && name.ends_with(suffix)) {
        name = name.substr(0, name.size() - strlen(suffix));
      }
    }
    EXPECT_TRUE(typed.count(name)) << "no # TYPE before " << line;
    if (key.find('{') != std::string::npos) {
      EXPECT_EQ(key.back(), '}') << line;
    }
    samples[key] = std::stod(line.substr(space + 1));
  }
  return samples;
}

TEST(OperationsTest, InstallCallUpdateUninstallOverTheAdminApi) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, {{"filter", Plugin("filter", kGuests + "/abi_filter.wasm")}}),
                 port);

  auto installed =
      Admin(server, "POST", "/wasm/install",
            {{"name", "layotto"},
             {"instance_num", 1},
             {"vm_config", {{"engine", "wasmtime"}, {"path", kGuests + "/layotto_function.wasm"}}}});
  ASSERT_EQ(installed.status, 200) << installed.body;
  EXPECT_EQ(Body(installed)["id"], "id_test");
  EXPECT_EQ(Get(port, "/?whoami", {{"id", "id_test"}}).body, "whoami status=0 value=layotto");

  auto list = Body(Admin(server, "GET", "/wasm/list"));
  ASSERT_EQ(list.size(), 2u) << list;
  for (const auto& f : list) {
    if (f["id"] == "id_test") {
      EXPECT_EQ(f["instances"], 1);
      EXPECT_EQ(f["requests"], 1);
      EXPECT_EQ(f["file"], kGuests + "/layotto_function.wasm");
      EXPECT_EQ(f["md5"].get<std::string>().size(), 32u);
      EXPECT_GT(f["memory_bytes"], 0);
      EXPECT_EQ(f["memory_limit_bytes"], 256 << 20);  // one instance at the default cap
    }
  }

  ASSERT_EQ(Admin(server, "POST", "/wasm/update", {{"name", "id_test"}, {"instance_num", 3}}).status, 200);
  for (const auto& f : Body(Admin(server, "GET", "/wasm/list"))) {
    if (f["id"] == "id_test") {
      EXPECT_EQ(f["instances"], 3);
    }
  }
  ASSERT_EQ(Admin(server, "POST", "/wasm/update", {{"name", "id_test"}, {"instance_num", 1}}).status, 200);
  for (const auto& f : Body(Admin(server, "GET", "/wasm/list"))) {
    if (f["id"] == "id_test") {
      EXPECT_EQ(f["instances"], 1);
    }
  }

  auto uninstalled = Admin(server, "POST", "/wasm/uninstall", {{"name", "id_test"}});
  EXPECT_EQ(uninstalled.status, 200) << uninstalled.body;
  EXPECT_EQ(Get(port, "/?whoami", {{"id", "id_test"}}).status, 404);
  EXPECT_EQ(Admin(server, "POST", "/wasm/uninstall", {{"name", "id_test"}}).status, 404);
  EXPECT_EQ(Admin(server, "POST", "/wasm/update", {{"name", "id_test"}, {"instance_num", 2}}).status, 404);
  EXPECT_EQ(Admin(server, "GET", "/wasm/nothing").status, 404);
  EXPECT_EQ(Get(port, "/", {{"id", "filter"}, {"x-op", "local"}}).status, 403);  // untouched throughout
}

TEST(OperationsTest, UninstallingOnePluginLeavesTheOthersUnderItsId) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, json::object()), port);
  EXPECT_EQ(Admin(server, "GET", "/health/readiness").status, 200)
      << "no functions configured: ready for installs";
  EXPECT_EQ(Get(port, "/", {{"id", "id_test"}}).status, 404);
  for (const char* name : {"a", "b"}) {
    auto installed = Admin(server, "POST", "/wasm/install",
                           {{"name", name}, {"vm_config", {{"path", kGuests + "/layotto_function.wasm"}}}});
    ASSERT_EQ(installed.status, 200) << installed.body;
  }
  EXPECT_EQ(Admin(server, "POST", "/wasm/uninstall", {{"plugin", "a"}}).status, 200);
  auto list = Body(Admin(server, "GET", "/wasm/list"));
  ASSERT_EQ(list.size(), 1u) << list;
  EXPECT_EQ(list[0]["name"], "b");
  EXPECT_EQ(Get(port, "/?whoami", {{"id", "id_test"}}).status, 200) << "b still serves id_test";
  auto again = Admin(server, "POST", "/wasm/uninstall", {{"plugin", "a"}});
  EXPECT_EQ(again.status, 404);
  EXPECT_NE(again.body.find("no plugin named 'a'"), std::string::npos) << again.body;
  EXPECT_EQ(Admin(server, "POST", "/wasm/uninstall", {{"plugin", "b"}}).status, 200);
  EXPECT_EQ(Get(port, "/?whoami", {{"id", "id_test"}}).status, 404);
  auto unnamed = Admin(server, "POST", "/wasm/uninstall", {{"plugin", ""}});
  EXPECT_EQ(unnamed.status, 400);
  EXPECT_NE(Body(unnamed)["error"].get<std::string>().find("or {\"plugin\": \"f1\"}"), std::string::npos)
      << unnamed.body;
}

TEST(OperationsTest, BadInstallsGetA4xxWithAMessageAndChangeNothing) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, {{"filter", Plugin("filter", kGuests + "/abi_filter.wasm")}}),
                 port);
  std::ofstream(dir.File("text.wasm")) << "not wasm at all";
  const std::string good = kGuests + "/layotto_function.wasm";
  struct Case {
    std::string body;
    std::string message;
  };
  std::vector<Case> cases = {
      {json({{"name", "x"}, {"vm_config", {{"engine", "wasmtime"}}}}).dump(), "give the module's \"path\""},
      {json({{"name", "x"}, {"vm_config", {{"path", good}, {"md5", "0123456789abcdef0123456789abcdef"}}}})
           .dump(),
       "md5"},
      {json({{"name", "x"}, {"vm_config", {{"path", dir.File("text.wasm")}}}}).dump(),
       "not a WebAssembly module"},
      {json({{"name", "x"}, {"vm_config", {{"engine", "lucet"}, {"path", good}}}}).dump(),
       "unknown engine \"lucet\""},
      {json({{"name", "x"}, {"vm_config", {{"path", dir.File("nowhere.wasm")}}}}).dump(), "cannot read"},
      {"{not json", "not valid JSON"},
      {json({{"vm_config", {{"path", good}}}}).dump(), "name"},
  };
  for (const auto& c : cases) {
    auto response = Get(server.admin_port(), "/wasm/install", {}, c.body, "POST");
    EXPECT_GE(response.status, 400) << c.body;
    EXPECT_LT(response.status, 500) << c.body;
    EXPECT_NE(Body(response)["error"].get<std::string>().find(c.message), std::string::npos)
        << c.body << " -> " << response.body;
  }
  auto list = Body(Admin(server, "GET", "/wasm/list"));
  ASSERT_EQ(list.size(), 1u) << list;
  EXPECT_EQ(list[0]["id"], "filter");
  // Installing the same name twice is refused too.
  json item = {{"name", "filter"}, {"vm_config", {{"path", kGuests + "/abi_filter.wasm"}}}};
  EXPECT_EQ(Admin(server, "POST", "/wasm/install", item).status, 409);
}

TEST(OperationsTest, AnAdminTokenProtectsTheAdminApi) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir,
                 LayottoConfig(port, {{"filter", Plugin("filter", kGuests + "/abi_filter.wasm")}},
                               json::object(), {{"admin_token", "s3cret"}}),
                 port);
  EXPECT_EQ(Admin(server, "GET", "/wasm/list").status, 401);
  EXPECT_EQ(Admin(server, "GET", "/wasm/list", json(), {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(Admin(server, "GET", "/wasm/list", json(), {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(Admin(server, "GET", "/health/readiness").status, 200);  // probes need no token
  EXPECT_EQ(Admin(server, "GET", "/health/liveness").status, 200);

  // The token may come from the environment instead.
  setenv("WASMLET_ADMIN_TOKEN", "from-env", 1);
  const uint16_t port2 = FreePort();
  Wasmlet from_env(dir, LayottoConfig(port2, {{"filter", Plugin("filter", kGuests + "/abi_filter.wasm")}}),
                   port2);
  unsetenv("WASMLET_ADMIN_TOKEN");
  EXPECT_EQ(Admin(from_env, "GET", "/wasm/list").status, 401);
  EXPECT_EQ(Admin(from_env, "GET", "/wasm/list", json(), {{"Authorization", "Bearer from-env"}}).status, 200);
}

TEST(OperationsTest, ReloadUnderLoadLosesNoRequestAndRetiresOldInstances) {
  TempDir dir;
  const uint16_t port = FreePort();
  const std::string live = dir.File("versioned.wasm");
  fs::copy_file(kGuests + "/version1.wasm", live);
  Wasmlet server(dir, LayottoConfig(port, {{"v", Plugin("v", live, 2)}}), port);

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::set<std::string> bodies;
  std::mutex bodies_mutex;
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&] {
      Client client(port);
      while (!stop) {
        auto r = client.Send("GET", "/", {{"id", "versioned"}});
        if (r.status == 200 && (r.body == "version 1\n" || r.body == "version 2\n")) {
          ok++;
        } else {
          failed++;
        }
        std::lock_guard lock(bodies_mutex);
        bodies.insert(std::to_string(r.status) + " " + r.body);
      }
    });
  }
  const std::string reloads = "wasmlet_reloads_total{id=\"versioned\"}";
  auto reloaded = [&] { return ParseMetrics(Admin(server, "GET", "/metrics").body)[reloads]; };
  for (int i = 0; i < 20; ++i) {
    // Deployed as tools do it: written beside, then renamed over the old file.
    const std::string next = kGuests + (i % 2 == 0 ? "/version2.wasm" : "/version1.wasm");
    fs::copy_file(next, live + ".new", fs::copy_options::overwrite_existing);
    fs::rename(live + ".new", live);
    // The next replacement once this one is switched in: each is a reload of its own.
    if (!Eventually([&] { return reloaded() >= i + 1; })) {
      ADD_FAILURE() << "replacement " << i + 1 << " was not reloaded:\n" << server.process().Log();
      break;
    }
  }
  EXPECT_EQ(reloaded(), 20);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_GT(ok, 100);
  EXPECT_EQ(bodies, (std::set<std::string>{"200 version 1\n", "200 version 2\n"}));

  // The 20th replacement put version 1 back; the old instances are gone.
  EXPECT_EQ(Get(port, "/", {{"id", "versioned"}}).body, "version 1\n");
  auto list = Body(Admin(server, "GET", "/wasm/list"));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["instances"], 2);
  auto metrics = ParseMetrics(Admin(server, "GET", "/metrics").body);
  EXPECT_EQ(metrics["wasmlet_reloads_total{id=\"versioned\"}"], 20);
  EXPECT_EQ(metrics["wasmlet_instances_retiring{id=\"versioned\"}"], 0);
  EXPECT_EQ(metrics["wasmlet_instances{id=\"versioned\",state=\"busy\"}"] +
                metrics["wasmlet_instances{id=\"versioned\",state=\"idle\"}"],
            2);
}

TEST(OperationsTest, ABadNewVersionLeavesTheOldOneServingAndAFileThatAppearsLaterIsLoaded) {
  TempDir dir;
  const uint16_t port = FreePort();
  const std::string live = dir.File("versioned.wasm");
  const std::string later = dir.File("later.wasm");
  fs::copy_file(kGuests + "/version1.wasm", live);
  json plugins = {{"v", Plugin("v", live)}, {"later", Plugin("later", later)}};
  Wasmlet server(dir, LayottoConfig(port, plugins), port);
  EXPECT_EQ(Get(port, "/", {{"id", "versioned"}}).body, "version 1\n");
  EXPECT_EQ(Get(port, "/?whoami", {{"id", "id_test"}}).status, 404);

  std::ofstream(live + ".new") << "garbage";
  fs::rename(live + ".new", live);
  EXPECT_TRUE(Eventually([&] {
    return server.process().Log().find("the running version, if any, keeps serving") != std::string::npos;
  })) << server.process().Log();
  EXPECT_EQ(Get(port, "/", {{"id", "versioned"}}).body, "version 1\n");

  fs::copy_file(kGuests + "/layotto_function.wasm", later);  // the file arrives after the start
  EXPECT_TRUE(Eventually([&] { return Get(port, "/?whoami", {{"id", "id_test"}}).status == 200; }))
      << server.process().Log();
}

// The inotify watches a process holds: the "inotify wd:" lines of its inotify descriptors.
int InotifyWatches(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  int watches = 0;
  std::error_code ignored;
  for (const auto& fd : fs::directory_iterator(proc + "/fd", ignored)) {
    if (fs::read_symlink(fd.path(), ignored).string() != "anon_inode:inotify") continue;
    std::ifstream info(proc + "/fdinfo/" + fd.path().filename().string());
    for (std::string line; std::getline(info, line);) watches += line.rfind("inotify wd:", 0) == 0;
  }
  return watches;
}

// Two plugin items on one file both reload when it changes, the one left after an uninstall
// still does, and the folder's inotify watch goes with the last item watching there. The watcher
// kept one callback per path: only the item registered last reloaded, an uninstall of either
// stopped the reloads of both, and no watch was ever removed.
TEST(OperationsTest, TwoItemsOnOneFileBothReloadAndAnUninstallLeavesTheOtherReloading) {
  TempDir dir;
  const uint16_t port = FreePort();
  const std::string live = dir.File("versioned.wasm");
  fs::copy_file(kGuests + "/version1.wasm", live);
  Wasmlet server(dir, LayottoConfig(port, {{"a", Plugin("a", live)}, {"b", Plugin("b", live)}}), port);
  using Md5s = std::map<std::string, std::string>;  // plugin name -> MD5 of the module it runs
  auto of = [](const Md5s& m, const std::string& name) { return m.count(name) ? m.at(name) : ""; };
  auto md5s = [&] {
    Md5s by_name;
    for (const auto& f : Body(Admin(server, "GET", "/wasm/list"))) by_name[f["name"]] = f["md5"];
    return by_name;
  };
  // The MD5s once `done` holds of them, or as they are after 30 s.
  auto wait_for = [&](const std::function<bool(const Md5s&)>& done) {
    Md5s now = md5s();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done(now) && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      now = md5s();
    }
    return now;
  };
  // Deployed as tools do it: written beside, then renamed over the old file.
  auto deploy = [&](const std::string& guest) {
    fs::copy_file(kGuests + guest, live + ".new", fs::copy_options::overwrite_existing);
    fs::rename(live + ".new", live);
  };
  const Md5s started = md5s();
  ASSERT_EQ(started.size(), 2u);
  const std::string version1 = of(started, "a");
  ASSERT_EQ(of(started, "b"), version1);
  EXPECT_EQ(InotifyWatches(server.process().pid()), 1) << "one watch for the folder of both";

  deploy("/version2.wasm");
  Md5s reloaded = wait_for([&](const Md5s& m) { return of(m, "a") != version1 && of(m, "b") != version1; });
  EXPECT_NE(of(reloaded, "a"), version1) << server.process().Log();
  EXPECT_NE(of(reloaded, "b"), version1) << server.process().Log();

  ASSERT_EQ(Admin(server, "POST", "/wasm/uninstall", {{"plugin", "a"}}).status, 200);
  deploy("/version1.wasm");
  reloaded = wait_for([&](const Md5s& m) { return of(m, "b") == version1; });
  EXPECT_EQ(reloaded.size(), 1u);
  EXPECT_EQ(of(reloaded, "b"), version1) << "b reloads after a is uninstalled\n" << server.process().Log();
  EXPECT_EQ(InotifyWatches(server.process().pid()), 1);

  ASSERT_EQ(Admin(server, "POST", "/wasm/uninstall", {{"plugin", "b"}}).status, 200);
  EXPECT_EQ(InotifyWatches(server.process().pid()), 0) << "the last item of the folder took its watch";
}

// Serves one file over HTTP on a loopback port, in a thread of the test.
class FileServer {
 public:
  explicit FileServer(std::string bytes)
      : bytes_(std::move(bytes)), acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      while (true) {
        boost::asio::ip::tcp::socket socket(io_);
        boost::system::error_code ec;
        acceptor_.accept(socket, ec);
        if (ec || stopping_) return;
        boost::asio::streambuf request;
        boost::asio::read_until(socket, request, "\r\n\r\n", ec);
        std::string head((std::istreambuf_iterator<char>(&request)), std::istreambuf_iterator<char>());
        const bool found = head.rfind("GET /module.wasm ", 0) == 0;
        std::string response =
            found ? "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(bytes_.size()) +
                        "\r\nConnection: close\r\n\r\n" + bytes_
                  : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        boost::asio::write(socket, boost::asio::buffer(response), ec);
      }
    });
  }
  ~FileServer() {
    stopping_ = true;
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket poke(io_);
    poke.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  std::string bytes_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

TEST(OperationsTest, ModulesLoadFromAUrlWithTheirMd5Checked) {
  TempDir dir;
  std::ifstream in(kGuests + "/layotto_function.wasm", std::ios::binary);
  FileServer files(std::string(std::istreambuf_iterator<char>(in), {}));
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, {{"filter", Plugin("filter", kGuests + "/abi_filter.wasm")}}),
                 port);

  auto wrong = Admin(server, "POST", "/wasm/install",
                     {{"name", "remote"},
                      {"vm_config", {{"url", files.Url("/module.wasm")}, {"md5", std::string(32, 'a')}}}});
  EXPECT_EQ(wrong.status, 400) << wrong.body;
  EXPECT_NE(wrong.body.find("md5"), std::string::npos) << wrong.body;
  auto missing = Admin(server, "POST", "/wasm/install",
                       {{"name", "remote"}, {"vm_config", {{"url", files.Url("/nope.wasm")}}}});
  EXPECT_EQ(missing.status, 400) << missing.body;
  EXPECT_NE(missing.body.find("404"), std::string::npos) << missing.body;

  auto installed = Admin(server, "POST", "/wasm/install",
                         {{"name", "remote"}, {"vm_config", {{"url", files.Url("/module.wasm")}}}});
  ASSERT_EQ(installed.status, 200) << installed.body;
  EXPECT_EQ(Get(port, "/?whoami", {{"id", "id_test"}}).body, "whoami status=0 value=remote");
}

TEST(OperationsTest, CpuAndMemoryLimitsEndTheRequestAndKeepTheHostBounded) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"loop", Plugin("loop", kGuests + "/abi_filter.wasm", 1, {{"cpu", 200}})},
                  {"hog", Plugin("hog", kGuests + "/abi_filter.wasm", 1, {{"mem", 16}})},
                  {"calm", Plugin("calm", kGuests + "/abi_filter.wasm", 2)}};
  Wasmlet server(dir, LayottoConfig(port, plugins), port);

  // Another function is hit throughout and never fails.
  std::atomic<bool> stop{false};
  std::atomic<int> calm_failures{0}, calm_ok{0};
  std::thread bystander([&] {
    Client client(port);
    while (!stop) {
      auto r = client.Send("GET", "/", {{"id", "calm"}, {"x-op", "local"}});
      (r.status == 403 ? calm_ok : calm_failures)++;
    }
  });

  for (int i = 0; i < 3; ++i) {
    // Stopped by its 200 ms CPU budget (counted in deadline_kills below), which the answer names.
    auto r = Get(port, "/", {{"id", "loop"}, {"x-op", "spin"}});
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_NE(r.body.find("ran past its 200 ms limit and was stopped"), std::string::npos) << r.body;
    EXPECT_EQ(Get(port, "/", {{"id", "loop"}, {"x-op", "local"}}).status, 403);  // a fresh instance answers
  }
  const size_t rss_before = RssKiB(server.process().pid());
  for (int i = 0; i < 20; ++i) {
    auto r = Get(port, "/", {{"id", "hog"}, {"x-op", "hog"}});
    EXPECT_EQ(r.status, 500);
    EXPECT_NE(r.body.find("memory limit"), std::string::npos) << r.body;
  }
  const size_t rss_after = RssKiB(server.process().pid());
  // 20 instances filled 16 MiB each; they were freed, so the process grew by far less.
  if (kRssIsMeaningful) {
    EXPECT_LT(rss_after, rss_before + 100 * 1024) << rss_before << " KiB -> " << rss_after << " KiB";
  }
  EXPECT_EQ(Get(port, "/", {{"id", "hog"}, {"x-op", "local"}}).status, 403);
  auto trapped = Get(port, "/", {{"id", "calm"}, {"x-op", "trap"}});
  EXPECT_EQ(trapped.status, 500);

  stop = true;
  bystander.join();
  EXPECT_EQ(calm_failures, 0);
  EXPECT_GT(calm_ok, 10);
  auto metrics = ParseMetrics(Admin(server, "GET", "/metrics").body);
  EXPECT_EQ(metrics["wasmlet_deadline_kills_total{id=\"loop\"}"], 3);
  EXPECT_EQ(metrics["wasmlet_traps_total{id=\"hog\"}"], 20);
  EXPECT_EQ(metrics["wasmlet_traps_total{id=\"calm\"}"], 1);
}

TEST(OperationsTest, AFunctionThatKeepsFailingToStartIsBackedOff) {
  TempDir dir;
  const uint16_t port = FreePort();
  json fragile = Plugin("fragile", kGuests + "/abi_filter.wasm");
  fragile["configuration"] = "fragile";  // only its first instance starts
  Wasmlet server(
      dir, LayottoConfig(port, {{"fragile", fragile}}, json::object(), {{"queue_timeout_ms", 100}}), port);
  const auto trapped = std::chrono::steady_clock::now();
  EXPECT_EQ(Get(port, "/", {{"id", "fragile"}, {"x-op", "trap"}}).status, 500);
  // Its replacement cannot start: the slot is retried after 100, 200, 400 ms..., not in a loop.
  const std::string counted = "wasmlet_start_failures_total{id=\"fragile\"}";
  auto failures = [&] { return ParseMetrics(Admin(server, "GET", "/metrics").body)[counted]; };
  ASSERT_TRUE(Eventually([&] { return failures() >= 3; })) << server.process().Log();
  // The third attempt waited for the first two back-offs, however fast the machine.
  EXPECT_GE(std::chrono::steady_clock::now() - trapped, std::chrono::milliseconds(300));
  const std::string log = server.process().Log();
  size_t at = 0;
  for (const char* wait : {"retrying in 100 ms", "retrying in 200 ms", "retrying in 400 ms"}) {
    at = log.find(wait, at);
    ASSERT_NE(at, std::string::npos) << "no '" << wait << "' after the ones before it:\n" << log;
  }
  auto unavailable = Get(port, "/", {{"id", "fragile"}, {"x-op", "local"}});
  EXPECT_EQ(unavailable.status, 503) << unavailable.body;
}

TEST(OperationsTest, TicksReachIdleInstances) {
  TempDir dir;
  const uint16_t port = FreePort();
  json ticking = Plugin("ticking", kGuests + "/abi_filter.wasm");
  ticking["configuration"] = "tick=50";  // the plugin asks for proxy_on_tick every 50 ms
  Wasmlet server(dir, LayottoConfig(port, {{"ticking", ticking}}), port);
  // Ticks start with the instance, before the port accepts: count the ones of a known window.
  auto ticks_now = [&] {
    auto body = Get(port, "/", {{"id", "ticking"}, {"x-op", "counters"}}).body;
    const auto at = body.find("ticks=");
    EXPECT_NE(at, std::string::npos) << body;
    return at == std::string::npos ? 0 : std::stoi(body.substr(at + 6));
  };
  const int before = ticks_now();
  // A measurement window, not a wait: the ticks of 600 ms are counted.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const int ticks = ticks_now() - before;
  EXPECT_GE(ticks, 5);   // about 12 in 600 ms; a busy machine may lose a few
  EXPECT_LE(ticks, 14);  // and never a burst
}

TEST(OperationsTest, QueueNotificationsReachAnotherIdleInstance) {
  TempDir dir;
  const uint16_t port = FreePort();
  json consumer = Plugin("consumer", kGuests + "/abi_filter.wasm");
  json producer = Plugin("producer", kGuests + "/abi_filter.wasm");
  consumer["vm_id"] = "shared";  // same VM id: they share queues
  producer["vm_id"] = "shared";
  Wasmlet server(dir, LayottoConfig(port, {{"consumer", consumer}, {"producer", producer}}), port);
  EXPECT_NE(Get(port, "/", {{"id", "consumer"}, {"x-op", "subscribe"}}).body.find("subscribed=yes"),
            std::string::npos);
  EXPECT_NE(Get(port, "/", {{"id", "producer"}, {"x-op", "publish"}}).body.find("published=yes"),
            std::string::npos);
  std::string counters;  // looked at until the notification has come
  EXPECT_TRUE(Eventually([&] {
    counters = Get(port, "/", {{"id", "consumer"}, {"x-op", "counters"}}).body;
    return counters.find("queue_notifications=1\n") != std::string::npos;
  })) << counters;
  EXPECT_NE(counters.find("last_queue_item=from the publisher\n"), std::string::npos) << counters;
}

// The code cache across restarts of the real binary: the first start compiles and writes an
// entry per module once V8 has optimised it; the next start loads both and compiles nothing.
TEST(OperationsTest, ASecondStartLoadsItsModulesFromTheCodeCache) {
  TempDir dir;
  const uint16_t port = FreePort();
  const json plugins = {{"f", Plugin("f", kGuests + "/abi_filter.wasm")},
                        {"s", Plugin("s", kGuests + "/state_function.wasm")}};
  const json config = LayottoConfig(port, plugins, json::object(), {{"code_cache_dir", dir.File("code")}});
  auto cache = [](Wasmlet& server, const std::string& result) {
    return ParseMetrics(Admin(server, "GET", "/metrics").body)["wasmlet_code_cache_modules{result=\"" + result +
                                                               "\"}"];
  };
  {
    Wasmlet first(dir, config, port);
    EXPECT_EQ(cache(first, "miss"), 2);
    EXPECT_EQ(cache(first, "hit"), 0);
    EXPECT_TRUE(Eventually([&] { return cache(first, "written") == 2; })) << first.process().Log();
    EXPECT_EQ(first.process().Stop(), 0);
  }
  size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.File("code"))) ++entries;
  EXPECT_EQ(entries, 2u);

  Wasmlet second(dir, config, port, true, {"--log-level", "debug"});
  EXPECT_EQ(cache(second, "hit"), 2);
  EXPECT_EQ(cache(second, "miss"), 0);
  EXPECT_EQ(cache(second, "invalid"), 0);
  EXPECT_EQ(Get(port, "/", {{"id", "f"}, {"x-op", "echo"}}, "cached", "POST").body, "echo=cached\n");
  EXPECT_NE(second.process().Log().find("loaded from the code cache"), std::string::npos);
  // Set off, the cache is not even looked at.
  EXPECT_EQ(second.process().Stop(), 0);
  json off = config;
  off["wasmlet"]["code_cache"] = false;
  Wasmlet third(dir, off, port);
  EXPECT_EQ(cache(third, "hit"), 0);
  EXPECT_EQ(cache(third, "miss"), 0);
  EXPECT_EQ(Get(port, "/", {{"id", "f"}, {"x-op", "echo"}}, "compiled", "POST").body, "echo=compiled\n");
}

TEST(OperationsTest, MetricsParseAndCountWhatWasSent) {
  TempDir dir;
  const uint16_t port = FreePort();
  Wasmlet server(dir, LayottoConfig(port, {{"f", Plugin("f", kGuests + "/abi_filter.wasm")}}), port);
  for (int i = 0; i < 7; ++i) Get(port, "/", {{"id", "f"}, {"x-op", "local"}});              // 403
  for (int i = 0; i < 5; ++i) Get(port, "/", {{"id", "f"}, {"x-op", "echo"}}, "x", "POST");  // 200
  for (int i = 0; i < 2; ++i) Get(port, "/", {{"id", "f"}, {"x-op", "trap"}});               // 500
  for (int i = 0; i < 3; ++i) Get(port, "/", {{"id", "nobody"}});                            // 404
  Get(port, "/");                                                                            // 400
  auto response = Admin(server, "GET", "/metrics");
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.headers["content-type"], "text/plain; version=0.0.4");
  auto m = ParseMetrics(response.body);
  EXPECT_EQ(m["wasmlet_requests_total{id=\"f\",status=\"403\"}"], 7);
  EXPECT_EQ(m["wasmlet_requests_total{id=\"f\",status=\"200\"}"], 5);
  EXPECT_EQ(m["wasmlet_requests_total{id=\"f\",status=\"500\"}"], 2);
  // Ids that name no function share one label: a client cannot make a series per header.
  EXPECT_EQ(m["wasmlet_requests_total{id=\"(unknown)\",status=\"404\"}"], 3);
  EXPECT_EQ(m.count("wasmlet_requests_total{id=\"nobody\",status=\"404\"}"), 0u);
  // Bucket bounds as Prometheus prints them (shortest form), not 0.00050000000000000001.
  EXPECT_EQ(m.count("wasmlet_request_duration_seconds_bucket{id=\"f\",le=\"0.0005\"}"), 1u) << response.body;
  EXPECT_EQ(m.count("wasmlet_request_duration_seconds_bucket{id=\"f\",le=\"2.5\"}"), 1u);
  EXPECT_EQ(m["wasmlet_requests_total{id=\"\",status=\"400\"}"], 1);
  EXPECT_EQ(m["wasmlet_request_duration_seconds_count{id=\"f\"}"], 14);
  EXPECT_EQ(m["wasmlet_request_duration_seconds_bucket{id=\"f\",le=\"+Inf\"}"], 14);
  EXPECT_EQ(m["wasmlet_traps_total{id=\"f\"}"], 2);
  // The slot is marked idle just after the answer leaves: count both states.
  EXPECT_EQ(m["wasmlet_instances{id=\"f\",state=\"idle\"}"] + m["wasmlet_instances{id=\"f\",state=\"busy\"}"],
            1);
  auto list = Body(Admin(server, "GET", "/wasm/list"));
  EXPECT_EQ(list[0]["requests"], 14);
  EXPECT_EQ(list[0]["errors"], 2);
}

}  // namespace
}  // namespace wasmlet::testing
