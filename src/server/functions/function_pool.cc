#include "server/functions/function_pool.h"

#include <spdlog/spdlog.h>

#include <time.h>
#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <future>

namespace wasmlet::server {
namespace {

// The route ids of the functions a guest call on this thread is nested in, outermost first:
// the chain proxy_invoke_service calls walk. Pointers into pools that are running (each keeps
// itself alive for the length of its Execute).
thread_local std::vector<const std::string*> invoke_chain;

class ChainEntry {
 public:
  explicit ChainEntry(const std::string* id) { invoke_chain.push_back(id); }
  ~ChainEntry() { invoke_chain.pop_back(); }
  ChainEntry(const ChainEntry&) = delete;
  ChainEntry& operator=(const ChainEntry&) = delete;
};

// The chain a job was called from on another thread, put back on this one while it runs.
class ChainPrefix {
 public:
  explicit ChainPrefix(const std::vector<std::string>& ids) : count_(ids.size()) {
    for (const std::string& id : ids) invoke_chain.push_back(&id);
  }
  ~ChainPrefix() { invoke_chain.resize(invoke_chain.size() - count_); }
  ChainPrefix(const ChainPrefix&) = delete;
  ChainPrefix& operator=(const ChainPrefix&) = delete;

 private:
  size_t count_;
};

// The cost of a request is measured on the steady clock (see BlockingCall); its deadlines are
// times of its instance's clock.
using RealClock = std::chrono::steady_clock;

// Nanoseconds this thread spent blocked in host calls (BlockingCall), since it started.
thread_local int64_t blocked_ns = 0;

struct CpuSample {
  RealClock::time_point at{};
  int64_t cpu_ns = 0;
};

int64_t ThreadCpuNs() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return int64_t{now.tv_sec} * 1000000000 + now.tv_nsec;
}

std::string DescribeChain(const std::string& last) {
  std::string out;
  for (const std::string* id : invoke_chain) out += *id + " -> ";
  return out + last;
}

}  // namespace

BlockingCall::BlockingCall() : start_(RealClock::now()) {}

BlockingCall::~BlockingCall() {
  blocked_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(RealClock::now() - start_).count();
}

// vm, busy, waiting, dead and retired change only with the pool's mutex_ held; the slot's loop,
// the only writer of vm and dead, reads those two without it. Prose, not GUARDED_BY: a Slot has
// no name for its pool's mutex.
struct FunctionPool::Slot {
  std::unique_ptr<abi::PluginVm> vm;  // used only on `loop`
  EventLoop* loop = nullptr;
  bool pooled = false;  // on a pool loop (else a serving loop)
  bool busy = false;
  // Requests whose function waits for an outbound call: the instance takes others meanwhile
  // (each in a context of its own), and is not destroyed before they end.
  uint32_t waiting = 0;
  bool dead = false;        // no working instance; a restart is scheduled with back-off
  bool retired = false;     // out of service; its instance goes once idle
  bool tick_armed = false;  // on `loop` only
  std::chrono::milliseconds backoff{100};
  std::atomic<uint64_t> memory_bytes{0};  // its linear memory as of its last guest call
};

struct FunctionPool::Job {
  abi::HttpRequest request;
  Done done;
  std::atomic<bool> claimed{false};  // taken by an instance, or given up on
  std::vector<std::string> chain;    // the invoke chain it was called from
  EventLoop* home = nullptr;         // where its queue timer runs
};

FunctionPool::FunctionPool(Params params, PoolContext& context)
    : config_(std::move(params.config)),
      spec_(std::move(params.spec)),
      module_(std::move(params.module)),
      services_(std::move(params.services)),
      md5_(std::move(params.md5)),
      cpu_limit_(params.cpu_limit),
      context_(context),
      route_id_(config_.name) {}

FunctionPool::~FunctionPool() {
  for (auto& slot : slots_) {
    if (!slot->vm) continue;
    // An instance may only be destroyed on its loop's thread; this is a bug upstream (the
    // registry retires and drains before pools go). Leaking it is better than a crash.
    spdlog::error("{}: an instance outlived its pool; leaking it", Describe());
    (void)slot->vm.release();
  }
}

bool FunctionPool::Usable(const Slot& slot) const {
  return !slot.busy && !slot.dead && !slot.retired && (slot.pooled || placement_ != Placement::kMoving);
}

void FunctionPool::ServeWaitingLocked() {
  for (auto& slot : slots_) {
    if (waiting_.empty()) return;
    if (Usable(*slot)) GiveNextJobLocked(slot.get());
  }
}

bool FunctionPool::GiveNextJobLocked(Slot* slot) {
  while (!waiting_.empty()) {
    auto next = std::move(waiting_.front());
    waiting_.pop_front();
    if (next->claimed.exchange(true)) continue;  // timed out meanwhile
    slot->busy = true;
    slot->loop->Post([self = shared_from_this(), slot, next] { self->RunJob(slot, next); });
    return true;
  }
  return false;
}

void FunctionPool::DestroyLaterLocked(Slot* slot) {
  slot->loop->Post([self = shared_from_this(), slot] { self->DestroyIfIdle(*slot); });
}

void FunctionPool::DestroyIfIdle(Slot& slot) {
  {
    MutexLock lock(mutex_);
    if (slot.busy || slot.waiting > 0) return;  // whoever ends the last request destroys it
  }
  Destroy(slot);
}

void FunctionPool::DestroyWaiting() {
  MutexLock lock(mutex_);
  for (auto& slot : slots_) {
    if (slot->vm && slot->waiting > 0)
      slot->loop->Post([self = shared_from_this(), raw = slot.get()] { self->Destroy(*raw); });
  }
}

void FunctionPool::EndWait(Slot* slot) {
  bool destroy = false;
  {
    MutexLock lock(mutex_);
    --slot->waiting;
    destroy = slot->retired && !slot->busy && slot->waiting == 0;
  }
  if (destroy) Destroy(*slot);
}

FunctionPool::Slot* FunctionPool::TakeIdleHere() {
  EventLoop* here = EventLoop::Current();
  if (!here) return nullptr;
  MutexLock lock(mutex_);
  return retired_ ? nullptr : TakeIdle(here, /*only_here=*/true);
}

FunctionPool::Slot* FunctionPool::TakeIdle(EventLoop* here, bool only_here) {
  Slot* any = nullptr;
  for (auto& slot : slots_) {
    if (!Usable(*slot)) continue;
    if (slot->loop == here) {
      slot->busy = true;
      return slot.get();
    }
    if (!any) any = slot.get();
  }
  if (only_here || !any) return nullptr;
  any->busy = true;
  return any;
}

// ---- Requests ----------------------------------------------------------------------------------

void FunctionPool::Run(abi::HttpRequest request, Done done) {
  if (Slot* slot = TakeIdleHere()) {  // the common case: this loop, this thread, now
    Execute(*slot, std::move(request), /*can_wait=*/true, std::move(done));
    return;
  }
  auto job = std::make_shared<Job>();
  job->request = std::move(request);
  job->done = std::move(done);
  EventLoop* here = EventLoop::Current();
  job->home = here ? here : context_.control;
  Submit(std::move(job));
}

Result<abi::HttpResponse> FunctionPool::Invoke(abi::HttpRequest request) {
  if (invoke_chain.size() >= context_.max_invoke_depth) {
    return FailedPrecondition("the chain of proxy_invoke_service calls is deeper than " +
                              std::to_string(context_.max_invoke_depth) + " functions: " +
                              DescribeChain(route_id_) + " (do functions call each other in a loop?)");
  }
  if (Slot* slot = TakeIdleHere()) {  // nested, on this thread, on another instance
    return ExecuteNow(*slot, std::move(request));
  }
  // No idle instance here: this thread waits for another loop to run it.
  auto promise = std::make_shared<std::promise<Result<abi::HttpResponse>>>();
  auto answer = promise->get_future();
  auto job = std::make_shared<Job>();
  job->request = std::move(request);
  job->done = [promise](Result<abi::HttpResponse> r) { promise->set_value(std::move(r)); };
  for (const std::string* id : invoke_chain) job->chain.push_back(*id);
  job->home = context_.control;  // this thread is about to block: its timers would not run
  const bool in_chain = std::any_of(invoke_chain.begin(), invoke_chain.end(),
                                    [this](const std::string* id) { return *id == route_id_; });
  if (in_chain) {
    // A cycle (a -> b -> a): the instances of this function may all be waiting further up this
    // very chain, so waiting in the queue could only end at invoke_timeout. An idle instance
    // elsewhere takes it; without one the call fails now, naming the cycle.
    Slot* elsewhere = nullptr;
    {
      MutexLock lock(mutex_);
      if (!retired_) elsewhere = TakeIdle(nullptr, /*only_here=*/false);
    }
    if (!elsewhere) {
      return FailedPrecondition(Describe() + " is already in this chain of proxy_invoke_service calls (" +
                                DescribeChain(route_id_) +
                                ") and has no free instance to take another call; give it more instances "
                                "(instance_num) or break the cycle");
    }
    job->claimed = true;
    elsewhere->loop->Post([self = shared_from_this(), elsewhere, job] { self->RunJob(elsewhere, job); });
  } else {
    Submit(job);
  }
  std::future_status waited;
  {
    BlockingCall blocked;
    waited = answer.wait_for(context_.invoke_timeout);
  }
  if (waited != std::future_status::ready) {
    // Still waiting for an instance: cancel it, so that it does not run later for nobody. One
    // that already runs cannot be taken back; its answer is dropped.
    const bool cancelled = !job->claimed.exchange(true);
    if (cancelled) context_.metrics->CountEvent("invokes_cancelled", route_id_);
    return Status(StatusCode::kDeadlineExceeded,
                  Describe() + " did not answer within " + std::to_string(context_.invoke_timeout.count()) +
                      " ms" + (cancelled ? " (the call was cancelled before it ran)" : ""));
  }
  return answer.get();
}

void FunctionPool::Submit(std::shared_ptr<Job> job) {
  MutexLock lock(mutex_);
  if (retired_) {
    // Picked a moment before a reload or uninstall took this version out of service.
    auto next = successor_.lock();
    lock.Unlock();
    if (next) return next->Submit(std::move(job));
    if (!job->claimed.exchange(true)) {
      job->done(
          Status(StatusCode::kResourceExhausted, Describe() + " was uninstalled while the request waited"));
    }
    return;
  }
  if (Slot* slot = TakeIdle(job->home, /*only_here=*/false)) {
    lock.Unlock();
    job->claimed = true;
    slot->loop->Post([self = shared_from_this(), slot, job] { self->RunJob(slot, job); });
    return;
  }
  if (waiting_.size() >= context_.max_queued) {
    lock.Unlock();
    job->claimed = true;
    job->done(Status(StatusCode::kResourceExhausted, Describe() + ": " + std::to_string(context_.max_queued) +
                                                         " requests are already waiting for an instance"));
    return;
  }
  waiting_.push_back(job);
  lock.Unlock();
  auto timer = std::make_shared<boost::asio::steady_timer>(job->home->io(), context_.queue_timeout);
  timer->async_wait([weak_self = weak_from_this(), weak_job = std::weak_ptr<Job>(job), timer,
                     describe = Describe(), limit = context_.queue_timeout](boost::system::error_code) {
    auto expired = weak_job.lock();
    if (!expired || expired->claimed.exchange(true)) return;  // already running, or answered
    if (auto self = weak_self.lock()) {
      MutexLock lock(self->mutex_);
      std::erase(self->waiting_, expired);
    }
    expired->done(Status(
        StatusCode::kResourceExhausted,
        "no instance of " + describe + " became free within " + std::to_string(limit.count()) + " ms"));
  });
}

void FunctionPool::RunJob(Slot* slot, const std::shared_ptr<Job>& job) {
  // The chain the job was called from, so that the calls it makes are counted on top of it.
  ChainPrefix prefix(job->chain);
  // A call through proxy_invoke_service has a thread blocked on its answer: it cannot wait.
  const bool can_wait = job->chain.empty();
  Execute(*slot, std::move(job->request), can_wait, job->done);
}

Result<abi::HttpResponse> FunctionPool::ExecuteNow(Slot& slot, abi::HttpRequest request) {
  std::optional<Result<abi::HttpResponse>> answer;
  Execute(slot, std::move(request), /*can_wait=*/false,
          [&answer](Result<abi::HttpResponse> result) { answer = std::move(result); });
  if (!answer) return Internal(Describe() + ": the request did not end");  // cannot happen without waiting
  return std::move(*answer);
}

void FunctionPool::Execute(Slot& slot, abi::HttpRequest request, bool can_wait, Done done) {
  if (slot.dead || !slot.vm)
    return done(Status(StatusCode::kInternal, Describe() + " has no working instance"));
  ChainEntry entry(&route_id_);
  // Only a function on a serving loop can be moved, and only then is its cost measured.
  const bool measure = !slot.pooled && context_.inline_limit.count() > 0 && context_.pool_threads > 0 &&
                       placement_ == Placement::kServing;
  const auto start = RealClock::now();
  // The thread's CPU time costs a system call: it is sampled at most every 2 ms, and read again
  // only for a request whose wall time passed the limit. Its cost is then overestimated by at
  // most the CPU time between the sample and its start (under 2 ms).
  thread_local CpuSample sample;
  if (measure && start - sample.at > std::chrono::milliseconds(2)) sample = {start, ThreadCpuNs()};
  const int64_t cpu_start = sample.cpu_ns;
  const int64_t blocked_start = blocked_ns;
  abi::PluginVm::Post post;
  if (can_wait) post = [loop = slot.loop](std::function<void()> work) { loop->Post(std::move(work)); };
  // The cost of what ran on this thread is measured before the slot is released: a slow
  // function must be marked as moving before its instance can take the next request here. A
  // request that waits for an outbound call is measured for its first part only.
  auto measure_once = [this, measure, start, cpu_start, blocked_start, measured = false]() mutable {
    if (measured || !measure) return;
    measured = true;
    if (RealClock::now() - start <= context_.inline_limit) return;
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(
        ThreadCpuNs() - cpu_start + (context_.count_blocked ? blocked_ns - blocked_start : 0)));
    auto serving = Placement::kServing;
    if (took > context_.inline_limit && placement_.compare_exchange_strong(serving, Placement::kMoving))
      context_.control->Post([self = shared_from_this(), took] { self->MoveToPool(took); });
  };
  auto measurer = std::make_shared<decltype(measure_once)>(std::move(measure_once));
  struct Progress {
    bool returned = false;  // HandleHttpAsync returned: the request waits
    bool ended = false;
  };
  auto progress = std::make_shared<Progress>();
  slot.vm->HandleHttpAsync(std::move(request), cpu_limit_, std::move(post),
                           [self = shared_from_this(), slot = &slot, measurer, progress,
                            done = std::move(done)](Result<abi::HttpResponse> result) {
                             (*measurer)();  // a no-op when the request waited (measured already)
                             progress->ended = true;
                             done(self->AfterRequest(*slot, std::move(result)));
                             if (progress->returned) self->EndWait(slot);
                           });
  progress->returned = true;
  (*measurer)();
  if (!progress->ended) {
    // It waits for an outbound call: the instance takes other requests meanwhile.
    MutexLock lock(mutex_);
    ++slot.waiting;
  }
  Release(&slot);
}

Result<abi::HttpResponse> FunctionPool::AfterRequest(Slot& slot, Result<abi::HttpResponse> result) {
  if (!slot.vm) {
    // The instance was replaced (another request failed it) and no new one could start.
    if (result.ok()) return result;
    return Status(result.status().code(), Describe() + " failed: " + result.status().message());
  }
  if (!slot.vm->failed() && slot.vm->has_pending_work()) {
    Status pending = slot.vm->RunPendingWork(slot.vm->clock().Now() + cpu_limit_);
    if (!pending.ok()) spdlog::warn("{}: {}", Describe(), pending.message());
  }
  std::string memory_note;
  if (slot.vm->failed()) {
    // Near the cap, the likely cause is the memory limit: say so.
    const uint64_t used = slot.vm->instance().MemorySize();
    const uint64_t cap = module_->max_memory_bytes();
    if (used * 10 >= cap * 9) {
      memory_note = " (it was using " + std::to_string(used >> 20) + " MiB of its " +
                    std::to_string(cap >> 20) + " MiB memory limit)";
    }
    Replace(slot);
  } else {
    slot.memory_bytes = slot.vm->instance().MemorySize();
    ArmTick(slot);
  }
  if (result.ok()) return result;
  const Status& error = result.status();
  if (error.code() == StatusCode::kDeadlineExceeded) {
    context_.metrics->CountEvent("deadline_kills", route_id_);
    return Status(
        StatusCode::kDeadlineExceeded,
        Describe() + " ran past its " + std::to_string(cpu_limit_.count()) + " ms limit and was stopped");
  }
  if (error.code() == StatusCode::kTrap || error.code() == StatusCode::kExit)
    context_.metrics->CountEvent("traps", route_id_);
  return Status(error.code(), Describe() + " failed: " + error.message() + memory_note);
}

// On the slot's loop: hands the slot to the next waiting request, or marks it idle; a retired
// slot's instance is destroyed instead.
void FunctionPool::Release(Slot* slot) {
  MutexLock lock(mutex_);
  if (slot->retired) {
    slot->busy = false;
    const bool idle = slot->waiting == 0;
    lock.Unlock();
    if (idle) Destroy(*slot);
    return;
  }
  if (!slot->dead && (slot->pooled || placement_ != Placement::kMoving) && GiveNextJobLocked(slot)) return;
  slot->busy = false;
}

// ---- Instances ---------------------------------------------------------------------------------

// On the slot's loop.
void FunctionPool::Destroy(Slot& slot) {
  std::unique_ptr<abi::PluginVm> vm;
  {
    MutexLock lock(mutex_);  // Counts and ReportedRouteId look at slot.vm under the lock
    vm = std::move(slot.vm);
  }
  if (!vm) return;
  vm.reset();
  slot.memory_bytes = 0;
  slot.loop->store().CollectGarbage();  // give the instance's memory back now
}

// On the slot's loop: a new instance takes the slot (its pending work and ticks reach it).
void FunctionPool::Adopt(Slot& slot, std::unique_ptr<abi::PluginVm> vm) {
  vm->set_pending_work_notifier([weak = weak_from_this(), raw = &slot, loop = slot.loop] {
    loop->Post([weak, raw] {
      if (auto self = weak.lock()) self->Housekeep(*raw);
    });
  });
  slot.memory_bytes = vm->instance().MemorySize();
  {
    MutexLock lock(mutex_);
    slot.vm = std::move(vm);
  }
  ArmTick(slot);
}

// On the slot's loop: a failed instance is never reused (its state is undefined).
void FunctionPool::Replace(Slot& slot) {
  Destroy(slot);
  {
    MutexLock lock(mutex_);        // other threads retire slots (Retire, Resize, MoveToPool)
    if (slot.retired) return;      // if that happens later, Release destroys what starts here
  }
  auto vm = abi::PluginVm::Create(slot.loop->store(), module_, spec_, services_);
  if (vm.ok()) {
    Adopt(slot, std::move(*vm));
    slot.backoff = std::chrono::milliseconds(100);
    return;
  }
  context_.metrics->CountEvent("start_failures", route_id_);
  {
    MutexLock lock(mutex_);
    slot.dead = true;
  }
  spdlog::error("{}: cannot start a replacement instance, retrying in {} ms: {}", Describe(),
                slot.backoff.count(), vm.status().message());
  // Back off: a function that keeps failing at start must not spin. The timer lives on the
  // slot's loop (it goes with it) and holds the pool weakly (it may be uninstalled meanwhile).
  auto timer = std::make_shared<boost::asio::steady_timer>(slot.loop->io(), slot.backoff);
  timer->async_wait([weak = weak_from_this(), raw = &slot, timer](boost::system::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->Revive(*raw);
  });
  slot.backoff = std::min(slot.backoff * 2, std::chrono::milliseconds(30000));
}

// On the slot's loop.
void FunctionPool::Revive(Slot& slot) {
  {
    MutexLock lock(mutex_);
    if (!slot.dead || slot.retired) return;
    slot.dead = false;
    slot.busy = true;
  }
  Replace(slot);
  Release(&slot);
}

// On the slot's loop, for an idle instance: its timer (proxy_on_tick) and the work other
// instances caused for it (on_queue_ready), which no request of its own would run.
void FunctionPool::Housekeep(Slot& slot) {
  {
    MutexLock lock(mutex_);
    // A busy instance runs its pending work when its request ends (Execute).
    if (!Usable(slot) || !slot.vm || !slot.vm->has_pending_work()) return;
    slot.busy = true;
  }
  Status status = slot.vm->RunPendingWork(slot.vm->clock().Now() + cpu_limit_);
  if (!status.ok()) spdlog::warn("{}: {}", Describe(), status.message());
  if (slot.vm->failed()) Replace(slot);
  Release(&slot);
}

// On the slot's loop.
void FunctionPool::ArmTick(Slot& slot) {
  if (slot.tick_armed || !slot.vm || slot.vm->tick_period_ms() == 0) return;
  slot.tick_armed = true;
  auto timer = std::make_shared<boost::asio::steady_timer>(
      slot.loop->io(), std::chrono::milliseconds(slot.vm->tick_period_ms()));
  timer->async_wait([weak = weak_from_this(), raw = &slot, timer](boost::system::error_code ec) {
    auto self = weak.lock();
    if (!self || ec) return;
    raw->tick_armed = false;
    {
      MutexLock lock(self->mutex_);
      if (!raw->vm || raw->retired) return;
      if (raw->busy || raw->dead) {  // its request (or restart) re-arms it when it ends
        return;
      }
      raw->busy = true;
    }
    Status status = raw->vm->Tick(raw->vm->clock().Now() + self->cpu_limit_);
    if (status.ok() && !raw->vm->failed() && raw->vm->has_pending_work())
      status = raw->vm->RunPendingWork(raw->vm->clock().Now() + self->cpu_limit_);
    if (!status.ok()) spdlog::warn("{}: {}", self->Describe(), status.message());
    if (raw->vm->failed()) {
      self->Replace(*raw);
    } else {
      self->ArmTick(*raw);
    }
    self->Release(raw);
  });
}

Status FunctionPool::StartWhereItRuns(int count) {
  if (!on_pool_loops()) return StartOn(context_.serving, false, count, nullptr);
  auto loops = context_.pool_loops();
  if (!loops.ok()) return loops.status();
  return StartOn(*loops, true, count, nullptr);
}

Status FunctionPool::StartOn(const std::vector<EventLoop*>& loops, bool pooled, int count,
                             std::vector<Slot*>* started) {
  std::vector<std::future<Status>> results;
  std::vector<std::unique_ptr<Slot>> fresh;
  for (int i = 0; i < count; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->loop = loops[context_.next_loop++ % loops.size()];
    slot->pooled = pooled;
    auto promise = std::make_shared<std::promise<Status>>();
    results.push_back(promise->get_future());
    slot->loop->Post([self = shared_from_this(), raw = slot.get(), promise] {
      auto vm = abi::PluginVm::Create(raw->loop->store(), self->module_, self->spec_, self->services_);
      if (!vm.ok()) return promise->set_value(vm.status());
      self->Adopt(*raw, std::move(*vm));
      promise->set_value(Status::Ok());
    });
    fresh.push_back(std::move(slot));
  }
  Status failed;
  for (auto& result : results) {
    Status status = result.get();
    if (!status.ok() && failed.ok()) failed = status;
  }
  MutexLock lock(mutex_);
  // A version retired meanwhile (an uninstall during a move to the pool) keeps none of them.
  const bool keep = failed.ok() && !retired_;
  for (auto& slot : fresh) {
    if (!keep) {
      slot->retired = true;
      if (slot->vm) DestroyLaterLocked(slot.get());
    } else if (started) {
      started->push_back(slot.get());
    }
    slots_.push_back(std::move(slot));
  }
  if (keep) ServeWaitingLocked();
  return failed;
}

Status FunctionPool::AddInstances(int count) {
  MutexLock resize(resize_mutex_);
  Status status = StartWhereItRuns(count);
  if (status.ok()) instance_num_ += count;
  return status;
}

Status FunctionPool::Resize(int count) {
  MutexLock resize(resize_mutex_);
  int live = 0;
  {
    MutexLock lock(mutex_);
    for (auto& slot : slots_) live += !slot->retired;
    // Shrink: retire the surplus, idle ones first (they go at once; busy ones after their request).
    for (bool busy : {false, true}) {
      for (auto& slot : slots_) {
        if (live <= count) break;
        if (slot->retired || slot->busy != busy) continue;
        slot->retired = true;
        --live;
        if (!busy) DestroyLaterLocked(slot.get());
      }
    }
  }
  if (live < count) WASMLET_RETURN_IF_ERROR(StartWhereItRuns(count - live));
  instance_num_ = count;
  return Status::Ok();
}

Result<std::string> FunctionPool::ReportedRouteId() {
  MutexLock lock(mutex_);
  std::string id;
  for (auto& slot : slots_) {
    if (slot->retired || !slot->vm) continue;
    if (id.empty()) id = slot->vm->route_id();
    if (slot->vm->route_id() != id) return InvalidArgument("its instances reported different ids");
  }
  return id;
}

void FunctionPool::MoveToPool(std::chrono::milliseconds took) {
  MutexLock resize(resize_mutex_);
  int live = 0;
  {
    MutexLock lock(mutex_);
    if (retired_) return;
    for (auto& slot : slots_) live += !slot->retired;
  }
  std::vector<Slot*> started;
  auto loops = context_.pool_loops();
  Status status = loops.ok() ? StartOn(*loops, true, std::max(live, 1), &started) : loops.status();
  if (!status.ok()) {
    {
      MutexLock lock(mutex_);
      placement_ = Placement::kServingForGood;
      ServeWaitingLocked();
    }
    spdlog::error(
        "{}: a request took {} ms on a serving loop, but its instances cannot start on the pool "
        "loops, so it stays where it is: {}",
        Describe(), took.count(), status.message());
    return;
  }
  {
    MutexLock lock(mutex_);
    placement_ = Placement::kPool;
    for (auto& slot : slots_) {
      if (slot->pooled || slot->retired) continue;
      slot->retired = true;
      if (!slot->busy) DestroyLaterLocked(slot.get());
    }
  }
  context_.metrics->CountEvent("moved_to_pool", route_id_);
  spdlog::warn(
      "{}: a request took {} ms of CPU or blocking host calls, over inline_limit_ms ({} ms); its {} "
      "instance{} now run{} on the pool loops, so that it cannot hold up the connections of a serving loop",
      Describe(), took.count(), context_.inline_limit.count(), started.size(), started.size() == 1 ? "" : "s",
      started.size() == 1 ? "s" : "");
}

void FunctionPool::Retire(std::shared_ptr<FunctionPool> successor) {
  std::deque<std::shared_ptr<Job>> waiting;
  {
    MutexLock lock(mutex_);
    retired_ = true;
    successor_ = successor;
    waiting.swap(waiting_);
    for (auto& slot : slots_) {
      if (slot->retired && !slot->vm) continue;
      slot->retired = true;
      // The instance goes on its own thread: now if idle, else when its request ends (Release).
      if (!slot->busy) DestroyLaterLocked(slot.get());
    }
  }
  for (auto& job : waiting) {
    if (job->claimed) continue;
    if (successor) {
      successor->Submit(job);
    } else if (!job->claimed.exchange(true)) {
      job->done(
          Status(StatusCode::kResourceExhausted, Describe() + " was uninstalled while the request waited"));
    }
  }
}

PoolCounts FunctionPool::Counts() const {
  MutexLock lock(mutex_);
  PoolCounts counts;
  for (const auto& slot : slots_) {
    if (slot->retired) {
      counts.retiring += slot->vm != nullptr;
      continue;
    }
    counts.live++;
    counts.busy += slot->busy || slot->waiting > 0;
    counts.memory_bytes += slot->memory_bytes;
  }
  return counts;
}

}  // namespace wasmlet::server
