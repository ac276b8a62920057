#include "server/functions.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <fstream>
#include <future>
#include <iterator>
#include <thread>

#include "common/text.h"
#include "server/module_source.h"

namespace wasmlet::server {

// One version of one plugin item: its compiled module and its pool of instances.
class Function : public std::enable_shared_from_this<Function> {
 public:
  struct Slot {
    std::unique_ptr<abi::PluginVm> vm;
    Worker* worker = nullptr;
    bool busy = false;
    bool dead = false;     // no working instance; a restart is scheduled with back-off
    bool retired = false;  // taken out of service; its instance goes once idle
    std::chrono::milliseconds backoff{100};
    Clock::time_point next_tick{};  // when proxy_on_tick is due, if the instance asked for ticks
    // Its linear memory as of its last request (read on its worker, where the instance lives).
    std::atomic<uint64_t> memory_bytes{0};
  };
  struct Job {
    abi::HttpRequest request;
    Done done;
    std::atomic<bool> claimed{false};
  };

  PluginConfig config;
  std::shared_ptr<const abi::PluginSpec> spec;
  std::shared_ptr<const engine::Module> module;
  abi::HostServices services;
  Metrics* metrics = nullptr;
  engine::Watchdog* timers = nullptr;
  std::string route_id;
  std::string md5;
  std::chrono::milliseconds cpu_limit{0};
  std::chrono::milliseconds queue_timeout{0};
  size_t max_queued = 0;

  std::mutex mutex;
  std::vector<std::unique_ptr<Slot>> slots;
  std::deque<std::shared_ptr<Job>> waiting;
  bool retired = false;

  std::string Describe() const { return "function '" + route_id + "' (" + config.name + ")"; }

  static bool Usable(const Slot& slot) { return !slot.busy && !slot.dead && !slot.retired; }

  // Requires `mutex`. An idle slot, preferring (or, with only_there, requiring) `there`.
  Slot* TakeIdle(Worker* there, bool only_there) {
    Slot* any = nullptr;
    for (auto& slot : slots) {
      if (!Usable(*slot)) continue;
      if (slot->worker == there) {
        slot->busy = true;
        return slot.get();
      }
      if (!any) any = slot.get();
    }
    if (only_there || !any) return nullptr;
    any->busy = true;
    return any;
  }

  void Submit(std::shared_ptr<Job> job) {
    std::unique_lock lock(mutex);
    if (Slot* slot = TakeIdle(nullptr, false)) {
      lock.unlock();
      job->claimed = true;
      slot->worker->Post([self = shared_from_this(), slot, job](Worker&) { self->Run(slot, job); });
      return;
    }
    if (waiting.size() >= max_queued) {
      lock.unlock();
      job->done(Status(StatusCode::kResourceExhausted, Describe() + ": " + std::to_string(max_queued) +
                                                           " requests are already waiting for an instance"));
      return;
    }
    waiting.push_back(job);
    lock.unlock();
    std::weak_ptr<Job> weak = job;
    timers->Arm(Clock::now() + queue_timeout, [self = shared_from_this(), weak] {
      auto expired = weak.lock();
      if (!expired || expired->claimed.exchange(true)) return;  // already running
      {
        std::lock_guard guard(self->mutex);
        std::erase(self->waiting, expired);
      }
      expired->done(Status(StatusCode::kResourceExhausted,
                           "no instance of " + self->Describe() + " became free within " +
                               std::to_string(self->queue_timeout.count()) + " ms"));
    });
  }

  // On the slot's worker.
  void Run(Slot* slot, const std::shared_ptr<Job>& job) {
    auto result = Execute(*slot, std::move(job->request));
    slot->memory_bytes = slot->vm ? slot->vm->instance().MemorySize() : 0;
    job->done(std::move(result));
    Release(slot);
  }

  // On the slot's worker: hands the slot to the next waiting request, or marks it idle; a
  // retired slot's instance is destroyed instead.
  void Release(Slot* slot) {
    std::unique_lock lock(mutex);
    if (slot->retired) {
      slot->busy = false;
      lock.unlock();
      Destroy(*slot);
      return;
    }
    while (!slot->dead && !waiting.empty()) {
      auto next = std::move(waiting.front());
      waiting.pop_front();
      if (next->claimed.exchange(true)) continue;  // timed out meanwhile
      lock.unlock();
      slot->worker->Post([self = shared_from_this(), slot, next](Worker&) { self->Run(slot, next); });
      return;
    }
    slot->busy = false;
  }

  // On the slot's worker.
  void Destroy(Slot& slot) {
    std::unique_ptr<abi::PluginVm> vm;
    {
      std::lock_guard lock(mutex);  // other threads look at slot.vm (Gauges) under the lock
      vm = std::move(slot.vm);
    }
    if (!vm) return;
    vm.reset();
    slot.worker->store().CollectGarbage();  // give the instance's memory back now
  }

  // On the slot's worker, for an idle instance: its timer (proxy_on_tick) and the work other
  // instances caused for it (on_queue_ready), which no request of its own would run.
  void Housekeep(Slot& slot, Clock::time_point now) {
    bool tick = false;
    {
      std::lock_guard lock(mutex);
      if (!Usable(slot) || !slot.vm) return;
      const auto period = std::chrono::milliseconds(slot.vm->tick_period_ms());
      if (period.count() > 0) {
        if (slot.next_tick == Clock::time_point{})
          slot.next_tick = now + period;  // first tick after one period
        tick = now >= slot.next_tick;
        if (tick) slot.next_tick = now + period;
      } else {
        slot.next_tick = {};
      }
      if (!tick && !slot.vm->has_pending_work()) return;
      slot.busy = true;
    }
    Status status = tick ? slot.vm->Tick(now + cpu_limit) : Status::Ok();
    if (status.ok() && !slot.vm->failed() && slot.vm->has_pending_work()) {
      status = slot.vm->RunPendingWork(now + cpu_limit);
    }
    if (!status.ok()) spdlog::warn("{}: {}", Describe(), status.message());
    if (slot.vm->failed()) Replace(slot);
    Release(&slot);
  }

  // On the slot's worker.
  Result<abi::HttpResponse> Execute(Slot& slot, abi::HttpRequest request) {
    if (slot.dead || !slot.vm) return Status(StatusCode::kInternal, Describe() + " has no working instance");
    const auto deadline = Clock::now() + cpu_limit;
    auto result = slot.vm->HandleHttp(std::move(request), deadline);
    if (!slot.vm->failed() && slot.vm->has_pending_work()) {
      Status pending = slot.vm->RunPendingWork(Clock::now() + cpu_limit);
      if (!pending.ok()) spdlog::warn("{}: {}", Describe(), pending.message());
    }
    std::string memory_note;
    if (slot.vm->failed()) {
      // Near the cap, the likely cause is the memory limit: say so.
      const uint64_t used = slot.vm->instance().MemorySize();
      const uint64_t cap = module->max_memory_bytes();
      if (used * 10 >= cap * 9) {
        memory_note = " (it was using " + std::to_string(used >> 20) + " MiB of its " +
                      std::to_string(cap >> 20) + " MiB memory limit)";
      }
      Replace(slot);
    }
    if (result.ok()) return result;
    const Status& error = result.status();
    if (error.code() == StatusCode::kDeadlineExceeded) {
      metrics->CountEvent("deadline_kills", route_id);
      return Status(
          StatusCode::kDeadlineExceeded,
          Describe() + " ran past its " + std::to_string(cpu_limit.count()) + " ms limit and was stopped");
    }
    if (error.code() == StatusCode::kTrap || error.code() == StatusCode::kExit)
      metrics->CountEvent("traps", route_id);
    return Status(error.code(), Describe() + " failed: " + error.message() + memory_note);
  }

  // On the slot's worker: a failed instance is never reused (its state is undefined).
  void Replace(Slot& slot) {
    Destroy(slot);
    if (slot.retired) return;
    auto vm = abi::PluginVm::Create(slot.worker->store(), module, spec, services);
    if (vm.ok()) {
      std::lock_guard lock(mutex);
      slot.vm = std::move(*vm);
      slot.backoff = std::chrono::milliseconds(100);
      return;
    }
    metrics->CountEvent("start_failures", route_id);
    {
      std::lock_guard lock(mutex);
      slot.dead = true;
    }
    spdlog::error("{}: cannot start a replacement instance, retrying in {} ms: {}", Describe(),
                  slot.backoff.count(), vm.status().message());
    // Back off: a function that keeps failing at start must not spin.
    Slot* raw = &slot;
    timers->Arm(Clock::now() + slot.backoff, [self = shared_from_this(), raw] {
      raw->worker->Post([self, raw](Worker&) { self->Revive(*raw); });
    });
    slot.backoff = std::min(slot.backoff * 2, std::chrono::milliseconds(30000));
  }

  // On the slot's worker.
  void Revive(Slot& slot) {
    {
      std::lock_guard lock(mutex);
      if (!slot.dead || slot.retired) return;
      slot.dead = false;
      slot.busy = true;
    }
    Replace(slot);
    Release(&slot);
  }
};

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

}  // namespace

FunctionRegistry::FunctionRegistry(const ServerConfig& config, engine::Engine& engine,
                                   abi::HostServices services, Metrics& metrics)
    : config_(config),
      engine_(engine),
      services_(std::move(services)),
      metrics_(metrics),
      watcher_(std::make_unique<FileWatcher>(std::chrono::milliseconds(200),
                                             std::chrono::milliseconds(config.max_reload_delay_ms))) {
  int workers = config.workers > 0 ? config.workers
                                   : 2 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < workers; ++i) workers_.push_back(std::make_unique<Worker>(engine_, i));
  for (auto& worker : workers_) worker->WaitReady();  // they start in parallel
  ScheduleHousekeeping();
}

void FunctionRegistry::ScheduleHousekeeping() {
  // Every 10 ms each worker looks after its idle instances' ticks and queue notifications.
  // The timer only posts; worker 0's job arms the next round (a timer callback cannot).
  timers_.Arm(Clock::now() + std::chrono::milliseconds(10), [this] {
    if (stopping_) return;
    for (auto& worker : workers_) {
      worker->Post([this, first = worker.get() == workers_.front().get()](Worker& here) {
        const auto functions = AllFunctions();
        const auto now = Clock::now();
        for (const auto& function : functions) {
          std::vector<Function::Slot*> mine;
          {
            std::lock_guard lock(function->mutex);  // slots may be added meanwhile
            for (auto& slot : function->slots) {
              if (slot->worker == &here) mine.push_back(slot.get());
            }
          }
          for (Function::Slot* slot : mine) function->Housekeep(*slot, now);
        }
        if (first && !stopping_) ScheduleHousekeeping();
      });
    }
  });
}

FunctionRegistry::~FunctionRegistry() {
  Shutdown();
  workers_.clear();
}

Status FunctionRegistry::LoadAll() {
  if (config_.plugins.empty()) {
    spdlog::info("the config lists no functions: serving none until they are installed (POST /wasm/install)");
    return Status::Ok();
  }
  std::vector<Status> errors;
  for (const PluginConfig& plugin : config_.plugins) {
    {
      std::lock_guard lock(mutex_);
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
  if (plugin.vm.path.empty()) return;  // URLs are not watched
  const std::string name = plugin.name;
  if (watcher_)
    watcher_->Watch(plugin.vm.path, [this, name] {
      Status status = Reload(name);
      if (!status.ok())
        spdlog::error("reloading {}: {} (the running version, if any, keeps serving)", name,
                      status.message());
    });
}

Result<std::shared_ptr<Function>> FunctionRegistry::Build(const PluginConfig& plugin) {
  const std::string where = "config " + plugin.json_path + ".vm_config";
  auto bytes = ReadModule(plugin, where, {.max_bytes = config_.max_module_bytes});
  if (!bytes.ok()) return bytes.status();
  auto md5 = Md5Hex(*bytes);
  if (!md5.ok()) return md5.status();
  if (!plugin.vm.md5.empty() && *md5 != abi::ToLower(plugin.vm.md5)) {
    return InvalidArgument(where + ".md5: " + (plugin.vm.path.empty() ? plugin.vm.url : plugin.vm.path) +
                           " has MD5 " + *md5 + ", not " + plugin.vm.md5 +
                           " (a different build of the module?)");
  }
  const std::string source = plugin.vm.path.empty() ? plugin.vm.url : plugin.vm.path;
  const uint32_t mem_mb = plugin.vm.mem_mb ? plugin.vm.mem_mb : config_.default_mem_mb;
  auto module = engine_.Compile(*bytes, {.max_memory_bytes = uint64_t{mem_mb} << 20});
  if (!module.ok()) {
    return Status(module.status().code(), where + (plugin.vm.path.empty() ? ".url: " : ".path: ") + source +
                                              ": " + module.status().message());
  }

  auto spec = std::make_shared<abi::PluginSpec>();
  spec->name = plugin.name;
  spec->root_id = plugin.root_id;
  spec->vm_id = plugin.string_keys.count("vm_id") ? plugin.string_keys.at("vm_id") : plugin.name;
  spec->root_context_id = plugin.root_context_id;
  spec->vm_configuration = VmConfigurationBytes(plugin);
  spec->plugin_configuration = PluginConfigurationBytes(plugin);

  auto function = std::make_shared<Function>();
  function->config = plugin;
  function->spec = spec;
  function->module = *module;
  function->services = services_;
  function->metrics = &metrics_;
  function->timers = &timers_;
  function->md5 = *md5;
  function->cpu_limit =
      std::chrono::milliseconds(plugin.vm.cpu_ms ? plugin.vm.cpu_ms : config_.default_cpu_ms);
  function->queue_timeout = std::chrono::milliseconds(config_.queue_timeout_ms);
  function->max_queued = config_.max_queued;

  const int count = plugin.instance_num > 0
                        ? plugin.instance_num
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  Status started = AddInstances(function, count);
  if (!started.ok()) {
    Retire(function, nullptr);
    return Status(started.code(),
                  "config " + plugin.json_path + ": " + source + " does not start: " + started.message());
  }
  bool same_ids = true;
  {
    std::lock_guard lock(function->mutex);
    for (auto& slot : function->slots) {
      if (function->route_id.empty()) function->route_id = slot->vm->route_id();
      same_ids = same_ids && slot->vm->route_id() == function->route_id;
    }
  }
  if (!same_ids) {
    Retire(function, nullptr);
    return InvalidArgument("config " + plugin.json_path + ": instances of " + source +
                           " reported different ids");
  }
  if (Status bad_id = CheckRouteId(function->route_id); !bad_id.ok()) {
    Retire(function, nullptr);
    return InvalidArgument("config " + plugin.json_path + ": " + source + " cannot be routed to: " +
                           bad_id.message() + " (its proxy_get_id export, or the item's name)");
  }
  return function;
}

Status FunctionRegistry::AddInstances(const std::shared_ptr<Function>& function, int count) {
  std::vector<std::future<Status>> started;
  std::vector<std::unique_ptr<Function::Slot>> slots;
  for (int i = 0; i < count; ++i) {
    auto slot = std::make_unique<Function::Slot>();
    slot->worker = workers_[next_worker_++ % workers_.size()].get();
    auto promise = std::make_shared<std::promise<Status>>();
    started.push_back(promise->get_future());
    Function::Slot* raw = slot.get();
    raw->worker->Post([function, raw, promise](Worker& worker) {
      auto vm = abi::PluginVm::Create(worker.store(), function->module, function->spec, function->services);
      if (!vm.ok()) {
        promise->set_value(vm.status());
        return;
      }
      raw->memory_bytes = (*vm)->instance().MemorySize();
      raw->vm = std::move(*vm);
      promise->set_value(Status::Ok());
    });
    slots.push_back(std::move(slot));
  }
  Status failed;
  for (auto& f : started) {
    Status s = f.get();
    if (!s.ok() && failed.ok()) failed = s;
  }
  std::lock_guard lock(function->mutex);
  for (auto& slot : slots) {
    if (!failed.ok()) slot->retired = true;  // destroyed with the function's other slots
    function->slots.push_back(std::move(slot));
  }
  return failed;
}

void FunctionRegistry::Register(const std::shared_ptr<Function>& function) {
  std::lock_guard lock(mutex_);
  routes_[function->route_id].push_back(function);
  by_name_[function->config.name] = function;
  const size_t count = function->slots.size();
  spdlog::info("function '{}' ({}, {}): {} instance{}", function->route_id, function->config.name,
               function->config.vm.path.empty() ? function->config.vm.url : function->config.vm.path, count,
               count == 1 ? "" : "s");
  if (function->config.vm.engine == "wasmtime" || function->config.vm.engine == "wasmer") {
    static std::once_flag noticed;
    std::call_once(noticed, [&] {
      spdlog::info("vm_config.engine \"{}\": wasmlet runs every module on V8", function->config.vm.engine);
    });
  }
}

void FunctionRegistry::Retire(const std::shared_ptr<Function>& old,
                              const std::shared_ptr<Function>& successor) {
  std::deque<std::shared_ptr<Function::Job>> waiting;
  {
    std::lock_guard lock(old->mutex);
    old->retired = true;
    waiting.swap(old->waiting);
    for (auto& slot : old->slots) {
      slot->retired = true;
      // The instance goes on its own thread: now if idle, else when its request ends.
      slot->worker->Post([old, raw = slot.get()](Worker&) {
        bool idle;
        {
          std::lock_guard guard(old->mutex);
          idle = !raw->busy;
        }
        if (idle) old->Destroy(*raw);
      });
    }
  }
  for (auto& job : waiting) {
    if (job->claimed) continue;
    if (successor) {
      successor->Submit(job);
    } else if (!job->claimed.exchange(true)) {
      job->done(Status(StatusCode::kResourceExhausted,
                       old->Describe() + " was uninstalled while the request waited"));
    }
  }
}

Result<std::string> FunctionRegistry::Install(const PluginConfig& plugin) {
  std::lock_guard reload(reload_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (by_name_.count(plugin.name)) {
      return Status(StatusCode::kFailedPrecondition,
                    "a function named '" + plugin.name +
                        "' is already installed; use /wasm/update or uninstall it first");
    }
  }
  auto function = Build(plugin);
  if (!function.ok()) return function.status();
  {
    std::lock_guard lock(mutex_);
    known_[plugin.name] = plugin;
  }
  Register(*function);
  Watch(plugin);
  return (*function)->route_id;
}

Status FunctionRegistry::Uninstall(const std::string& route_id) {
  std::lock_guard reload(reload_mutex_);
  std::vector<std::shared_ptr<Function>> removed;
  {
    std::lock_guard lock(mutex_);
    auto it = routes_.find(route_id);
    if (it == routes_.end())
      return NotFound("no function is registered under id '" + Printable(route_id, 128) + "'");
    removed = std::move(it->second);
    routes_.erase(it);
    for (const auto& function : removed) {
      by_name_.erase(function->config.name);
      known_.erase(function->config.name);
    }
  }
  for (const auto& function : removed) {
    if (watcher_) watcher_->Unwatch(function->config.vm.path);
    Retire(function, nullptr);
  }
  return Status::Ok();
}

Status FunctionRegistry::UninstallPlugin(const std::string& name) {
  std::lock_guard reload(reload_mutex_);
  std::shared_ptr<Function> removed;
  {
    std::lock_guard lock(mutex_);
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return NotFound("no plugin named '" + name + "' is installed");
    removed = it->second;
    by_name_.erase(it);
    known_.erase(name);
    auto route = routes_.find(removed->route_id);
    if (route != routes_.end()) {
      std::erase(route->second, removed);
      if (route->second.empty()) routes_.erase(route);
    }
  }
  if (watcher_) watcher_->Unwatch(removed->config.vm.path);
  Retire(removed, nullptr);
  return Status::Ok();
}

Status FunctionRegistry::Update(const std::string& route_id, int instance_num) {
  std::lock_guard reload(reload_mutex_);
  std::vector<std::shared_ptr<Function>> functions;
  {
    std::lock_guard lock(mutex_);
    auto it = routes_.find(route_id);
    if (it == routes_.end())
      return NotFound("no function is registered under id '" + Printable(route_id, 128) + "'");
    functions = it->second;
  }
  if (instance_num <= 0) instance_num = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (const auto& function : functions) {
    int live = 0;
    {
      std::lock_guard lock(function->mutex);
      for (auto& slot : function->slots) live += !slot->retired;
      // Shrink: retire the surplus (idle ones first: they go at once).
      for (auto& slot : function->slots) {
        if (live <= instance_num) break;
        if (slot->retired || slot->busy) continue;
        slot->retired = true;
        --live;
        slot->worker->Post([function, raw = slot.get()](Worker&) { function->Destroy(*raw); });
      }
      for (auto& slot : function->slots) {
        if (live <= instance_num) break;
        if (slot->retired) continue;
        slot->retired = true;  // busy: destroyed when its request ends
        --live;
      }
    }
    if (live < instance_num) WASMLET_RETURN_IF_ERROR(AddInstances(function, instance_num - live));
    function->config.instance_num = instance_num;
    {
      std::lock_guard lock(mutex_);
      if (known_.count(function->config.name)) known_[function->config.name].instance_num = instance_num;
    }
  }
  spdlog::info("function '{}': {} instance{} each", route_id, instance_num, instance_num == 1 ? "" : "s");
  return Status::Ok();
}

Status FunctionRegistry::Reload(const std::string& name) {
  std::lock_guard reload(reload_mutex_);
  PluginConfig plugin;
  std::shared_ptr<Function> old;
  {
    std::lock_guard lock(mutex_);
    auto known = known_.find(name);
    if (known == known_.end()) return NotFound("no function named '" + name + "'");
    plugin = known->second;
    if (auto it = by_name_.find(name); it != by_name_.end()) old = it->second;
  }
  auto fresh = Build(plugin);
  if (!fresh.ok()) return fresh.status();
  if (old && (*fresh)->md5 == old->md5) {  // same bytes (a touch, or a second event): keep what runs
    Retire(*fresh, nullptr);
    return Status::Ok();
  }
  {
    // The switch: from here on, new requests reach the new version only.
    std::lock_guard lock(mutex_);
    if (old) {
      auto& route = routes_[old->route_id];
      std::erase(route, old);
      if (route.empty()) routes_.erase(old->route_id);
    }
    routes_[(*fresh)->route_id].push_back(*fresh);
    by_name_[name] = *fresh;
  }
  if (old) {
    Retire(old, *fresh);
    metrics_.CountEvent("reloads", (*fresh)->route_id);
    spdlog::info("function '{}' ({}): switched to the new version of {}", (*fresh)->route_id, name,
                 plugin.vm.path);
  } else {
    spdlog::info("function '{}' ({}): loaded {}", (*fresh)->route_id, name, plugin.vm.path);
  }
  return Status::Ok();
}

std::shared_ptr<Function> FunctionRegistry::Pick(const std::string& route_id) {
  std::lock_guard lock(mutex_);
  auto it = routes_.find(route_id);
  if (it == routes_.end() || it->second.empty()) return nullptr;
  if (it->second.size() == 1) return it->second.front();
  std::uniform_int_distribution<size_t> pick(0, it->second.size() - 1);
  return it->second[pick(random_)];
}

void FunctionRegistry::Dispatch(const std::string& route_id, abi::HttpRequest request, Done done) {
  auto function = Pick(route_id);
  if (!function) {
    done(NotFound("no function is registered under id '" + Printable(route_id, 128) + "'"));
    return;
  }
  auto job = std::make_shared<Function::Job>();
  job->request = std::move(request);
  job->done = std::move(done);
  function->Submit(std::move(job));
}

Result<abi::HttpResponse> FunctionRegistry::InvokeInProcess(const std::string& route_id,
                                                            abi::HttpRequest request) {
  auto function = Pick(route_id);
  if (!function) return NotFound("no function is registered under id '" + Printable(route_id, 128) + "'");
  Worker* here = Worker::Current();
  Function::Slot* slot = nullptr;
  {
    std::lock_guard lock(function->mutex);
    slot = function->TakeIdle(here, /*only_there=*/true);
  }
  if (slot) {  // nested, on this thread, on another instance
    auto result = function->Execute(*slot, std::move(request));
    function->Release(slot);
    return result;
  }
  auto promise = std::make_shared<std::promise<Result<abi::HttpResponse>>>();
  auto answer = promise->get_future();
  auto job = std::make_shared<Function::Job>();
  job->request = std::move(request);
  job->done = [promise](Result<abi::HttpResponse> r) { promise->set_value(std::move(r)); };
  function->Submit(job);
  if (answer.wait_for(std::chrono::milliseconds(config_.invoke_timeout_ms)) != std::future_status::ready) {
    // Still waiting for an instance: cancel it, so that it does not run later for nobody. One
    // that already runs cannot be taken back; its answer is dropped.
    const bool cancelled = !job->claimed.exchange(true);
    if (cancelled) metrics_.CountEvent("invokes_cancelled", function->route_id);
    return Status(StatusCode::kDeadlineExceeded,
                  function->Describe() + " did not answer within " +
                      std::to_string(config_.invoke_timeout_ms) + " ms" +
                      (cancelled ? " (the call was cancelled before it ran)" : ""));
  }
  return answer.get();
}

std::vector<std::shared_ptr<Function>> FunctionRegistry::AllFunctions() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<Function>> functions;
  for (const auto& [route, list] : routes_) functions.insert(functions.end(), list.begin(), list.end());
  return functions;
}

std::vector<FunctionInfo> FunctionRegistry::List() const {
  const auto functions = AllFunctions();
  std::vector<FunctionInfo> out;
  for (const auto& function : functions) {
    FunctionInfo info;
    info.id = function->route_id;
    info.name = function->config.name;
    info.file = function->config.vm.path.empty() ? function->config.vm.url : function->config.vm.path;
    info.md5 = function->md5;
    {
      std::lock_guard lock(function->mutex);
      for (const auto& slot : function->slots) {
        if (slot->retired) continue;
        info.instances++;
        info.busy += slot->busy;
        info.memory_bytes += slot->memory_bytes;
      }
    }
    info.memory_limit_bytes = info.instances * function->module->max_memory_bytes();
    info.host = function->services.shared->Usage(function->spec->vm_id);
    info.requests = metrics_.requests(info.id);
    info.errors = metrics_.errors(info.id);
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
    std::lock_guard lock(function->mutex);
    auto& [busy, idle] = counts[function->route_id];
    for (const auto& slot : function->slots) {
      if (slot->retired) {
        old[function->route_id] += slot->vm != nullptr;
        continue;
      }
      (slot->busy ? busy : idle)++;
    }
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
    const abi::HostUsage usage = function->services.shared->Usage(function->spec->vm_id);
    const std::string labels = "id=\"" + Metrics::Escape(function->route_id) + "\",plugin=\"" +
                               Metrics::Escape(function->config.name) + "\"";
    held.samples.emplace_back("{" + labels + ",resource=\"shared_data_bytes\"}", usage.shared_data_bytes);
    held.samples.emplace_back("{" + labels + ",resource=\"queue_entries\"}", usage.queue_entries);
    held.samples.emplace_back("{" + labels + ",resource=\"queue_bytes\"}", usage.queue_bytes);
    held.samples.emplace_back("{" + labels + ",resource=\"metrics\"}", usage.metrics);
    refusals.samples.emplace_back("{" + labels + "}", usage.refusals);
  }
  return {instances, retiring, held, refusals};
}

bool FunctionRegistry::HasRoute(const std::string& route_id) const {
  std::lock_guard lock(mutex_);
  return routes_.count(route_id) > 0;
}

size_t FunctionRegistry::function_count() const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (const auto& [route, list] : routes_) n += list.size();
  return n;
}

void FunctionRegistry::Shutdown() {
  stopping_ = true;
  {
    std::lock_guard reload(reload_mutex_);  // waits for a reload in progress
  }
  watcher_.reset();
  std::vector<std::shared_ptr<Function>> functions;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [route, list] : routes_) functions.insert(functions.end(), list.begin(), list.end());
    routes_.clear();
    by_name_.clear();
  }
  for (const auto& function : functions) Retire(function, nullptr);
  // Wait until every worker has run what was posted so far (the retirements included).
  for (auto& worker : workers_) {
    std::promise<void> drained;
    worker->Post([&drained](Worker&) { drained.set_value(); });
    drained.get_future().wait();
  }
}

}  // namespace wasmlet::server
