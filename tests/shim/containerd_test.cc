// FaaS mode end to end: Debian's real containerd (private root, state and socket) runs the
// quickstart's two functions as tasks of runtime io.containerd.wasmlet.v2, from images made by
// `wasmlet pack` and imported with `ctr image import`; the shim starts the node's wasmlet
// daemon, and the functions answer over HTTP on loopback. Needs root (containerd mounts).
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>

#include "e2e/harness.h"

namespace wasmlet::testing {
namespace {

const std::string kExamples = WASMLET_EXAMPLES;
const std::string kShimDir = fs::path(WASMLET_SHIM_BINARY).parent_path().string();
constexpr const char* kRuntime = "io.containerd.wasmlet.v2";

// Lines of /proc/self/mountinfo whose mount point lies under `dir`.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<std::string> found;
  for (std::string line; std::getline(in, line);)
    if (line.find(" " + dir + "/") != std::string::npos) found.push_back(line);
  return found;
}

// Shim processes serving this test's containerd (their command line names its socket).
std::vector<pid_t> ShimProcesses(const std::string& containerd_socket) {
  std::vector<pid_t> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (!std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find("containerd-shim-wasmlet-v2") != std::string::npos &&
        cmdline.find(containerd_socket) != std::string::npos)
      found.push_back(std::stoi(name));
  }
  return found;
}

class ContainerdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(geteuid(), 0u) << "this test runs containerd, which mounts: run it as root (as CI does)";
    ASSERT_EQ(RunShell("command -v containerd ctr").first, 0)
        << "containerd and ctr are missing: run scripts/setup.sh";
    dir_ = new TempDir();
    const std::string d = dir_->path().string();
    socket_ = d + "/containerd.sock";
    function_port_ = FreePort();
    admin_port_ = FreePort();

    // The node's daemon: no functions of its own, the quickstart's state store.
    json stores = {{"state_demo", {{"type", "embedded"}, {"metadata", {{"path", d + "/state.db"}}}}}};
    json node = LayottoConfig(function_port_, json::object(), stores,
                              {{"admin_address", "127.0.0.1:" + std::to_string(admin_port_)}});
    std::ofstream(d + "/node.json") << node.dump(2);
    SeedState(*dir_, node, "state_demo", "book1", "100");
    std::ofstream(d + "/shim.json") << json{
        {"admin_address", "127.0.0.1:" + std::to_string(admin_port_)},
        {"wasmlet_binary", WASMLET_BINARY},
        {"daemon_config", d + "/node.json"},
        {"daemon_log", d + "/wasmlet.log"},
        {"state_dir", d + "/run"},
        {"check_interval_ms", 200}}.dump(2);
    std::ofstream(d + "/containerd.toml") << "version = 2\n"
                                          << "root = \"" << d << "/root\"\n"
                                          << "state = \"" << d << "/state\"\n"
                                          << "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
                                          << "[grpc]\n  address = \"" << socket_ << "\"\n";
    // containerd finds the shim on its PATH and passes its environment on to it.
    setenv("PATH", (kShimDir + ":" + std::getenv("PATH")).c_str(), 1);
    setenv("WASMLET_SHIM_CONFIG", (d + "/shim.json").c_str(), 1);
    containerd_ = new Process({"containerd", "--config", d + "/containerd.toml"}, d + "/containerd.log");
    for (int i = 0; i < 500 && Ctr("version").first != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(Ctr("version").first, 0) << "containerd did not start:\n" << containerd_->Log();

    // The images: the two quickstart functions, and a corrupt module packed without checks.
    std::ofstream(d + "/corrupt.wasm") << std::string("\0asm\1\0\0\0\x01\x7f garbage", 16);
    for (const auto& [file, name, flags] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {kExamples + "/function1.wasm", "function1", ""},
             {kExamples + "/function2.wasm", "function2", ""},
             {d + "/corrupt.wasm", "corrupt", "--no-verify"},
             // A module that reads, but refuses to start (on_configure says no).
             {std::string(WASMLET_TEST_GUESTS) + "/abi_filter.wasm", "rejecting",
              "-e WASMLET_CONFIGURATION=reject"}}) {
      auto [code, out] =
          RunWasmlet("pack " + file + " -t wasmlet.test/" + name + " -o " + d + "/" + name + ".tar " + flags);
      ASSERT_EQ(code, 0) << out;
      auto imported = Ctr("image import " + d + "/" + name + ".tar");
      ASSERT_EQ(imported.first, 0) << imported.second;
    }
  }

  static void TearDownTestSuite() {
    if (!dir_) return;
    // Whatever a failed test left: tasks, containers, the daemon, containerd.
    for (const char* id : {"fn1", "fn2", "bad1", "bad2", "bad3", "fg", "sandbox"}) {
      Ctr(std::string("task rm -f ") + id);
      Ctr(std::string("container rm ") + id);
    }
    std::ifstream pid_file(dir_->path() / "run" / "wasmlet.pid");
    if (pid_t pid = 0; pid_file >> pid) kill(pid, SIGTERM);
    delete containerd_;
    for (const std::string& line : MountsUnder(dir_->path().string())) {
      std::istringstream fields(line);
      std::string skip, target;
      fields >> skip >> skip >> skip >> skip >> target;
      umount2(target.c_str(), MNT_DETACH);
    }
    delete dir_;
  }

  static std::pair<int, std::string> Ctr(const std::string& args) {
    return RunShell("ctr --address " + socket_ + " -n wasmlet-test " + args);
  }
  static std::pair<int, std::string> Run(const std::string& image, const std::string& id,
                                         const std::string& args = "") {
    return Ctr(std::string("run -d --runtime ") + kRuntime + " wasmlet.test/" + image + ":latest " + id +
               " " + args);
  }
  // Kill, delete the task, remove the container: as a user takes a function down.
  static void Remove(const std::string& id) {
    auto killed = Ctr("task kill " + id);
    EXPECT_EQ(killed.first, 0) << killed.second;
    auto deleted = Ctr("task rm " + id);
    EXPECT_EQ(deleted.first, 0) << deleted.second;
    auto removed = Ctr("container rm " + id);
    EXPECT_EQ(removed.first, 0) << removed.second;
  }
  static Response Quickstart() { return Get(function_port_, "/?name=book1", {{"id", "id_1"}}); }
  // Waits (bounded) until no shim of this containerd is left.
  static std::vector<pid_t> ShimsLeft() {
    for (int i = 0; i < 250 && !ShimProcesses(socket_).empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return ShimProcesses(socket_);
  }

  static inline TempDir* dir_ = nullptr;
  static inline Process* containerd_ = nullptr;
  static inline std::string socket_;
  static inline uint16_t function_port_ = 0;
  static inline uint16_t admin_port_ = 0;
};

TEST_F(ContainerdTest, RunsTheQuickstartAsTwoTasksAndLeavesNothingBehind) {
  auto fn2 = Run("function2", "fn2");
  ASSERT_EQ(fn2.first, 0) << fn2.second << "\n" << containerd_->Log();
  auto fn1 = Run("function1", "fn1");
  ASSERT_EQ(fn1.first, 0) << fn1.second;

  Response answer = Quickstart();
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.body, "There are 100 inventories for book1.");
  auto tasks = Ctr("task ls");
  EXPECT_NE(tasks.second.find("fn1"), std::string::npos) << tasks.second;
  EXPECT_EQ(std::count(tasks.second.begin(), tasks.second.end(), '\n'), 3) << tasks.second;
  EXPECT_EQ(tasks.second.find("STOPPED"), std::string::npos) << tasks.second;
  EXPECT_EQ(ShimProcesses(socket_).size(), 2u);
  EXPECT_EQ(MountsUnder(dir_->path().string()).size(), 2u) << "one rootfs per task";

  Remove("fn2");
  EXPECT_EQ(Get(function_port_, "/", {{"id", "id_2"}}, "book1", "POST").status, 404);
  EXPECT_NE(Quickstart().status, 200) << "function 1 cannot reach function 2 any more";
  EXPECT_EQ(Ctr("task ls").second.find("fn2"), std::string::npos);

  Remove("fn1");
  EXPECT_EQ(Quickstart().status, 404);
  EXPECT_TRUE(ShimsLeft().empty()) << "shim processes are left";
  EXPECT_TRUE(MountsUnder(dir_->path().string()).empty()) << MountsUnder(dir_->path().string()).front();
  EXPECT_TRUE(fs::is_empty(dir_->path() / "run" / "s")) << "shim sockets are left";
}

TEST_F(ContainerdTest, BadImagesFailCtrRunClearlyAndTheOthersKeepServing) {
  ASSERT_EQ(Run("function2", "fn2").first, 0);
  ASSERT_EQ(Run("function1", "fn1").first, 0);
  ASSERT_EQ(Quickstart().status, 200);

  // The command names a file the image does not have.
  auto missing = Run("function2", "bad1", "/nothing.wasm");
  EXPECT_NE(missing.first, 0) << missing.second;
  EXPECT_NE(missing.second.find("the image has no file /nothing.wasm (args[0])"), std::string::npos)
      << missing.second;
  // The image's module is not wasm that reads.
  auto corrupt = Run("corrupt", "bad2");
  EXPECT_NE(corrupt.first, 0) << corrupt.second;
  EXPECT_NE(corrupt.second.find("/corrupt.wasm (args[0]) in the image is not a usable WebAssembly module"),
            std::string::npos)
      << corrupt.second;

  // The module reads but fails to start in the daemon: Start fails with the daemon's reason.
  auto rejected = Run("rejecting", "bad3");
  EXPECT_NE(rejected.first, 0) << rejected.second;
  EXPECT_NE(rejected.second.find("the wasmlet daemon refused the function"), std::string::npos)
      << rejected.second;
  EXPECT_NE(Ctr("task ls").second.find("STOPPED"), std::string::npos) << "the task ended";

  Response answer = Quickstart();
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.body, "There are 100 inventories for book1.");

  Ctr("task rm bad3");
  for (const char* id : {"bad1", "bad2", "bad3"}) EXPECT_EQ(Ctr(std::string("container rm ") + id).first, 0);
  Remove("fn1");
  Remove("fn2");
  EXPECT_TRUE(ShimsLeft().empty()) << "shim processes are left";
  EXPECT_TRUE(MountsUnder(dir_->path().string()).empty());
}

TEST_F(ContainerdTest, CtrRunInTheForegroundShowsWhereTheFunctionServesAndEndsOnKill) {
  const std::string log = dir_->File("foreground.log");
  Process run({"ctr", "--address", socket_, "-n", "wasmlet-test", "run", "--rm", "--runtime", kRuntime,
               "wasmlet.test/function2:latest", "fg"},
              log);
  const std::string serving = "wasmlet: function fg serves requests with header 'id: id_2'";
  for (int i = 0; i < 250 && run.Log().find(serving) == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_NE(run.Log().find(serving), std::string::npos) << run.Log();
  EXPECT_EQ(Get(function_port_, "/", {{"id", "id_2"}}, "book1", "POST").body, "100");
  auto killed = Ctr("task kill fg");
  EXPECT_EQ(killed.first, 0) << killed.second;
  for (int i = 0; i < 250 && !run.Exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(run.WaitExit(), 0) << "SIGTERM ends a function cleanly:\n" << run.Log();
  EXPECT_NE(run.Log().find("wasmlet: function fg stopped, exit status 0"), std::string::npos) << run.Log();
  EXPECT_EQ(Ctr("container ls").second.find("fg"), std::string::npos) << "--rm removed the container";
  EXPECT_EQ(Get(function_port_, "/", {{"id", "id_2"}}, "book1", "POST").status, 404);
  EXPECT_TRUE(ShimsLeft().empty());
}

TEST_F(ContainerdTest, AnnotationsAndEnvironmentSetTheFunctionAndASandboxRunsNone) {
  // ctr's own flags go before the image.
  auto tuned =
      Ctr(std::string("run -d --runtime ") + kRuntime +
          " --annotation io.wasmlet.instance_num=3 --env WASMLET_MEM=32 wasmlet.test/function2:latest fn2");
  ASSERT_EQ(tuned.first, 0) << tuned.second;
  auto list = Get(admin_port_, "/wasm/list");
  ASSERT_EQ(list.status, 200);
  json entry;
  for (const json& e : json::parse(list.body))
    if (e["name"] == "fn2") entry = e;
  EXPECT_EQ(entry.value("instances", 0), 3) << list.body;
  EXPECT_EQ(entry.value("id", ""), "id_2");
  auto metrics = Ctr("task metrics fn2");
  // `ctr task metrics` prints a table: "NAME   VALUE" rows.
  auto metric = [&](const std::string& name) {
    std::istringstream rows(metrics.second);
    for (std::string row; std::getline(rows, row);) {
      std::istringstream fields(row);
      std::string key, value;
      if (fields >> key >> value && key == name) return value;
    }
    return std::string("(missing)");
  };
  EXPECT_EQ(metric("pids.current"), "3") << metrics.second;
  // 32 MiB of linear memory at most for each of 3 instances; they use some of it.
  EXPECT_EQ(metric("memory.limit_in_bytes"), std::to_string(3 * (32 << 20))) << metrics.second;
  EXPECT_NE(metric("memory.usage_in_bytes"), "0") << metrics.second;
  EXPECT_EQ(entry.value("memory_limit_bytes", 0), 3 * (32 << 20));
  EXPECT_GT(entry.value("memory_bytes", 0), 0);

  auto bad = Ctr(std::string("run -d --runtime ") + kRuntime +
                 " --env WASMLET_INSTANCE_NUM=lots wasmlet.test/function2:latest bad1");
  EXPECT_NE(bad.first, 0);
  EXPECT_NE(bad.second.find("setting instance_num"), std::string::npos) << bad.second;
  EXPECT_NE(bad.second.find("'lots'"), std::string::npos) << bad.second;
  EXPECT_EQ(Ctr("container rm bad1").first, 0);

  // A pod's sandbox (the pause container under Kubernetes) runs, and installs nothing.
  auto sandbox =
      Ctr(std::string("run -d --runtime ") + kRuntime +
          " --annotation io.kubernetes.cri.container-type=sandbox wasmlet.test/corrupt:latest sandbox");
  ASSERT_EQ(sandbox.first, 0) << sandbox.second;
  EXPECT_NE(Ctr("task ls").second.find("RUNNING"), std::string::npos);
  EXPECT_EQ(json::parse(Get(admin_port_, "/wasm/list").body).size(), 1u) << "only fn2";
  Remove("sandbox");
  Remove("fn2");
  EXPECT_TRUE(ShimsLeft().empty());
}

TEST_F(ContainerdTest, WhenTheDaemonDiesTheShimsBringItAndTheirFunctionsBack) {
  ASSERT_EQ(Run("function2", "fn2").first, 0);
  ASSERT_EQ(Run("function1", "fn1").first, 0);
  ASSERT_EQ(Quickstart().status, 200);
  pid_t daemon = 0;
  std::ifstream(dir_->path() / "run" / "wasmlet.pid") >> daemon;
  ASSERT_GT(daemon, 0);
  kill(daemon, SIGKILL);
  // Each shim checks every 200 ms: one starts the daemon again, each installs its function.
  Response answer;
  for (int i = 0; i < 500; ++i) {
    try {
      answer = Quickstart();
    } catch (const std::exception&) {
      answer = Response{};  // nothing listens for a moment
    }
    if (answer.status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "There are 100 inventories for book1.");
  pid_t again = 0;
  std::ifstream(dir_->path() / "run" / "wasmlet.pid") >> again;
  EXPECT_NE(again, daemon) << "a new daemon";
  Remove("fn1");
  Remove("fn2");
  EXPECT_TRUE(ShimsLeft().empty());
}

TEST_F(ContainerdTest, AShimThatDiesIsCleanedUpByDeleteAndItsFunctionGoes) {
  ASSERT_EQ(Run("function2", "fn2").first, 0);
  ASSERT_EQ(Get(function_port_, "/", {{"id", "id_2"}}, "book1", "POST").body, "100");
  const auto shims = ShimProcesses(socket_);
  ASSERT_EQ(shims.size(), 1u);
  kill(shims.front(), SIGKILL);
  // containerd sees the connection drop and runs the shim's `delete`.
  int status = 0;
  for (int i = 0;
       i < 250 && (status = Get(function_port_, "/", {{"id", "id_2"}}, "book1", "POST").status) != 404; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(status, 404) << "the dead shim's function was uninstalled";
  for (int i = 0; i < 250 && !MountsUnder(dir_->path().string()).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(MountsUnder(dir_->path().string()).empty()) << "its rootfs was unmounted";
  Ctr("task rm fn2");
  EXPECT_EQ(Ctr("container rm fn2").first, 0);
  EXPECT_TRUE(fs::is_empty(dir_->path() / "run" / "s")) << "its socket was removed";
}

}  // namespace
}  // namespace wasmlet::testing
