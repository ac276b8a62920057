// The wasmlet daemon of a node, as the shim sees it: functions are installed into it and
// removed from it through its admin API, and it is started when no daemon answers.
//
// The shim's settings come from a JSON file: $WASMLET_SHIM_CONFIG, else /etc/wasmlet/shim.json
// (missing: the defaults below).
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace wasmlet::shim {

struct ShimSettings {
  std::string admin_address = "127.0.0.1:34998";         // the daemon's wasmlet.admin_address
  std::string admin_token;                               // its wasmlet.admin_token, if it has one
  std::string wasmlet_binary;                            // default: `wasmlet` beside the shim, else on PATH
  std::string daemon_config = "/etc/wasmlet/node.json";  // how the shim starts a daemon
  std::string daemon_log = "/var/log/wasmlet.log";
  std::string state_dir = "/run/wasmlet";  // shim sockets, the daemon's pid file and start lock
  int start_timeout_ms = 15000;            // for a daemon it started to answer
  // How often a running task checks that the daemon still serves its function (and brings the
  // daemon and the function back when not: a daemon that crashed or restarted). 0: never.
  int check_interval_ms = 2000;
};

// Reads the settings file; `path` empty means the default place (see above).
Result<ShimSettings> LoadShimSettings(const std::string& path = "");

// What a task needs of the node: the seam the task service is tested through.
class FunctionHost {
 public:
  virtual ~FunctionHost() = default;
  // Installs a plugin item; returns the route id the function serves under.
  virtual Result<std::string> Install(const nlohmann::json& item) = 0;
  // Removes the plugin item `name` (not found: not an error, it is gone either way).
  virtual Status Uninstall(const std::string& name) = 0;
  // The daemon's /wasm/list entry of plugin item `name`.
  virtual Result<nlohmann::json> Describe(const std::string& name) = 0;
};

class NodeDaemon : public FunctionHost {
 public:
  explicit NodeDaemon(ShimSettings settings) : settings_(std::move(settings)) {}

  // Starts the daemon unless one answers; waits until it is ready. One shim at a time does
  // this (a lock file in state_dir), so tasks started together start one daemon.
  Status EnsureRunning();

  Result<std::string> Install(const nlohmann::json& item) override;
  Status Uninstall(const std::string& name) override;
  Result<nlohmann::json> Describe(const std::string& name) override;

  struct Answer {
    int status = 0;
    std::string body;
  };
  // One call to the admin API. kUnavailable when nothing answers at admin_address.
  Result<Answer> Call(const std::string& method, const std::string& target, const std::string& body = "",
                      int timeout_ms = 10000);

 private:
  bool Ready();
  // Starts `wasmlet start -c daemon_config` detached; returns the daemon's pid.
  Result<pid_t> Spawn();
  // Waits until the daemon is ready; fails at once when it exits.
  Status WaitReady(pid_t daemon);

  ShimSettings settings_;
};

}  // namespace wasmlet::shim
