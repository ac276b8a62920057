// wasmlet ls / install / update / uninstall / top, run as an operator runs them against a
// running server (its admin API over loopback).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <tuple>

#include "e2e/harness.h"
#include "test_support.h"

namespace wasmlet::testing {
namespace {

const std::string kGuests = WASMLET_TEST_GUESTS;

// The admin flag for `server`.
std::string AdminFlag(const Wasmlet& server) {
  return " --admin 127.0.0.1:" + std::to_string(server.admin_port());
}

// The row of `table` (text of `wasmlet ls` or one frame of `top`) whose first column is `id`.
std::vector<std::string> Row(const std::string& table, const std::string& id) {
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream cells(line);
    std::vector<std::string> row;
    for (std::string cell; cells >> cell;) row.push_back(cell);
    if (!row.empty() && row[0] == id) return row;
  }
  return {};
}

TEST(AdminCliTest, InstallListUpdateTopAndUninstallARunningServersFunctions) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"function2", Plugin("function2", std::string(WASMLET_EXAMPLES) + "/function2.wasm", 1)}};
  Wasmlet server(dir, LayottoConfig(port, plugins), port);
  const std::string admin = AdminFlag(server);

  auto [ls_code, ls] = RunWasmlet("ls" + admin);
  EXPECT_EQ(ls_code, 0) << ls;
  EXPECT_EQ(ls.rfind("ID ", 0), 0u) << ls;
  EXPECT_EQ(Row(ls, "id_2").size(), 11u) << ls;  // MEMORY MiB is "used / limit": 3 words

  // abi_filter reports no id of its own: the name given with --id is its route id.
  auto [install_code, installed] = RunWasmlet(
      "install " + kGuests + "/abi_filter.wasm --id filter1 --instances 2 --cpu 200 --mem 32" + admin);
  ASSERT_EQ(install_code, 0) << installed;
  EXPECT_NE(installed.find("as id filter1"), std::string::npos) << installed;
  EXPECT_EQ(Get(port, "/", {{"id", "filter1"}}).status, 200);
  auto row = Row(RunWasmlet("ls" + admin).second, "filter1");
  ASSERT_EQ(row.size(), 11u);
  EXPECT_EQ(row[2], "2");     // instances
  EXPECT_EQ(row[5], "1");     // requests
  EXPECT_EQ(row[9], "64.0");  // 2 instances of 32 MiB

  // The config path gives the admin address as well as the flag does.
  auto [update_code, updated] = RunWasmlet("update filter1 --instances 3 -c " + server.config_path());
  EXPECT_EQ(update_code, 0) << updated;
  EXPECT_EQ(Row(RunWasmlet("ls" + admin).second, "filter1").at(2), "3");

  // Two frames of top while traffic flows: the second shows a request rate.
  std::atomic<bool> stop{false};
  std::thread traffic([&] {
    while (!stop) Get(port, "/", {{"id", "filter1"}});
  });
  auto [top_code, top] = RunWasmlet("top -n 2 --interval 0.5" + admin);
  stop = true;
  traffic.join();
  EXPECT_EQ(top_code, 0) << top;
  const size_t second = top.find("wasmlet top:", 1);
  ASSERT_NE(second, std::string::npos) << top;
  EXPECT_EQ(Row(top.substr(0, second), "filter1").at(2), "-") << top;  // no rate before two samples
  const auto frame = Row(top.substr(second), "filter1");
  ASSERT_GE(frame.size(), 3u) << top;
  EXPECT_GT(std::stod(frame[2]), 0.0) << top;

  auto [uninstall_code, uninstalled] = RunWasmlet("uninstall filter1" + admin);
  EXPECT_EQ(uninstall_code, 0) << uninstalled;
  EXPECT_TRUE(Row(RunWasmlet("ls" + admin).second, "filter1").empty());
  EXPECT_EQ(Get(port, "/", {{"id", "filter1"}}).status, 404);

  // Errors: one line, exit code 1.
  auto [gone_code, gone] = RunWasmlet("uninstall filter1" + admin);
  EXPECT_EQ(gone_code, 1);
  EXPECT_EQ(gone, "wasmlet: error: no function is registered under id 'filter1'\n");
  auto [bad_code, bad] = RunWasmlet("install " + dir.File("missing.wasm") + " --id x" + admin);
  EXPECT_EQ(bad_code, 1);
  EXPECT_NE(bad.find("missing.wasm: cannot open the file"), std::string::npos) << bad;
  auto [down_code, down] = RunWasmlet("ls --admin 127.0.0.1:" + std::to_string(FreePort()));
  EXPECT_EQ(down_code, 1);
  EXPECT_NE(down.find("cannot reach the admin API"), std::string::npos) << down;
  EXPECT_EQ(std::count(down.begin(), down.end(), '\n'), 1) << down;
}

TEST(AdminCliTest, TheTokenComesFromTheEnvironment) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"function2", Plugin("function2", std::string(WASMLET_EXAMPLES) + "/function2.wasm", 1)}};
  Wasmlet server(dir, LayottoConfig(port, plugins, json::object(), {{"admin_token", "s3cret"}}), port);
  auto [refused_code, refused] = RunWasmlet("ls" + AdminFlag(server));
  EXPECT_EQ(refused_code, 1);
  EXPECT_NE(refused.find("set WASMLET_ADMIN_TOKEN"), std::string::npos) << refused;
  auto [code, out] =
      RunShell("WASMLET_ADMIN_TOKEN=s3cret " + std::string(WASMLET_BINARY) + " ls" + AdminFlag(server));
  EXPECT_EQ(code, 0) << out;
  EXPECT_FALSE(Row(out, "id_2").empty()) << out;
}

// What a new guest developer does: `wasmlet new`, the two CMake commands its README gives,
// then install the module into a running server and call it.
TEST(AdminCliTest, ANewFunctionBuildsOutsideTheRepositoryAndAnswersOnceInstalled) {
  TempDir dir;
  const uint16_t port = FreePort();
  json plugins = {{"function2", Plugin("function2", std::string(WASMLET_EXAMPLES) + "/function2.wasm", 1)}};
  Wasmlet server(dir, LayottoConfig(port, plugins), port);
  const std::string in_dir = "cd " + dir.File("") + " && ";
  for (const std::string lang : {"cpp", "c"}) {
    const std::string name = "greet_" + lang;
    auto [code, out] = RunShell(in_dir + WASMLET_BINARY + " new " + name + " --lang " + lang);
    ASSERT_EQ(code, 0) << out;
    std::tie(code, out) =
        RunShell(in_dir + "cmake -S " + name + " -B " + name + "/build && cmake --build " + name + "/build");
    ASSERT_EQ(code, 0) << out;
    const std::string module = dir.File(name + "/build/" + name + ".wasm");
    ASSERT_TRUE(std::filesystem::exists(module)) << out;  // NAME.wasm, not NAME
    // A release build: no debug sections, no name section.
    const auto bytes = ReadBytes(module);
    const std::string text(bytes.begin(), bytes.end());
    EXPECT_EQ(text.find(".debug_info"), std::string::npos) << name;
    EXPECT_LT(bytes.size(), 100u * 1024) << name;
    std::tie(code, out) = RunWasmlet("install " + module + " --id " + name + AdminFlag(server));
    ASSERT_EQ(code, 0) << out;
    EXPECT_EQ(Get(port, "/?name=you", {{"id", name}}).body,
              lang == "cpp" ? "hello, you\n" : "hello, world\n");
  }
  auto [again, out] = RunShell(in_dir + WASMLET_BINARY + " new greet_c");
  EXPECT_EQ(again, 1);
  EXPECT_EQ(out, "wasmlet: error: greet_c exists already: choose another name, or remove it\n");
}

}  // namespace
}  // namespace wasmlet::testing
