// The wasmlet command line.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <vector>

#include <unistd.h>

#include "cli/admin_commands.h"
#include "cli/inspect.h"
#include "cli/log_format.h"
#include "cli/new_function.h"
#include "components/configuration/configuration_store.h"
#include "components/lock/lock_store.h"
#include "components/pubsub/pubsub.h"
#include "components/sequencer/sequencer.h"
#include "components/state/state_store.h"
#include "engine/engine.h"
#include "image/oci_image.h"
#include "server/server.h"
#include "wasm/module_info.h"

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

int Start(const std::string& config_path, const std::string& log_level, const std::string& log_format) {
  const auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") return Fail("unknown log level '" + log_level + "'");
  spdlog::set_level(level);
  if (auto status = wasmlet::cli::SetLogFormat(log_format); !status.ok()) return Fail(status.message());
  auto config = wasmlet::server::LoadConfig(config_path);
  if (!config.ok()) return Fail(config.status().message());
  // The last log lines, for the dashboard and GET /logs.
  auto ring = std::make_shared<wasmlet::server::LogRing>();
  spdlog::default_logger()->sinks().push_back(ring);
  wasmlet::server::Server server(std::move(*config));
  server.set_log_ring(ring);
  return server.Run();
}

// The component `name` of `kind` in the config at `config_path`, made by `create`.
template <typename Create>
auto OpenNamed(
    const std::string& config_path, const std::string& name, const char* kind,
    std::map<std::string, wasmlet::components::StoreConfig> wasmlet::server::ServerConfig::*section,
    Create create) -> decltype(create(std::declval<wasmlet::components::StoreConfig>())) {
  spdlog::set_level(spdlog::level::warn);
  auto config = wasmlet::server::LoadConfig(config_path);
  if (!config.ok()) return config.status();
  const auto& named = (*config).*section;
  auto it = named.find(name);
  if (it == named.end()) {
    std::string names;
    for (const auto& [n, ignored] : named) names += (names.empty() ? "" : ", ") + n;
    return wasmlet::NotFound(config_path + " has no " + kind + " named '" + name +
                             "' (it has: " + (names.empty() ? "none" : names) + ")");
  }
  return create(it->second);
}

// `wasmlet lock try|unlock STORE RESOURCE OWNER -c CONFIG`: exit 0 when taken (released), 1 when
// held (not released), as `flock -n` does; what happened on stdout.
int Lock(const std::string& config_path, const std::string& store_name, const std::string& resource,
         const std::string& owner, std::optional<int> expire_seconds) {
  auto lock = OpenNamed(config_path, store_name, "lock store", &wasmlet::server::ServerConfig::locks,
                        wasmlet::components::CreateLockStore);
  if (!lock.ok()) return Fail(lock.status().message());
  if (expire_seconds) {
    if (*expire_seconds <= 0) return Fail("--expire must be at least 1 second");
    auto taken = (*lock)->TryLock(resource, owner, std::chrono::seconds(*expire_seconds));
    if (!taken.ok()) return Fail(taken.status().message());
    std::cout << (*taken ? "taken" : "held") << "\n";
    return *taken ? 0 : 1;
  }
  auto result = (*lock)->Unlock(resource, owner);
  if (!result.ok()) return Fail(result.status().message());
  using wasmlet::components::UnlockResult;
  std::cout << (*result == UnlockResult::kSuccess            ? "unlocked"
                : *result == UnlockResult::kLockDoesNotExist ? "no such lock"
                                                             : "held by another owner")
            << "\n";
  return *result == UnlockResult::kSuccess ? 0 : 1;
}

// `wasmlet sequencer next STORE KEY -c CONFIG`: prints the next id.
int Sequencer(const std::string& config_path, const std::string& store_name, const std::string& key) {
  auto sequencer = OpenNamed(config_path, store_name, "sequencer", &wasmlet::server::ServerConfig::sequencers,
                             wasmlet::components::CreateSequencer);
  if (!sequencer.ok()) return Fail(sequencer.status().message());
  auto id = (*sequencer)->NextId(key);
  if (!id.ok()) return Fail(id.status().message());
  std::cout << *id << "\n";
  return 0;
}

// `wasmlet configuration set|get STORE KEY [VALUE] -c CONFIG`: set or read an item.
int Configuration(const std::string& config_path, const std::string& store_name, const std::string& key,
                  const std::optional<std::string>& content) {
  auto store = OpenNamed(config_path, store_name, "configuration store",
                         &wasmlet::server::ServerConfig::configuration_stores,
                         wasmlet::components::CreateConfigurationStore);
  if (!store.ok()) return Fail(store.status().message());
  if (content) {
    wasmlet::Status status = (*store)->Set(key, *content);
    return status.ok() ? 0 : Fail(status.message());
  }
  auto items = (*store)->Get({key});
  if (!items.ok()) return Fail(items.status().message());
  if (items->empty())
    return Fail(config_path + ": configuration store '" + store_name + "' has no item '" + key + "'");
  std::cout << items->front().second << "\n";
  return 0;
}

// `wasmlet publish PUBSUB TOPIC DATA [-m NAME=VALUE]... -c CONFIG`: prints the message's id.
int Publish(const std::string& config_path, const std::string& pubsub_name, const std::string& topic,
            const std::string& data, const std::vector<std::string>& metadata) {
  wasmlet::components::PubSubMetadata pairs;
  for (const std::string& item : metadata) {
    const size_t equals = item.find('=');
    if (equals == std::string::npos || equals == 0) return Fail("-m " + item + ": expected NAME=VALUE");
    pairs.emplace_back(item.substr(0, equals), item.substr(equals + 1));
  }
  auto pubsub = OpenNamed(config_path, pubsub_name, "pub/sub", &wasmlet::server::ServerConfig::pubsubs,
                          wasmlet::components::CreatePubSub);
  if (!pubsub.ok()) return Fail(pubsub.status().message());
  auto id = (*pubsub)->Publish(topic, data, pairs);
  if (!id.ok()) return Fail(id.status().message());
  std::cout << *id << "\n";
  return 0;
}

// `wasmlet state set|get STORE KEY [VALUE] -c CONFIG`: seed or read a store from the shell.
int State(const std::string& config_path, const std::string& store_name, const std::string& key,
          const std::optional<std::string>& value) {
  auto store = OpenNamed(config_path, store_name, "state store", &wasmlet::server::ServerConfig::stores,
                         wasmlet::components::CreateStateStore);
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

// `wasmlet pack FILE.wasm -t NAME`: an OCI image archive for `ctr image import`.
int Pack(const std::string& path, const std::string& name, std::string output,
         const std::vector<std::string>& env, bool verify) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return Fail(bytes.status().message());
  if (verify) {
    auto info = wasmlet::wasm::ParseModule(*bytes);
    if (!info.ok())
      return Fail(path + ": " + info.status().message() + " (--no-verify packs it all the same)");
  }
  wasmlet::image::PackOptions options;
  options.module = std::move(*bytes);
  options.module_file = std::filesystem::path(path).filename().string();
  // An executable file stays executable in the image (a --no-verify image may carry a program).
  std::error_code ignored;
  const auto permissions = std::filesystem::status(path, ignored).permissions();
  if ((permissions & std::filesystem::perms::owner_exec) != std::filesystem::perms::none) options.mode = 0755;
  options.name = name;
  options.env = env;
  if (output.empty()) output = std::filesystem::path(path).stem().string() + ".tar";
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  if (!out) return Fail("cannot write " + output);
  wasmlet::Status status = wasmlet::image::WriteOciArchive(options, out);
  if (!status.ok()) return Fail(status.message());
  std::cout << output << ": image " << wasmlet::image::NormalizeReference(name) << ", entrypoint /"
            << options.module_file << "\n";
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
  std::string log_format = "text";
  start->add_option("--log-format", log_format, "text, or json: one JSON object per line, for log shippers")
      ->capture_default_str();

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

  auto* lock = app.add_subcommand("lock", "Take or release a lock of a lock store named in a configuration");
  lock->require_subcommand(1);
  auto* lock_try =
      lock->add_subcommand("try", "Take a lock: lock try STORE RESOURCE OWNER -c CONFIG (exit 1: held)");
  auto* lock_unlock = lock->add_subcommand(
      "unlock", "Release a lock: lock unlock STORE RESOURCE OWNER -c CONFIG (exit 1: not held)");
  std::string resource, owner;
  int expire_seconds = 30;
  for (auto* sub : {lock_try, lock_unlock}) {
    sub->add_option("STORE", store_name, "Lock store name (a key under grpc_config.lock)")->required();
    sub->add_option("RESOURCE", resource, "The resource")->required();
    sub->add_option("OWNER", owner, "Who holds it")->required();
    sub->add_option("-c,--config", config_path, "Configuration file")->required();
  }
  lock_try->add_option("--expire", expire_seconds, "Seconds until the lock expires")->capture_default_str();

  auto* sequencer = app.add_subcommand("sequencer", "Take ids from a sequencer named in a configuration");
  sequencer->require_subcommand(1);
  auto* sequencer_next = sequencer->add_subcommand("next", "The next id: sequencer next STORE KEY -c CONFIG");
  sequencer_next->add_option("STORE", store_name, "Sequencer name (a key under grpc_config.sequencer)")
      ->required();
  sequencer_next->add_option("KEY", key, "Key")->required();
  sequencer_next->add_option("-c,--config", config_path, "Configuration file")->required();

  auto* configuration = app.add_subcommand(
      "configuration", "Set or read an item of a configuration store named in a configuration");
  configuration->require_subcommand(1);
  auto* configuration_set =
      configuration->add_subcommand("set", "Set an item: configuration set STORE KEY CONTENT -c CONFIG");
  auto* configuration_get =
      configuration->add_subcommand("get", "Read an item: configuration get STORE KEY -c CONFIG");
  std::string content;
  for (auto* sub : {configuration_set, configuration_get}) {
    sub->add_option("STORE", store_name, "Configuration store name (a key under grpc_config.config_store)")
        ->required();
    sub->add_option("KEY", key, "Key")->required();
    sub->add_option("-c,--config", config_path, "Configuration file")->required();
  }
  configuration_set->add_option("CONTENT", content, "Content")->required();

  auto* publish =
      app.add_subcommand("publish", "Publish a message to a topic of a pub/sub named in a configuration");
  std::string topic, data;
  std::vector<std::string> publish_metadata;
  publish->add_option("PUBSUB", store_name, "Pub/sub name (a key under grpc_config.pub_subs)")->required();
  publish->add_option("TOPIC", topic, "Topic")->required();
  publish->add_option("DATA", data, "The message")->required();
  publish->add_option("-m,--metadata", publish_metadata,
                      "NAME=VALUE, given to subscribers as a header (repeatable)");
  publish->add_option("-c,--config", config_path, "Configuration file")->required();

  auto* pack = app.add_subcommand("pack", "Pack a .wasm into an OCI image archive for `ctr image import`");
  std::string pack_path, pack_name, pack_output;
  std::vector<std::string> pack_env;
  bool pack_no_verify = false;
  pack->add_option("FILE", pack_path, "The .wasm file")->required();
  pack->add_option("-t,--tag", pack_name, "Image name, e.g. example.com/function1:v1 (:latest if no tag)")
      ->required();
  pack->add_option("-o,--output", pack_output, "Archive to write (default: FILE's name with .tar)");
  pack->add_option("-e,--env", pack_env,
                   "KEY=VALUE in the image's environment, e.g. WASMLET_INSTANCE_NUM=2 (repeatable)");
  pack->add_flag("--no-verify", pack_no_verify, "Pack even a file that is not a readable wasm module");

  // Commands for a running server, through its admin API.
  std::string admin_flag, admin_config, admin_id, install_file;
  bool ls_json = false;
  int instances = 0, top_frames = 0;
  uint32_t cpu_ms = 0, mem_mib = 0;
  double top_interval = 1.0;
  auto* ls = app.add_subcommand("ls", "List the functions of a running server");
  ls->add_flag("--json", ls_json, "Print the admin API's JSON");
  auto* install =
      app.add_subcommand("install", "Install a function into a running server: install FILE --id ID");
  install->add_option("FILE", install_file, "The .wasm file")->required();
  install
      ->add_option("--id", admin_id, "Its id (the plugin item's name; requests carry it in the 'id' header)")
      ->required();
  auto* install_instances =
      install->add_option("--instances", instances, "Instances (default: one per serving loop)");
  auto* install_cpu = install->add_option("--cpu", cpu_ms, "CPU budget of one request, in ms");
  auto* install_mem = install->add_option("--mem", mem_mib, "Memory cap of one instance, in MiB");
  auto* update = app.add_subcommand("update", "Change a function's instance count: update ID --instances N");
  update->add_option("ID", admin_id, "The function's id")->required();
  update->add_option("--instances", instances, "Instances (0: one per serving loop)")->required();
  auto* uninstall = app.add_subcommand("uninstall", "Remove a function from a running server: uninstall ID");
  uninstall->add_option("ID", admin_id, "The function's id")->required();
  auto* top = app.add_subcommand("top", "A live table of the functions' traffic, refreshed every second");
  top->add_option("-n,--frames", top_frames, "Stop after this many frames (default: until Ctrl-C)");
  top->add_option("--interval", top_interval, "Seconds between frames")->capture_default_str();
  for (auto* sub : {ls, install, update, uninstall, top}) {
    sub->add_option("--admin", admin_flag, "The admin API's address, HOST:PORT (default 127.0.0.1:34998)");
    sub->add_option("-c,--config", admin_config,
                    "The server's configuration, for its admin address and token");
  }

  auto* new_function =
      app.add_subcommand("new", "Write a function project that builds with the guest SDK: new NAME");
  std::string new_name, new_lang = "cpp", new_sdk;
  new_function->add_option("NAME", new_name, "The function's name, folder and id")->required();
  new_function->add_option("--lang", new_lang, "cpp (with the SDK's classes) or c (the raw ABI)")
      ->capture_default_str();
  new_function->add_option("--sdk", new_sdk, "The SDK folder (default: the one beside this wasmlet)");

  CLI11_PARSE(app, argc, argv);

  if (*version) {
    auto engine = wasmlet::engine::CreateEngine();
    std::cout << "wasmlet " << WASMLET_VERSION << "\n";
    std::cout << "engine  " << (engine.ok() ? std::string((*engine)->name()) : engine.status().ToString())
              << "\n";
    return 0;
  }
  if (*inspect) return Inspect(inspect_path, inspect_json, inspect_compile);
  if (*start) return Start(config_path, log_level, log_format);
  if (*state_set) return State(config_path, store_name, key, value);
  if (*state_get) return State(config_path, store_name, key, std::nullopt);
  if (*lock_try) return Lock(config_path, store_name, resource, owner, expire_seconds);
  if (*lock_unlock) return Lock(config_path, store_name, resource, owner, std::nullopt);
  if (*sequencer_next) return Sequencer(config_path, store_name, key);
  if (*configuration_set) return Configuration(config_path, store_name, key, content);
  if (*configuration_get) return Configuration(config_path, store_name, key, std::nullopt);
  if (*publish) return Publish(config_path, store_name, topic, data, publish_metadata);
  if (*pack) return Pack(pack_path, pack_name, pack_output, pack_env, !pack_no_verify);
  if (*new_function) {
    auto sdk = wasmlet::cli::FindSdk(new_sdk);
    if (!sdk.ok()) return Fail(sdk.status().message());
    auto status = wasmlet::cli::NewFunction(new_name, new_lang, *sdk, std::cout);
    return status.ok() ? 0 : Fail(status.message());
  }
  for (auto* sub : {ls, install, update, uninstall, top}) {
    if (!*sub) continue;
    auto admin = wasmlet::cli::ResolveAdmin(admin_flag, admin_config);
    if (!admin.ok()) return Fail(admin.status().message());
    wasmlet::Status status;
    if (*ls) status = wasmlet::cli::ListFunctions(*admin, ls_json, std::cout);
    if (*install) {
      wasmlet::cli::InstallOptions options;
      options.file = install_file;
      options.id = admin_id;
      if (*install_instances) options.instances = instances;
      if (*install_cpu) options.cpu_ms = cpu_ms;
      if (*install_mem) options.mem_mib = mem_mib;
      status = wasmlet::cli::Install(*admin, options, std::cout);
    }
    if (*update) status = wasmlet::cli::Update(*admin, admin_id, instances, std::cout);
    if (*uninstall) status = wasmlet::cli::Uninstall(*admin, admin_id, std::cout);
    if (*top) {
      if (top_interval < 0.1 || top_interval > 3600) return Fail("--interval must be 0.1 to 3600 seconds");
      status = wasmlet::cli::Top(*admin, std::cout, top_frames,
                                 std::chrono::milliseconds(static_cast<int64_t>(top_interval * 1000)),
                                 isatty(STDOUT_FILENO) != 0);
    }
    return status.ok() ? 0 : Fail(status.message());
  }
  return 0;
}
