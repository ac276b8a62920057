#include "server/functions/function_registry.h"

#include <spdlog/spdlog.h>

#include <mutex>
#include <thread>
#include <utility>

#include "common/text.h"
#include "server/functions/module_source.h"

namespace wasmlet::server {
namespace {

// A route id is matched against the `id` header and printed in JSON, metrics and logs.
Status CheckRouteId(const std::string& id) {
  if (id.empty()) return InvalidArgument("it reported an empty id");
  if (id.size() > 256)
    return InvalidArgument("it reported an id of " + std::to_string(id.size()) + " bytes (at most 256)");
  if (!IsValidUtf8(id))
    return InvalidArgument("it reported the id '" + Printable(id) + "', which is not UTF-8 text");
  for (char c : id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
      return InvalidArgument("it reported the id '" + Printable(id) + "', which holds control characters");
  }
  return Status::Ok();
}

Status NoSuchRoute(const std::string& route_id) {
  return NotFound("no function is registered under id '" + Printable(route_id, 128) + "'");
}

int Cores() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace

FunctionRegistry::FunctionRegistry(const ServerConfig& config, engine::Engine& engine,
                                   abi::HostServices services, Metrics& metrics,
                                   std::vector<EventLoop*> serving)
    : config_(config), engine_(engine), services_(std::move(services)), metrics_(metrics) {
  context_.serving = std::move(serving);
  context_.metrics = &metrics_;
  context_.inline_limit = std::chrono::milliseconds(config.inline_limit_ms);
  context_.count_blocked = context_.serving.size() <= static_cast<size_t>(Cores());
  context_.queue_timeout = std::chrono::milliseconds(config.queue_timeout_ms);
  context_.max_queued = config.max_queued;
  context_.invoke_timeout = std::chrono::milliseconds(config.invoke_timeout_ms);
  context_.max_invoke_depth = config.max_invoke_depth;
}

void FunctionRegistry::PreloadModules() {
  for (const PluginConfig& plugin : config_.plugins) {
    auto loaded = LoadPlugin(plugin, config_, engine_);
    if (!loaded.ok()) continue;
    MutexLock lock(mutex_);
    preloaded_.emplace(plugin.name, std::move(*loaded));
  }
}

Status FunctionRegistry::Start() {
  control_ = std::make_unique<EventLoop>(EventLoop::Options{.name = "control"});
  WASMLET_RETURN_IF_ERROR(control_->WaitReady());
  context_.control = control_.get();
  context_.pool_threads = static_cast<size_t>(config_.pool_threads >= 0 ? config_.pool_threads : Cores());
  context_.pool_loops = [this] { return PoolLoops(); };
  // On the control loop: a reload compiles and starts instances there, as a move to the pool
  // does, and the timers of other threads' requests that loop keeps wait meanwhile.
  watcher_ = std::make_unique<FileWatcher>(*control_, std::chrono::milliseconds(200),
                                           std::chrono::milliseconds(config_.max_reload_delay_ms));
  return Status::Ok();
}

Result<std::vector<EventLoop*>> FunctionRegistry::PoolLoops() {
  MutexLock lock(pool_mutex_);
  if (pool_loops_.empty()) {
    if (context_.pool_threads == 0)
      return FailedPrecondition("wasmlet.pool_threads is 0: there are no pool loops");
    for (size_t i = 0; i < context_.pool_threads; ++i) {
      // Below the serving loops: a function moved here proved slow, and must not take the CPU
      // from the ones that are not.
      pool_loops_.push_back(std::make_unique<EventLoop>(EventLoop::Options{
          .name = "pool " + std::to_string(i), .index = static_cast<int>(i), .engine = &engine_, .nice = 5}));
    }
    Status started;
    for (auto& loop : pool_loops_) {  // they start in parallel
      Status status = loop->WaitReady();
      if (!status.ok() && started.ok()) started = status;
    }
    if (!started.ok()) {
      pool_loops_.clear();
      return started;
    }
    spdlog::info("started {} pool loop{} for functions that proved slow", pool_loops_.size(),
                 pool_loops_.size() == 1 ? "" : "s");
  }
  std::vector<EventLoop*> loops;
  for (auto& loop : pool_loops_) loops.push_back(loop.get());
  return loops;
}

FunctionRegistry::~FunctionRegistry() {
  Shutdown();
  StopLoops();
}

void FunctionRegistry::StopLoops() {
  MutexLock lock(pool_mutex_);
  for (auto& loop : pool_loops_) loop->Stop();
  if (control_) control_->Stop();
}

int FunctionRegistry::DefaultInstances() const {
  return static_cast<int>(std::max<size_t>(1, context_.serving.size()));
}

Status FunctionRegistry::LoadAll() {
  if (config_.plugins.empty()) {
    if (!config_.serve_functions && !config_.proxy_listeners.empty()) return Status::Ok();  // proxy mode only
    spdlog::info("the config lists no functions: serving none until they are installed (POST /wasm/install)");
    return Status::Ok();
  }
  std::vector<Status> errors;
  for (const PluginConfig& plugin : config_.plugins) {
    {
      MutexLock lock(mutex_);
      known_[plugin.name] = plugin;
    }
    Watch(plugin);
    auto function = Build(plugin);
    if (function.ok()) {
      Register(*function);
    } else {
      errors.push_back(function.status());
    }
  }
  {
    MutexLock lock(mutex_);
    preloaded_.clear();  // what a failed item left
  }
  if (function_count() == 0) {
    // Nothing to serve: the caller reports the reason (one line) and stops.
    std::string message = errors.front().message();
    for (size_t i = 1; i < errors.size(); ++i) message += "; " + errors[i].message();
    return Status(errors.front().code(), message);
  }
  // The functions that did load serve; the others are reported, and loaded when fixed.
  for (const Status& error : errors) spdlog::error("{} (not served until its file changes)", error.message());
  return Status::Ok();
}

void FunctionRegistry::Watch(const PluginConfig& plugin) {
  if (plugin.vm.path.empty() || !watcher_) return;  // URLs are not watched
  const std::string name = plugin.name;
  const FileWatcher::Id id = watcher_->Watch(plugin.vm.path, [this, name] {
    Status status = Reload(name);
    if (!status.ok())
      spdlog::error("reloading {}: {} (the running version, if any, keeps serving)", name, status.message());
  });
  FileWatcher::Id replaced = 0;
  {
    MutexLock lock(mutex_);
    replaced = std::exchange(watches_[name], id);
  }
  // An item of the config that did not load, installed again under its name, is watched once.
  if (replaced) watcher_->Unwatch(replaced);
}

void FunctionRegistry::Unwatch(const std::string& name) {
  FileWatcher::Id id = 0;
  {
    MutexLock lock(mutex_);
    auto it = watches_.find(name);
    if (it == watches_.end()) return;
    id = it->second;
    watches_.erase(it);
  }
  if (watcher_) watcher_->Unwatch(id);
}

Result<LoadedPlugin> LoadPlugin(const PluginConfig& plugin, const ServerConfig& config,
                                engine::Engine& engine) {
  const auto start = std::chrono::steady_clock::now();
  const std::string where = "config " + plugin.json_path + ".vm_config";
  auto bytes = ReadModule(plugin, where, {.max_bytes = config.max_module_bytes});
  if (!bytes.ok()) return bytes.status();
  auto md5 = Md5Hex(*bytes);
  if (!md5.ok()) return md5.status();
  if (!plugin.vm.md5.empty() && *md5 != abi::ToLower(plugin.vm.md5)) {
    return InvalidArgument(where + ".md5: " + (plugin.vm.path.empty() ? plugin.vm.url : plugin.vm.path) +
                           " has MD5 " + *md5 + ", not " + plugin.vm.md5 +
                           " (a different build of the module?)");
  }
  const std::string source = plugin.vm.path.empty() ? plugin.vm.url : plugin.vm.path;
  const uint32_t mem_mb = plugin.vm.mem_mb ? plugin.vm.mem_mb : config.default_mem_mb;
  auto module = engine.Compile(*bytes, {.max_memory_bytes = uint64_t{mem_mb} << 20});
  if (!module.ok()) {
    return Status(module.status().code(), where + (plugin.vm.path.empty() ? ".url: " : ".path: ") + source +
                                              ": " + module.status().message());
  }
  LoadedPlugin loaded;
  loaded.module = *module;
  loaded.md5 = *md5;
  loaded.source = source;
  loaded.cpu_limit = std::chrono::milliseconds(plugin.vm.cpu_ms ? plugin.vm.cpu_ms : config.default_cpu_ms);
  auto spec = std::make_shared<abi::PluginSpec>();
  spec->name = plugin.name;
  spec->root_id = plugin.root_id;
  spec->vm_id = plugin.string_keys.count("vm_id") ? plugin.string_keys.at("vm_id") : plugin.name;
  spec->root_context_id = plugin.root_context_id;
  spec->vm_configuration = VmConfigurationBytes(plugin);
  spec->plugin_configuration = PluginConfigurationBytes(plugin);
  spec->callback_timeout = loaded.cpu_limit;
  spec->allowed_stores = plugin.allowed_stores;
  loaded.spec = spec;
  loaded.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return loaded;
}

Result<FunctionRegistry::Pool> FunctionRegistry::Build(const PluginConfig& plugin) {
  std::optional<LoadedPlugin> preloaded;
  {
    MutexLock lock(mutex_);
    if (auto found = preloaded_.find(plugin.name); found != preloaded_.end()) {
      preloaded = std::move(found->second);
      preloaded_.erase(found);
    }
  }
  auto loaded = preloaded ? Result<LoadedPlugin>(std::move(*preloaded)) : LoadPlugin(plugin, config_, engine_);
  if (!loaded.ok()) return loaded.status();
  const auto compiled = std::chrono::steady_clock::now();  // instances start from here
  const std::string& source = loaded->source;
  const std::shared_ptr<const engine::Module>& module = loaded->module;
  const std::string& md5 = loaded->md5;
  const auto& spec = loaded->spec;

  auto function = std::make_shared<FunctionPool>(FunctionPool::Params{.config = plugin,
                                                                      .spec = spec,
                                                                      .module = module,
                                                                      .services = services_,
                                                                      .md5 = md5,
                                                                      .cpu_limit = loaded->cpu_limit},
                                                 context_);
  const int count = plugin.instance_num > 0 ? plugin.instance_num : DefaultInstances();
  if (Status started = function->AddInstances(count); !started.ok()) {
    function->Retire(nullptr);
    return Status(started.code(),
                  "config " + plugin.json_path + ": " + source + " does not start: " + started.message());
  }
  const auto ms = [](auto from, auto to) { return std::chrono::duration<double, std::milli>(to - from).count(); };
  spdlog::debug("{}: {} {} in {:.1f} ms, {} instance{} started in {:.1f} ms", plugin.name, source,
                module->from_cache() ? "loaded from the code cache" : "compiled", loaded->load_ms, count,
                count == 1 ? "" : "s", ms(compiled, std::chrono::steady_clock::now()));
  auto id = function->ReportedRouteId();
  if (!id.ok()) {
    function->Retire(nullptr);
    return InvalidArgument("config " + plugin.json_path + ": " + source + ": " + id.status().message());
  }
  if (Status bad_id = CheckRouteId(*id); !bad_id.ok()) {
    function->Retire(nullptr);
    return InvalidArgument("config " + plugin.json_path + ": " + source + " cannot be routed to: " +
                           bad_id.message() + " (its proxy_get_id export, or the item's name)");
  }
  function->set_route_id(*id);
  return function;
}

void FunctionRegistry::PublishLocked() {
  auto table = std::make_shared<RouteTable>();
  for (const auto& [id, list] : routes_) table->routes.emplace(id, list);
  published_ = std::move(table);
  version_.fetch_add(1, std::memory_order_release);
}

const FunctionRegistry::RouteTable& FunctionRegistry::Table() const {
  // Per thread: the registry it belongs to (tests run several), the version it holds.
  struct Cache {
    uint64_t owner = 0;  // UniqueId: a registry made where another was must not get its table
    uint64_t version = 0;
    std::shared_ptr<const RouteTable> table;
  };
  thread_local Cache cache;
  const uint64_t now = version_.load(std::memory_order_acquire);
  if (cache.owner != id_.value() || cache.version != now) {
    MutexLock lock(mutex_);
    cache.owner = id_.value();
    cache.version = version_.load(std::memory_order_relaxed);
    cache.table = published_;
  }
  return *cache.table;
}

void FunctionRegistry::Register(const Pool& function) {
  MutexLock lock(mutex_);
  routes_[function->route_id()].push_back(function);
  by_name_[function->config().name] = function;
  PublishLocked();
  const size_t count = function->Counts().live;
  spdlog::info("function '{}' ({}, {}): {} instance{}", function->route_id(), function->config().name,
               function->config().vm.path.empty() ? function->config().vm.url : function->config().vm.path,
               count, count == 1 ? "" : "s");
  if (function->config().vm.engine == "wasmtime" || function->config().vm.engine == "wasmer") {
    static std::once_flag noticed;
    std::call_once(noticed, [&] {
      spdlog::info("vm_config.engine \"{}\": wasmlet runs every module on V8", function->config().vm.engine);
    });
  }
}

Result<std::string> FunctionRegistry::Install(const PluginConfig& plugin) {
  MutexLock reload(reload_mutex_);
  {
    MutexLock lock(mutex_);
    if (by_name_.count(plugin.name)) {
      return Status(StatusCode::kFailedPrecondition,
                    "a function named '" + plugin.name +
                        "' is already installed; use /wasm/update or uninstall it first");
    }
  }
  PluginListener* listener = listener_;
  if (listener) WASMLET_RETURN_IF_ERROR(listener->CheckInstall(plugin));
  auto function = Build(plugin);
  if (!function.ok()) return function.status();
  {
    MutexLock lock(mutex_);
    known_[plugin.name] = plugin;
  }
  Register(*function);
  Watch(plugin);
  if (listener) listener->Installed(plugin);
  return (*function)->route_id();
}

Status FunctionRegistry::Uninstall(const std::string& route_id) {
  MutexLock reload(reload_mutex_);
  std::vector<Pool> removed;
  {
    MutexLock lock(mutex_);
    auto it = routes_.find(route_id);
    if (it == routes_.end()) return NoSuchRoute(route_id);
    removed = std::move(it->second);
    routes_.erase(it);
    for (const auto& function : removed) {
      by_name_.erase(function->config().name);
      known_.erase(function->config().name);
    }
    PublishLocked();
  }
  PluginListener* listener = listener_;
  for (const auto& function : removed) {
    Unwatch(function->config().name);
    function->Retire(nullptr);
    if (listener) listener->Uninstalled(function->config().name);
  }
  return Status::Ok();
}

Status FunctionRegistry::UninstallPlugin(const std::string& name) {
  MutexLock reload(reload_mutex_);
  Pool removed;
  {
    MutexLock lock(mutex_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return NotFound("no plugin named '" + name + "' is installed");
    removed = it->second;
    by_name_.erase(it);
    known_.erase(name);
    auto route = routes_.find(removed->route_id());
    if (route != routes_.end()) {
      std::erase(route->second, removed);
      if (route->second.empty()) routes_.erase(route);
    }
    PublishLocked();
  }
  Unwatch(name);
  removed->Retire(nullptr);
  if (PluginListener* listener = listener_) listener->Uninstalled(name);
  return Status::Ok();
}

Status FunctionRegistry::Update(const std::string& route_id, int instance_num) {
  MutexLock reload(reload_mutex_);
  std::vector<Pool> functions;
  {
    MutexLock lock(mutex_);
    auto it = routes_.find(route_id);
    if (it == routes_.end()) return NoSuchRoute(route_id);
    functions = it->second;
  }
  if (instance_num <= 0) instance_num = DefaultInstances();
  for (const auto& function : functions) {
    WASMLET_RETURN_IF_ERROR(function->Resize(instance_num));
    MutexLock lock(mutex_);
    if (known_.count(function->config().name)) known_[function->config().name].instance_num = instance_num;
  }
  spdlog::info("function '{}': {} instance{} each", route_id, instance_num, instance_num == 1 ? "" : "s");
  return Status::Ok();
}

Status FunctionRegistry::Reload(const std::string& name) {
  MutexLock reload(reload_mutex_);
  if (stopping_) return FailedPrecondition("the server is stopping");
  PluginConfig plugin;
  Pool old;
  {
    MutexLock lock(mutex_);
    auto known = known_.find(name);
    if (known == known_.end()) return NotFound("no function named '" + name + "'");
    plugin = known->second;
    if (auto it = by_name_.find(name); it != by_name_.end()) old = it->second;
  }
  auto fresh = Build(plugin);
  if (!fresh.ok()) return fresh.status();
  if (old && (*fresh)->md5() == old->md5()) {  // same bytes (a touch, or a second event): keep what runs
    (*fresh)->Retire(nullptr);
    return Status::Ok();
  }
  {
    // The switch: from here on, new requests reach the new version only.
    MutexLock lock(mutex_);
    if (old) {
      auto& route = routes_[old->route_id()];
      std::erase(route, old);
      if (route.empty()) routes_.erase(old->route_id());
    }
    routes_[(*fresh)->route_id()].push_back(*fresh);
    by_name_[name] = *fresh;
    PublishLocked();
  }
  if (old) {
    old->Retire(*fresh);
    metrics_.CountEvent("reloads", (*fresh)->route_id());
    spdlog::info("function '{}' ({}): switched to the new version of {}", (*fresh)->route_id(), name,
                 plugin.vm.path);
  } else {
    spdlog::info("function '{}' ({}): loaded {}", (*fresh)->route_id(), name, plugin.vm.path);
  }
  return Status::Ok();
}

FunctionRegistry::Pool FunctionRegistry::Pick(const std::string& route_id) const {
  const RouteTable& table = Table();
  auto it = table.routes.find(route_id);
  if (it == table.routes.end() || it->second.empty()) return nullptr;
  if (it->second.size() == 1) return it->second.front();
  thread_local size_t turn = 0;  // the plugins of one id share its traffic in turn
  return it->second[turn++ % it->second.size()];
}

void FunctionRegistry::Dispatch(const std::string& route_id, abi::HttpRequest request, Done done) {
  auto function = Pick(route_id);
  if (!function) {
    done(NoSuchRoute(route_id));
    return;
  }
  function->Run(std::move(request), std::move(done));
}

Result<abi::HttpResponse> FunctionRegistry::InvokeInProcess(const std::string& route_id,
                                                            abi::HttpRequest request) {
  auto function = Pick(route_id);
  if (!function) return NoSuchRoute(route_id);
  return function->Invoke(std::move(request));
}

std::vector<FunctionRegistry::Pool> FunctionRegistry::AllFunctions() const {
  MutexLock lock(mutex_);
  std::vector<Pool> functions;
  for (const auto& [route, list] : routes_) functions.insert(functions.end(), list.begin(), list.end());
  return functions;
}

std::optional<std::string> FunctionRegistry::RouteIdOf(const std::string& plugin_name) const {
  for (const auto& function : AllFunctions()) {
    if (function->config().name == plugin_name) return function->route_id();
  }
  return std::nullopt;
}

std::vector<FunctionInfo> FunctionRegistry::List() const {
  std::vector<FunctionInfo> out;
  const auto traffic = metrics_.TrafficById();  // one merge of the shards for every function
  for (const auto& function : AllFunctions()) {
    const PoolCounts counts = function->Counts();
    FunctionInfo info;
    info.id = function->route_id();
    info.name = function->config().name;
    info.file = function->config().vm.path.empty() ? function->config().vm.url : function->config().vm.path;
    info.md5 = function->md5();
    info.placement = function->on_pool_loops() ? "pool" : "serving";
    info.instances = counts.live;
    info.busy = counts.busy;
    info.retiring = counts.retiring;
    info.memory_bytes = counts.memory_bytes;
    info.memory_limit_bytes = info.instances * function->module().max_memory_bytes();
    info.host = function->services().shared->Usage(function->spec().vm_id);
    if (auto t = traffic.find(info.id); t != traffic.end()) {
      for (const auto& [status, count] : t->second.by_status) {
        info.requests += count;
        info.errors += status >= 500 ? count : 0;
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<Metrics::Gauge> FunctionRegistry::Gauges() const {
  Metrics::Gauge instances{"wasmlet_instances", "Instances of each function, busy or idle.", {}};
  Metrics::Gauge retiring{"wasmlet_instances_retiring",
                          "Instances of replaced or removed versions still finishing a request.",
                          {}};
  std::map<std::string, std::pair<size_t, size_t>> counts;
  std::map<std::string, size_t> old;
  const auto functions = AllFunctions();
  for (const auto& function : functions) {
    const PoolCounts now = function->Counts();
    auto& [busy, idle] = counts[function->route_id()];
    busy += now.busy;
    idle += now.live - now.busy;
    old[function->route_id()] += now.retiring;
  }
  for (const auto& [id, c] : counts) {
    instances.samples.emplace_back("{id=\"" + Metrics::Escape(id) + "\",state=\"busy\"}", c.first);
    instances.samples.emplace_back("{id=\"" + Metrics::Escape(id) + "\",state=\"idle\"}", c.second);
    retiring.samples.emplace_back("{id=\"" + Metrics::Escape(id) + "\"}", old[id]);
  }
  // What the host holds for each plugin outside its linear memory (guest_limits).
  Metrics::Gauge held{
      "wasmlet_guest_host_usage",
      "What the host holds for a plugin's VM id: shared data bytes, queue entries and bytes, metrics.",
      {}};
  Metrics::Gauge refusals{"wasmlet_guest_limit_refusals",
                          "Host calls of a plugin's VM id refused at a guest limit, since start.",
                          {}};
  for (const auto& function : functions) {
    const abi::HostUsage usage = function->services().shared->Usage(function->spec().vm_id);
    const std::string labels = "id=\"" + Metrics::Escape(function->route_id()) + "\",plugin=\"" +
                               Metrics::Escape(function->config().name) + "\"";
    held.samples.emplace_back("{" + labels + ",resource=\"shared_data_bytes\"}", usage.shared_data_bytes);
    held.samples.emplace_back("{" + labels + ",resource=\"queue_entries\"}", usage.queue_entries);
    held.samples.emplace_back("{" + labels + ",resource=\"queue_bytes\"}", usage.queue_bytes);
    held.samples.emplace_back("{" + labels + ",resource=\"metrics\"}", usage.metrics);
    refusals.samples.emplace_back("{" + labels + "}", usage.refusals);
  }
  const engine::CodeCacheStats cache = engine_.code_cache_stats();
  Metrics::Gauge code_cache{"wasmlet_code_cache_modules",
                            "Modules since start: loaded from the code cache (hit), compiled for want of an entry "
                            "(miss), entries ignored as corrupt or foreign (invalid), written, evicted.",
                            {{"{result=\"hit\"}", cache.hits},
                             {"{result=\"miss\"}", cache.misses},
                             {"{result=\"invalid\"}", cache.invalid},
                             {"{result=\"written\"}", cache.written},
                             {"{result=\"evicted\"}", cache.evicted}}};
  Metrics::Gauge cache_bytes{"wasmlet_code_cache_bytes", "The code cache's size on disk.", {{"", cache.bytes}}};
  return {instances, retiring, held, refusals, code_cache, cache_bytes};
}

bool FunctionRegistry::HasRoute(const std::string& route_id) const {
  return Table().routes.count(route_id) > 0;
}

size_t FunctionRegistry::function_count() const {
  MutexLock lock(mutex_);
  size_t n = 0;
  for (const auto& [route, list] : routes_) n += list.size();
  return n;
}

void FunctionRegistry::Shutdown() {
  if (stopping_.exchange(true)) return;  // once: the serving loops may have stopped since
  {
    MutexLock reload(reload_mutex_);  // waits for a reload in progress
  }
  watcher_.reset();
  std::vector<Pool> functions;
  {
    MutexLock lock(mutex_);
    for (const auto& [route, list] : routes_) functions.insert(functions.end(), list.begin(), list.end());
    routes_.clear();
    by_name_.clear();
    PublishLocked();
  }
  for (const auto& function : functions) {
    function->Retire(nullptr);
    function->DestroyWaiting();
  }
  // Wait until every loop has run what was posted so far (the retirements included). A move
  // to the pool in progress on the control loop finishes first (it retires what it starts).
  if (control_) control_->RunAndWait([] {});
  for (EventLoop* loop : context_.serving) loop->RunAndWait([] {});
  MutexLock lock(pool_mutex_);
  for (auto& loop : pool_loops_) loop->RunAndWait([] {});
}

}  // namespace wasmlet::server
