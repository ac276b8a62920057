// The functions a server runs: each plugin item, compiled once, started as a pool of instances
// spread over the event loops (function_pool.h), and registered under the route id its module
// reports (proxy_get_id) or its name.
//
// Functions can be installed, resized, reloaded and uninstalled while traffic flows: a new
// version starts beside the old one, new requests switch to it at once, requests already on
// the old instances finish there, and then the old instances are destroyed.
//
// The request path takes no process-wide lock: each thread keeps its own copy of the route
// table and refreshes it only when the table changed (one atomic load per request).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "engine/engine.h"
#include "server/config/config.h"
#include "server/runtime/event_loop.h"
#include "server/functions/file_watcher.h"
#include "server/functions/function_pool.h"
#include "server/runtime/metrics.h"
#include "server/runtime/unique_id.h"

namespace wasmlet::server {

struct FunctionInfo {
  std::string id;
  std::string name;
  std::string file;       // path or url
  std::string md5;        // of the module that runs
  std::string placement;  // "serving" (on the loops that own the connections) or "pool"
  size_t instances = 0;
  size_t busy = 0;
  size_t retiring = 0;              // instances of a replaced version still finishing a request
  uint64_t memory_bytes = 0;        // the instances' linear memory, as of their last request
  uint64_t memory_limit_bytes = 0;  // the instances' memory cap, summed
  uint64_t requests = 0;
  uint64_t errors = 0;
  abi::HostUsage host;  // what the host holds for its VM id (shared data, queues, metrics)
};

// A plugin item's module, read, checked and compiled, and the spec its instances start with.
struct LoadedPlugin {
  std::shared_ptr<const engine::Module> module;
  std::shared_ptr<abi::PluginSpec> spec;
  std::string md5;
  std::string source;  // its path or URL
  std::chrono::milliseconds cpu_limit{0};
  double load_ms = 0;  // reading, checking and compiling (or loading from the code cache)
};
// Errors name the item's JSON path.
Result<LoadedPlugin> LoadPlugin(const PluginConfig& plugin, const ServerConfig& config,
                                engine::Engine& engine);

// Told of the plugin items installed and uninstalled while the server runs (the admin API's),
// so that what the server runs beside a config item's function (its subscriptions) follows
// them too.
class PluginListener {
 public:
  virtual ~PluginListener() = default;
  // Before an install starts anything: an error refuses the install with that error.
  virtual Status CheckInstall(const PluginConfig& plugin) = 0;
  // The item serves.
  virtual void Installed(const PluginConfig& plugin) = 0;
  // The item was uninstalled, alone or with the others of its route id.
  virtual void Uninstalled(const std::string& name) = 0;
};

class FunctionRegistry {
 public:
  // Instances go to `serving` loops (which the caller owns and keeps running until after
  // Shutdown); the registry starts its own pool loops (config.pool_threads) and a control loop.
  FunctionRegistry(const ServerConfig& config, engine::Engine& engine, abi::HostServices services,
                   Metrics& metrics, std::vector<EventLoop*> serving);
  ~FunctionRegistry();
  FunctionRegistry(const FunctionRegistry&) = delete;
  FunctionRegistry& operator=(const FunctionRegistry&) = delete;

  // Reads and compiles the modules of the config's plugin items, for LoadAll to start. Needs no
  // loop, so it can run while the serving loops are still starting. An item that fails here is
  // left to LoadAll, which reports it.
  void PreloadModules() EXCLUDES(mutex_);
  // Starts the control loop (the pool loops start when a function first needs them).
  Status Start();
  // Loads every plugin item of the config and watches their files. An item that cannot be
  // loaded is logged with its JSON path and skipped (and loaded when its file appears); the
  // error is returned only when no item at all could be loaded.
  Status LoadAll();

  // Tells `listener` (null: nobody) of the installs and uninstalls below from now on. It must
  // stay until it is replaced, by null at the latest.
  void set_listener(PluginListener* listener) { listener_ = listener; }

  // Admin operations (never on a loop: they wait for instances to start). Install returns the
  // route id the function registered under.
  Result<std::string> Install(const PluginConfig& plugin) EXCLUDES(reload_mutex_, mutex_);
  Status Uninstall(const std::string& route_id) EXCLUDES(reload_mutex_, mutex_);
  // Removes the one plugin item `name`; other plugins under its route id keep serving.
  Status UninstallPlugin(const std::string& name) EXCLUDES(reload_mutex_, mutex_);
  Status Update(const std::string& route_id, int instance_num) EXCLUDES(reload_mutex_, mutex_);
  // Loads the item named `name` again from its file; on failure the running version stays.
  Status Reload(const std::string& name) EXCLUDES(reload_mutex_, mutex_);

  // Runs `request` on a function registered under `route_id` (FunctionPool::Run): `done` is
  // called exactly once, with the response or an error whose code says what happened
  // (kNotFound: no such id; kResourceExhausted: no instance free in time; kDeadlineExceeded:
  // the guest ran past its limit; others: the guest failed).
  void Dispatch(const std::string& route_id, abi::HttpRequest request, Done done);
  // proxy_invoke_service inside this process (FunctionPool::Invoke).
  Result<abi::HttpResponse> InvokeInProcess(const std::string& route_id, abi::HttpRequest request);

  std::vector<FunctionInfo> List() const EXCLUDES(mutex_);
  // The route id (function id) the plugin item named `plugin_name` serves, if it runs.
  std::optional<std::string> RouteIdOf(const std::string& plugin_name) const EXCLUDES(mutex_);
  bool HasRoute(const std::string& route_id) const EXCLUDES(mutex_);
  size_t function_count() const EXCLUDES(mutex_);
  std::vector<Metrics::Gauge> Gauges() const EXCLUDES(mutex_);
  // Retires every function and waits until each loop has destroyed its instances; call before
  // the serving loops stop. No reload starts afterwards.
  void Shutdown() EXCLUDES(reload_mutex_, mutex_, pool_mutex_);
  // Stops the loops the registry owns (the pool loops and the control loop) and joins their
  // threads; after Shutdown, together with the serving loops, so that what their handlers point
  // to (outbound connections) can go. The destructor does it too.
  void StopLoops() EXCLUDES(pool_mutex_);

 private:
  using Pool = std::shared_ptr<FunctionPool>;
  struct RouteTable {
    std::unordered_map<std::string, std::vector<Pool>> routes;
  };

  int DefaultInstances() const;
  Result<Pool> Build(const PluginConfig& plugin);
  // Publishes routes_ to the request path.
  void PublishLocked() REQUIRES(mutex_);
  void Register(const Pool& function) EXCLUDES(mutex_);
  // The plugin item's file, watched for it alone (FileWatcher's callbacks are per watch).
  void Watch(const PluginConfig& plugin) EXCLUDES(mutex_);
  void Unwatch(const std::string& name) EXCLUDES(mutex_);
  // The table this thread last saw, refreshed when it changed.
  const RouteTable& Table() const EXCLUDES(mutex_);
  Pool Pick(const std::string& route_id) const EXCLUDES(mutex_);
  std::vector<Pool> AllFunctions() const EXCLUDES(mutex_);

  const ServerConfig& config_;
  engine::Engine& engine_;
  abi::HostServices services_;
  Metrics& metrics_;
  // PoolContext::pool_loops: starts the pool loops the first time.
  Result<std::vector<EventLoop*>> PoolLoops() EXCLUDES(pool_mutex_);
  Mutex pool_mutex_;
  std::vector<std::unique_ptr<EventLoop>> pool_loops_ GUARDED_BY(pool_mutex_);
  std::unique_ptr<EventLoop> control_;
  PoolContext context_;
  std::atomic<bool> stopping_{false};

  mutable Mutex mutex_;
  std::map<std::string, std::vector<Pool>> routes_ GUARDED_BY(mutex_);
  std::map<std::string, Pool> by_name_ GUARDED_BY(mutex_);        // config name -> the running version
  std::map<std::string, PluginConfig> known_ GUARDED_BY(mutex_);  // every item ever configured, by name
  std::map<std::string, FileWatcher::Id> watches_ GUARDED_BY(mutex_);  // plugin name -> its file's watch
  std::map<std::string, LoadedPlugin> preloaded_ GUARDED_BY(mutex_);   // by plugin name, until LoadAll
  std::shared_ptr<const RouteTable> published_ GUARDED_BY(mutex_) = std::make_shared<RouteTable>();
  std::atomic<uint64_t> version_{1};
  const UniqueId id_;   // what threads cache the table by (Table)
  Mutex reload_mutex_;  // one load/reload/install/update/uninstall at a time
  std::atomic<PluginListener*> listener_{nullptr};

  // Made in Start, on the control loop. Last: its callbacks use everything above. Stopped first
  // in Shutdown, so no reload can start while instances are being torn down.
  std::unique_ptr<FileWatcher> watcher_;
};

}  // namespace wasmlet::server
