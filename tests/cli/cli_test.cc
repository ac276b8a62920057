// The wasmlet binary, run as a user runs it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "e2e/harness.h"
#include "test_support.h"

namespace {

struct Run {
  int exit_code;
  std::string out;  // stdout and stderr together
};

Run Wasmlet(const std::string& args) {
  auto [code, out] = wasmlet::testing::RunWasmlet(args);
  return {code, out};
}

std::string TempFile(const std::string& name, const std::vector<uint8_t>& bytes) {
  auto path =
      std::filesystem::temp_directory_path() / ("wasmlet_cli_test_" + std::to_string(getpid()) + "_" + name);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return path.string();
}

size_t Lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

TEST(CliTest, InspectShowsAbiImportsExportsAndMemory) {
  auto run = Wasmlet(std::string("inspect ") + WASMLET_EXAMPLES + "/hello.wasm");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("proxy-wasm ABI: 0.2.1"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("env.proxy_log  func (i32, i32, i32) -> i32"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("proxy_on_vm_start  func (i32, i32) -> i32"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("memory:         2 pages"), std::string::npos) << run.out;
}

TEST(CliTest, InspectJsonIsMachineReadable) {
  auto run = Wasmlet(std::string("inspect --json --compile ") + WASMLET_EXAMPLES + "/hello.wasm");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("\"proxy_wasm_abi\": \"0.2.1\""), std::string::npos) << run.out;
}

TEST(CliTest, InspectOfSomethingThatIsNotWasmIsOneErrorLine) {
  const std::string text = "this is a text file, not a module\n";
  auto path = TempFile("text.wasm", std::vector<uint8_t>(text.begin(), text.end()));
  auto run = Wasmlet("inspect " + path);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(Lines(run.out), 1u) << run.out;
  EXPECT_EQ(run.out.rfind("wasmlet: error: " + path + ": not a WebAssembly module", 0), 0u) << run.out;
  std::filesystem::remove(path);
}

TEST(CliTest, InspectOfATruncatedModuleIsOneErrorLine) {
  auto bytes = wasmlet::testing::ReadBytes(std::string(WASMLET_EXAMPLES) + "/hello.wasm");
  bytes.resize(bytes.size() / 2);
  auto path = TempFile("truncated.wasm", bytes);
  auto run = Wasmlet("inspect " + path);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(Lines(run.out), 1u) << run.out;
  EXPECT_NE(run.out.find("truncated"), std::string::npos) << run.out;
  std::filesystem::remove(path);
}

TEST(CliTest, InspectOfAMissingFileSaysSo) {
  auto run = Wasmlet("inspect /nonexistent/file.wasm");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(Lines(run.out), 1u) << run.out;
  EXPECT_NE(run.out.find("cannot open"), std::string::npos) << run.out;
}

TEST(CliTest, VersionNamesTheEngine) {
  auto run = Wasmlet("version");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("engine  v8 10.2"), std::string::npos) << run.out;
}

}  // namespace

namespace {

TEST(CliTest, PackWritesAnImageAndRefusesWhatIsNotWasm) {
  wasmlet::testing::TempDir dir;
  auto run = Wasmlet(std::string("pack ") + WASMLET_EXAMPLES + "/hello.wasm -t example.com/hello -o " +
                     dir.File("hello.tar"));
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out, dir.File("hello.tar") + ": image example.com/hello:latest, entrypoint /hello.wasm\n");
  EXPECT_GT(std::filesystem::file_size(dir.File("hello.tar")),
            std::filesystem::file_size(std::string(WASMLET_EXAMPLES) + "/hello.wasm"));

  std::ofstream(dir.File("text.wasm")) << "not a module";
  auto refused = Wasmlet("pack " + dir.File("text.wasm") + " -t t -o " + dir.File("t.tar"));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_EQ(Lines(refused.out), 1u) << refused.out;
  EXPECT_NE(refused.out.find("not a WebAssembly module"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("--no-verify packs it all the same"), std::string::npos) << refused.out;
  EXPECT_FALSE(std::filesystem::exists(dir.File("t.tar")));
  EXPECT_EQ(Wasmlet("pack " + dir.File("text.wasm") + " --no-verify -t t -o " + dir.File("t.tar")).exit_code,
            0);
}

}  // namespace
