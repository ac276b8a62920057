// The functions a server runs: each plugin item, compiled once, started as a pool of
// instances spread over the workers, and registered under the route id its module reports
// (proxy_get_id) or its name. Requests wait (bounded) for a free instance.
//
// Functions can be installed, resized, reloaded and uninstalled while traffic flows: a new
// version starts beside the old one, new requests switch to it at once, requests already on
// the old instances finish there, and then the old instances are destroyed.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "abi/plugin_vm.h"
#include "engine/engine.h"
#include "engine/watchdog.h"
#include "server/config.h"
#include "server/file_watcher.h"
#include "server/metrics.h"
#include "server/worker.h"

namespace wasmlet::server {

using Clock = std::chrono::steady_clock;
using Done = std::function<void(Result<abi::HttpResponse>)>;

class Function;

struct FunctionInfo {
  std::string id;
  std::string name;
  std::string file;  // path or url
  std::string md5;   // of the module that runs
  size_t instances = 0;
  size_t busy = 0;
  uint64_t memory_bytes = 0;        // the instances' linear memory, as of their last request
  uint64_t memory_limit_bytes = 0;  // the instances' memory cap, summed
  uint64_t requests = 0;
  uint64_t errors = 0;
  abi::HostUsage host;  // what the host holds for its VM id (shared data, queues, metrics)
};

class FunctionRegistry {
 public:
  FunctionRegistry(const ServerConfig& config, engine::Engine& engine, abi::HostServices services,
                   Metrics& metrics);
  ~FunctionRegistry();

  // Loads every plugin item of the config and watches their files. An item that cannot be
  // loaded is logged with its JSON path and skipped (and loaded when its file appears); the
  // error is returned only when no item at all could be loaded.
  Status LoadAll();

  // Admin operations. Install returns the route id the function registered under.
  Result<std::string> Install(const PluginConfig& plugin);
  Status Uninstall(const std::string& route_id);
  // Removes the one plugin item `name`; other plugins under its route id keep serving.
  Status UninstallPlugin(const std::string& name);
  Status Update(const std::string& route_id, int instance_num);
  // Loads the item named `name` again from its file; on failure the running version stays.
  Status Reload(const std::string& name);

  // Runs `request` on a function registered under `route_id`; `done` is called exactly once,
  // on another thread: with the response, or with an error whose code says what happened
  // (kNotFound: no such id; kResourceExhausted: no instance free in time; kDeadlineExceeded:
  // the guest ran past its limit; others: the guest failed).
  void Dispatch(const std::string& route_id, abi::HttpRequest request, Done done);

  // proxy_invoke_service inside this process: runs on another instance, on this worker when
  // one is free here. Blocks the calling worker (at most invoke_timeout_ms).
  Result<abi::HttpResponse> InvokeInProcess(const std::string& route_id, abi::HttpRequest request);

  std::vector<FunctionInfo> List() const;
  bool HasRoute(const std::string& route_id) const;
  size_t function_count() const;
  std::vector<Metrics::Gauge> Gauges() const;
  // Destroys every instance on its own worker thread; call before the workers stop.
  void Shutdown();

 private:
  Result<std::shared_ptr<Function>> Build(const PluginConfig& plugin);
  void Register(const std::shared_ptr<Function>& function);
  // Takes `old` out of service: new requests no longer reach it; its waiting requests move to
  // `successor` (or fail, without one); its instances are destroyed once their request ends.
  void Retire(const std::shared_ptr<Function>& old, const std::shared_ptr<Function>& successor);
  void Watch(const PluginConfig& plugin);
  std::shared_ptr<Function> Pick(const std::string& route_id);
  // Every function in service, across all routes (a snapshot).
  std::vector<std::shared_ptr<Function>> AllFunctions() const;
  // Starts `count` more instances of `function`; returns the first failure.
  Status AddInstances(const std::shared_ptr<Function>& function, int count);
  void ScheduleHousekeeping();

  const ServerConfig& config_;
  engine::Engine& engine_;
  abi::HostServices services_;
  Metrics& metrics_;
  std::vector<std::unique_ptr<Worker>> workers_;
  engine::Watchdog timers_;  // queue timeouts, restart back-off
  std::atomic<size_t> next_worker_{0};
  std::atomic<bool> stopping_{false};

  mutable std::mutex mutex_;
  std::map<std::string, std::vector<std::shared_ptr<Function>>> routes_;
  std::map<std::string, std::shared_ptr<Function>> by_name_;  // config name -> the running version
  std::map<std::string, PluginConfig> known_;                 // every item ever configured, by name
  std::mt19937 random_{std::random_device{}()};
  std::mutex reload_mutex_;  // one load/reload/install at a time

  // Last: its callbacks use everything above. Stopped first in Shutdown, so no reload can
  // start while instances are being torn down.
  std::unique_ptr<FileWatcher> watcher_;
};

}  // namespace wasmlet::server
