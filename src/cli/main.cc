// The wasmlet command line.
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "cli/inspect.h"
#include "engine/engine.h"

namespace {

int Fail(const std::string& message) {
  std::cerr << "wasmlet: error: " << message << "\n";
  return 1;
}

wasmlet::Result<std::vector<uint8_t>> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return wasmlet::NotFound(path + ": cannot open the file (does it exist, and is it readable?)");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return wasmlet::Internal(path + ": read failed");
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wasmlet: runs WebAssembly functions and filters through the Proxy-Wasm ABI"};
  app.require_subcommand(1);

  auto* version = app.add_subcommand("version", "Print the wasmlet and engine versions");

  auto* inspect = app.add_subcommand("inspect", "Show what a .wasm module imports and exports");
  std::string inspect_path;
  bool inspect_json = false;
  bool inspect_compile = false;
  inspect->add_option("FILE", inspect_path, "The .wasm file")->required();
  inspect->add_flag("--json", inspect_json, "Print one JSON object");
  inspect->add_flag("--compile", inspect_compile, "Also compile the module, to check its code");

  auto* start = app.add_subcommand("start", "Run the function server");
  std::string config_path;
  start->add_option("-c,--config", config_path, "Configuration file (Layotto's config.json shape)")
      ->required();

  CLI11_PARSE(app, argc, argv);

  if (*version) {
    auto engine = wasmlet::engine::CreateEngine();
    std::cout << "wasmlet " << WASMLET_VERSION << "\n";
    std::cout << "engine  " << (engine.ok() ? std::string((*engine)->name()) : engine.status().ToString())
              << "\n";
    return 0;
  }
  if (*inspect) {
    auto bytes = ReadFile(inspect_path);
    if (!bytes.ok()) return Fail(bytes.status().message());
    if (inspect_compile) {
      auto engine = wasmlet::engine::CreateEngine();
      if (!engine.ok()) return Fail(engine.status().message());
      auto module = (*engine)->Compile(*bytes);
      if (!module.ok()) return Fail(inspect_path + ": " + module.status().message());
    }
    wasmlet::Status status = wasmlet::cli::Inspect(*bytes, inspect_path, inspect_json, std::cout);
    if (!status.ok()) return Fail(inspect_path + ": " + status.message());
    return 0;
  }
  if (*start) {
    return Fail(
        "'wasmlet start' is not available yet: the function server is being built "
        "(see the open issues). Use 'wasmlet inspect FILE.wasm' meanwhile.");
  }
  return 0;
}
