#include "server/functions.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <fstream>
#include <future>
#include <iterator>
#include <thread>

namespace wasmlet::server {

// One plugin item: its compiled module and its pool of instances.
class Function : public std::enable_shared_from_this<Function> {
 public:
  struct Slot {
    std::unique_ptr<abi::PluginVm> vm;
    Worker* worker = nullptr;
    bool busy = false;
    bool dead = false;  // could not be replaced after a failure; never used again
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
  std::string route_id;
  std::chrono::milliseconds cpu_limit{0};
  std::chrono::milliseconds queue_timeout{0};
  size_t max_queued = 0;

  std::mutex mutex;
  std::vector<std::unique_ptr<Slot>> slots;
  std::deque<std::shared_ptr<Job>> waiting;

  std::string Describe() const { return "function '" + route_id + "' (" + config.name + ")"; }

  // Requires `mutex`. An idle slot, preferring (or, with only_there, requiring) `there`.
  Slot* TakeIdle(Worker* there, bool only_there) {
    Slot* any = nullptr;
    for (auto& slot : slots) {
      if (slot->busy || slot->dead) continue;
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

  void Submit(std::shared_ptr<Job> job, engine::Watchdog& timers) {
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
    timers.Arm(Clock::now() + queue_timeout, [self = shared_from_this(), weak] {
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
    auto result = Execute(*slot, job->request);
    job->done(std::move(result));
    Release(slot);
  }

  // On the slot's worker: hands the slot to the next waiting request, or marks it idle.
  void Release(Slot* slot) {
    std::unique_lock lock(mutex);
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
  Result<abi::HttpResponse> Execute(Slot& slot, const abi::HttpRequest& request) {
    if (slot.dead || !slot.vm) return Status(StatusCode::kInternal, Describe() + " has no working instance");
    const auto deadline = Clock::now() + cpu_limit;
    auto result = slot.vm->HandleHttp(request, deadline);
    if (!slot.vm->failed() && slot.vm->has_pending_work()) {
      Status pending = slot.vm->RunPendingWork(Clock::now() + cpu_limit);
      if (!pending.ok()) spdlog::warn("{}: {}", Describe(), pending.message());
    }
    if (slot.vm->failed()) Replace(slot);
    if (result.ok()) return result;
    const Status& error = result.status();
    if (error.code() == StatusCode::kDeadlineExceeded) {
      return Status(
          StatusCode::kDeadlineExceeded,
          Describe() + " ran past its " + std::to_string(cpu_limit.count()) + " ms limit and was stopped");
    }
    return Status(error.code(), Describe() + " failed: " + error.message());
  }

  // On the slot's worker: a failed instance is never reused (its state is undefined).
  void Replace(Slot& slot) {
    slot.vm.reset();
    auto vm = abi::PluginVm::Create(slot.worker->store(), module, spec, services);
    if (vm.ok()) {
      slot.vm = std::move(*vm);
      return;
    }
    slot.dead = true;
    spdlog::error("{}: cannot replace a failed instance: {}", Describe(), vm.status().message());
  }
};

namespace {

Result<std::string> Md5Hex(const std::vector<uint8_t>& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_md5(), nullptr) != 1) {
    return Internal("OpenSSL could not compute an MD5 digest");
  }
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

FunctionRegistry::FunctionRegistry(const ServerConfig& config, engine::Engine& engine,
                                   abi::HostServices services)
    : config_(config), engine_(engine), services_(std::move(services)) {
  int workers = config.workers > 0 ? config.workers
                                   : 2 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < workers; ++i) workers_.push_back(std::make_unique<Worker>(engine_, i));
}

FunctionRegistry::~FunctionRegistry() {
  Shutdown();
  workers_.clear();
}

Status FunctionRegistry::LoadAll() {
  std::vector<Status> errors;
  for (const PluginConfig& plugin : config_.plugins) {
    Status status = Load(plugin);
    if (!status.ok()) errors.push_back(status);
  }
  if (function_count() == 0) {
    // Nothing to serve: the caller reports the reason (one line) and stops.
    if (errors.empty()) return InvalidArgument("the config lists no functions");
    std::string message = errors.front().message();
    for (size_t i = 1; i < errors.size(); ++i) message += "; " + errors[i].message();
    return Status(errors.front().code(), message);
  }
  // The functions that did load serve; the others are reported and skipped.
  for (const Status& error : errors) spdlog::error("{} (this function is not served)", error.message());
  return Status::Ok();
}

Status FunctionRegistry::Load(const PluginConfig& plugin) {
  const std::string where = "config " + plugin.json_path + ".vm_config";
  if (plugin.vm.path.empty()) {
    return Unimplemented(
        where +
        ".url: loading modules from a URL is not supported yet; download the file and give its \"path\"");
  }
  std::ifstream in(plugin.vm.path, std::ios::binary);
  if (!in) {
    return NotFound(where + ".path: cannot read " + plugin.vm.path + ": " + std::strerror(errno) +
                    " (paths are relative to the directory wasmlet runs in)");
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!plugin.vm.md5.empty()) {
    auto md5 = Md5Hex(bytes);
    if (!md5.ok()) return md5.status();
    if (*md5 != Lower(plugin.vm.md5)) {
      return InvalidArgument(where + ".md5: " + plugin.vm.path + " has MD5 " + *md5 + ", not " +
                             plugin.vm.md5 + " (a different build of the module?)");
    }
  }
  const uint32_t mem_mb = plugin.vm.mem_mb ? plugin.vm.mem_mb : config_.default_mem_mb;
  auto module = engine_.Compile(bytes, {.max_memory_bytes = uint64_t{mem_mb} << 20});
  if (!module.ok())
    return Status(module.status().code(),
                  where + ".path: " + plugin.vm.path + ": " + module.status().message());

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
  function->cpu_limit =
      std::chrono::milliseconds(plugin.vm.cpu_ms ? plugin.vm.cpu_ms : config_.default_cpu_ms);
  function->queue_timeout = std::chrono::milliseconds(config_.queue_timeout_ms);
  function->max_queued = config_.max_queued;

  // Start the instances, each on its worker's thread.
  const int count = plugin.instance_num > 0
                        ? plugin.instance_num
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::future<Status>> started;
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
      raw->vm = std::move(*vm);
      promise->set_value(Status::Ok());
    });
    function->slots.push_back(std::move(slot));
  }
  Status failed;
  for (auto& f : started) {
    Status s = f.get();
    if (!s.ok() && failed.ok()) failed = s;
  }
  for (auto& slot : function->slots) {
    if (failed.ok() && slot->vm && function->route_id.empty()) function->route_id = slot->vm->route_id();
    if (failed.ok() && slot->vm && slot->vm->route_id() != function->route_id) {
      failed = InvalidArgument("instances reported different ids (" + function->route_id + ", " +
                               slot->vm->route_id() + ")");
    }
  }
  if (!failed.ok()) {
    for (auto& slot : function->slots) {
      std::promise<void> gone;
      slot->worker->Post([&slot, &gone](Worker&) {
        slot->vm.reset();
        gone.set_value();
      });
      gone.get_future().wait();
    }
    return Status(failed.code(), "config " + plugin.json_path + ": " + plugin.vm.path +
                                     " does not start: " + failed.message());
  }
  spdlog::info("function '{}' ({}, {}): {} instance{}", function->route_id, plugin.name, plugin.vm.path,
               count, count == 1 ? "" : "s");
  if (plugin.vm.engine == "wasmtime" || plugin.vm.engine == "wasmer") {
    static std::once_flag noticed;
    std::call_once(noticed, [&] {
      spdlog::info("vm_config.engine \"{}\": wasmlet runs every module on V8", plugin.vm.engine);
    });
  }
  std::lock_guard lock(mutex_);
  routes_[function->route_id].push_back(function);
  functions_.push_back(function);
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
    done(NotFound("no function is registered under id '" + route_id + "'"));
    return;
  }
  auto job = std::make_shared<Function::Job>();
  job->request = std::move(request);
  job->done = std::move(done);
  function->Submit(std::move(job), timers_);
}

Result<abi::HttpResponse> FunctionRegistry::InvokeInProcess(const std::string& route_id,
                                                            abi::HttpRequest request) {
  auto function = Pick(route_id);
  if (!function) return NotFound("no function is registered under id '" + route_id + "'");
  Worker* here = Worker::Current();
  Function::Slot* slot = nullptr;
  {
    std::lock_guard lock(function->mutex);
    slot = function->TakeIdle(here, /*only_there=*/true);
  }
  if (slot) {  // nested, on this thread, on another instance
    auto result = function->Execute(*slot, request);
    function->Release(slot);
    return result;
  }
  auto promise = std::make_shared<std::promise<Result<abi::HttpResponse>>>();
  auto answer = promise->get_future();
  auto job = std::make_shared<Function::Job>();
  job->request = std::move(request);
  job->done = [promise](Result<abi::HttpResponse> r) { promise->set_value(std::move(r)); };
  function->Submit(job, timers_);
  if (answer.wait_for(std::chrono::milliseconds(config_.invoke_timeout_ms)) != std::future_status::ready) {
    return Status(StatusCode::kDeadlineExceeded, function->Describe() + " did not answer within " +
                                                     std::to_string(config_.invoke_timeout_ms) + " ms");
  }
  return answer.get();
}

std::vector<std::string> FunctionRegistry::Routes() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [route, functions] : routes_) out.push_back(route);
  return out;
}

size_t FunctionRegistry::function_count() const {
  std::lock_guard lock(mutex_);
  return functions_.size();
}

void FunctionRegistry::Shutdown() {
  std::vector<std::shared_ptr<Function>> functions;
  {
    std::lock_guard lock(mutex_);
    functions.swap(functions_);
    routes_.clear();
  }
  for (auto& function : functions) {
    for (auto& slot : function->slots) {
      std::promise<void> gone;
      slot->worker->Post([&slot, &gone](Worker&) {
        slot->vm.reset();
        gone.set_value();
      });
      gone.get_future().wait();
    }
  }
}

}  // namespace wasmlet::server
