// The wasmlet command line.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "cli/inspect.h"
#include "components/state/state_store.h"
#include "engine/engine.h"
#include "server/server.h"

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

int Inspect(const std::string& path, bool json, bool compile) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return Fail(bytes.status().message());
  if (compile) {
    auto engine = wasmlet::engine::CreateEngine();
    if (!engine.ok()) return Fail(engine.status().message());
    auto module = (*engine)->Compile(*bytes);
    if (!module.ok()) return Fail(path + ": " + module.status().message());
  }
  wasmlet::Status status = wasmlet::cli::Inspect(*bytes, path, json, std::cout);
  if (!status.ok()) return Fail(path + ": " + status.message());
  return 0;
}

int Start(const std::string& config_path, const std::string& log_level) {
  const auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") return Fail("unknown log level '" + log_level + "'");
  spdlog::set_level(level);
  auto config = wasmlet::server::LoadConfig(config_path);
  if (!config.ok()) return Fail(config.status().message());
  wasmlet::server::Server server(std::move(*config));
  return server.Run();
}

// `wasmlet state set|get STORE KEY [VALUE] -c CONFIG`: seed or read a store from the shell.
int State(const std::string& config_path, const std::string& store_name, const std::string& key,
          const std::optional<std::string>& value) {
  spdlog::set_level(spdlog::level::warn);
  auto config = wasmlet::server::LoadConfig(config_path);
  if (!config.ok()) return Fail(config.status().message());
  auto it = config->stores.find(store_name);
  if (it == config->stores.end()) return Fail(config_path + " has no state store named '" + store_name + "'");
  auto store = wasmlet::components::CreateStateStore(it->second);
  if (!store.ok()) return Fail(store.status().message());
  if (value) {
    wasmlet::Status status = (*store)->Set(key, *value);
    return status.ok() ? 0 : Fail(status.message());
  }
  auto got = (*store)->Get(key);
  if (!got.ok()) return Fail(got.status().message());
  std::cout << *got << "\n";
  return 0;
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

  std::string config_path;
  auto* start = app.add_subcommand("start", "Run the function server");
  std::string log_level = "info";
  start->add_option("-c,--config", config_path, "Configuration file (Layotto's config.json shape)")
      ->required();
  start->add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();

  auto* state = app.add_subcommand("state", "Read or write a state store named in a configuration");
  state->require_subcommand(1);
  auto* state_set = state->add_subcommand("set", "Write a value: state set STORE KEY VALUE -c CONFIG");
  auto* state_get = state->add_subcommand("get", "Read a value: state get STORE KEY -c CONFIG");
  std::string store_name, key, value;
  for (auto* sub : {state_set, state_get}) {
    sub->add_option("STORE", store_name, "State store name (a key under grpc_config.state)")->required();
    sub->add_option("KEY", key, "Key")->required();
  }
  state_set->add_option("VALUE", value, "Value")->required();
  for (auto* sub : {state_set, state_get})
    sub->add_option("-c,--config", config_path, "Configuration file")->required();

  CLI11_PARSE(app, argc, argv);

  if (*version) {
    auto engine = wasmlet::engine::CreateEngine();
    std::cout << "wasmlet " << WASMLET_VERSION << "\n";
    std::cout << "engine  " << (engine.ok() ? std::string((*engine)->name()) : engine.status().ToString())
              << "\n";
    return 0;
  }
  if (*inspect) return Inspect(inspect_path, inspect_json, inspect_compile);
  if (*start) return Start(config_path, log_level);
  if (*state_set) return State(config_path, store_name, key, value);
  if (*state_get) return State(config_path, store_name, key, std::nullopt);
  return 0;
}
