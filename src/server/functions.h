// The functions a server runs: each plugin item of the config, compiled once, started as a
// pool of instances spread over the workers, and registered under the route id its module
// reports (proxy_get_id) or its name. Requests wait (bounded) for a free instance.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
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
#include "server/worker.h"

namespace wasmlet::server {

using Clock = std::chrono::steady_clock;
using Done = std::function<void(Result<abi::HttpResponse>)>;

class Function;

class FunctionRegistry {
 public:
  FunctionRegistry(const ServerConfig& config, engine::Engine& engine, abi::HostServices services);
  ~FunctionRegistry();

  // Loads every plugin item. An item that cannot be loaded is logged with its JSON path and
  // skipped; the error is returned only when no item at all could be loaded.
  Status LoadAll();
  // Loads one item (file, md5, compile, start its instances). Fails with the item's name.
  Status Load(const PluginConfig& plugin);

  // Runs `request` on a function registered under `route_id`; `done` is called exactly once,
  // on some other thread: with the response, or with an error whose code says what happened
  // (kNotFound: no such id; kResourceExhausted: no instance free in time; kDeadlineExceeded:
  // the guest ran past its limit; others: the guest failed).
  void Dispatch(const std::string& route_id, abi::HttpRequest request, Done done);

  // proxy_invoke_service inside this process: runs on another instance, on this worker when
  // one is free here. Blocks the calling worker (at most invoke_timeout_ms).
  Result<abi::HttpResponse> InvokeInProcess(const std::string& route_id, abi::HttpRequest request);

  std::vector<std::string> Routes() const;
  size_t function_count() const;
  // Destroys every instance on its own worker thread; call before the workers stop.
  void Shutdown();

 private:
  std::shared_ptr<Function> Pick(const std::string& route_id);

  const ServerConfig& config_;
  engine::Engine& engine_;
  abi::HostServices services_;
  std::vector<std::unique_ptr<Worker>> workers_;
  engine::Watchdog timers_;  // queue timeouts
  size_t next_worker_ = 0;

  mutable std::mutex mutex_;
  std::map<std::string, std::vector<std::shared_ptr<Function>>> routes_;
  std::vector<std::shared_ptr<Function>> functions_;
  std::mt19937 random_{std::random_device{}()};
};

}  // namespace wasmlet::server
