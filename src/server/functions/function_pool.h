// The pool of instances of one version of one plugin item, and how a request reaches one.
//
// Instances live in the stores of event loops and run only on their loop's thread. A request
// arriving on a serving loop runs on that same thread when the loop has an idle instance of the
// function (the common case: no hand-off at all); else on another loop's idle instance (two
// hand-offs); else it waits, bounded, for the first instance to become free. A function whose
// request ran longer than inline_limit on a serving loop is moved, once, to the pool loops, so
// that a guest burning its CPU budget or a host call that blocks cannot hold up the other
// connections of a serving loop again.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "abi/plugin_vm.h"
#include "common/mutex.h"
#include "engine/engine.h"
#include "server/config/config.h"
#include "server/runtime/event_loop.h"
#include "server/runtime/metrics.h"

namespace wasmlet::server {

using Done = std::function<void(Result<abi::HttpResponse>)>;

// Marks a host call that blocks its thread (a state store, a remote or cross-thread invoke) for
// as long as it lives. A request's cost, compared with inline_limit, is the CPU time its thread
// spent plus the time it spent blocked so: wall-clock time would also count the moments the
// kernel gave the CPU to another thread, and move fast functions off a busy machine's loops.
// Blocked time is measured on the steady clock, not a Clock: it adds to CPU time, which only the
// kernel counts, so a test clock could fake only half of the cost.
class BlockingCall {
 public:
  BlockingCall();
  ~BlockingCall();
  BlockingCall(const BlockingCall&) = delete;
  BlockingCall& operator=(const BlockingCall&) = delete;

 private:
  std::chrono::steady_clock::time_point start_;
};

// Where pools put their instances, and the settings every pool runs under. Owned by the
// registry; outlives every pool.
struct PoolContext {
  std::vector<EventLoop*> serving;  // run requests inline (see ServingLoops)
  // The loops that run the functions that proved slow, started the first time they are asked
  // for (a server whose functions never prove slow has none). Thread-safe.
  std::function<Result<std::vector<EventLoop*>>()> pool_loops;
  size_t pool_threads = 0;       // 0: no pool loops, functions never move
  EventLoop* control = nullptr;  // no store: moves to the pool, timers of foreign threads
  Metrics* metrics = nullptr;
  std::chrono::milliseconds inline_limit{10};  // 0: never move a function to the pool
  // Whether time a request spent blocked in host calls counts against inline_limit. Not when
  // there are more serving loops than cores: a loop waiting for the network then leaves its
  // core to the others, and what the pool would protect them from is CPU time alone.
  bool count_blocked = true;
  std::chrono::milliseconds queue_timeout{1000};
  size_t max_queued = 1024;
  std::chrono::milliseconds invoke_timeout{3000};
  size_t max_invoke_depth = 8;
  std::atomic<size_t> next_loop{0};  // spreads the instances of one-instance functions
};

// What the pool holds now, for /wasm/list and the metrics.
struct PoolCounts {
  size_t live = 0;  // in service (busy or idle)
  size_t busy = 0;
  size_t retiring = 0;  // of a retired version, still finishing a request
  uint64_t memory_bytes = 0;
};

class FunctionPool : public std::enable_shared_from_this<FunctionPool> {
 public:
  struct Params {
    PluginConfig config;
    std::shared_ptr<const abi::PluginSpec> spec;
    std::shared_ptr<const engine::Module> module;
    abi::HostServices services;
    std::string md5;
    std::chrono::milliseconds cpu_limit{0};
  };
  FunctionPool(Params params, PoolContext& context);
  // Every instance must have been destroyed on its loop by then (Retire, then the loops drained).
  ~FunctionPool();
  FunctionPool(const FunctionPool&) = delete;
  FunctionPool& operator=(const FunctionPool&) = delete;

  // Starts `count` more instances, spread over the serving loops (or the pool loops once the
  // function moved there), and waits for them: never call it from a loop. On failure the
  // instances it started are destroyed again and the first error is returned.
  Status AddInstances(int count) EXCLUDES(resize_mutex_, mutex_);
  // Retires instances past `count` (idle ones first) or starts the missing ones.
  Status Resize(int count) EXCLUDES(resize_mutex_, mutex_);
  // The id the instances reported (proxy_get_id, or the item's name); an error if they differ.
  Result<std::string> ReportedRouteId() EXCLUDES(mutex_);
  void set_route_id(std::string id) { route_id_ = std::move(id); }

  // Runs one request. `done` is called exactly once: on the calling thread before Run returns
  // when this loop had an idle instance; else on the thread that ran it or gave up on it.
  // Errors: kResourceExhausted (no instance free in time, too many waiting, or retired with
  // no successor), kDeadlineExceeded (past the CPU budget), others (the guest failed).
  void Run(abi::HttpRequest request, Done done) EXCLUDES(mutex_);
  // proxy_invoke_service from a guest running on this thread: nested on this thread when an
  // instance is idle here; else the calling thread waits for another loop (invoke_timeout).
  // A chain of nested calls deeper than max_invoke_depth ends in an error naming the chain.
  Result<abi::HttpResponse> Invoke(abi::HttpRequest request) EXCLUDES(mutex_);

  // At shutdown, after Retire: the instances that still have requests waiting for outbound
  // calls are destroyed on their loops anyway (those requests fail).
  void DestroyWaiting() EXCLUDES(mutex_);

  // Takes this version out of service: requests still arriving and those waiting go to
  // `successor` (or fail without one); each instance is destroyed on its loop once idle.
  void Retire(std::shared_ptr<FunctionPool> successor) EXCLUDES(mutex_);

  PoolCounts Counts() const EXCLUDES(mutex_);
  const PluginConfig& config() const { return config_; }
  int instance_num() const { return instance_num_.load(); }
  const std::string& route_id() const { return route_id_; }
  const std::string& md5() const { return md5_; }
  const abi::PluginSpec& spec() const { return *spec_; }
  const engine::Module& module() const { return *module_; }
  const abi::HostServices& services() const { return services_; }
  bool on_pool_loops() const { return placement_.load() == Placement::kPool; }
  std::string Describe() const { return "function '" + route_id_ + "' (" + config_.name + ")"; }

 private:
  struct Slot;
  struct Job;

  // Free to take a request.
  bool Usable(const Slot& slot) const REQUIRES(mutex_);
  // Hands waiting requests to the idle instances.
  void ServeWaitingLocked() REQUIRES(mutex_);
  // Takes `slot` for the next waiting request, if any (false: none waits).
  bool GiveNextJobLocked(Slot* slot) REQUIRES(mutex_);
  // `slot` retired and idle: a retired slot is never taken again, so its instance can be
  // destroyed on its loop whenever that loop gets to it.
  void DestroyLaterLocked(Slot* slot) REQUIRES(mutex_);
  // An idle instance on the calling loop, taken; nullptr when there is none (or no loop).
  Slot* TakeIdleHere() EXCLUDES(mutex_);
  // An idle slot, preferring `here`; with only_here, only there.
  Slot* TakeIdle(EventLoop* here, bool only_here) REQUIRES(mutex_);
  // The slow path of Run and Invoke: another loop's instance, or a place in the queue.
  void Submit(std::shared_ptr<Job> job) EXCLUDES(mutex_);
  // On the slot's loop.
  void RunJob(Slot* slot, const std::shared_ptr<Job>& job);
  // Runs the request on the slot's instance, then releases the slot; `done` once, at once unless
  // the function waits for an outbound call (only when `can_wait`; else such a wait fails the
  // request). A request that waits does not hold the instance: it takes others meanwhile.
  void Execute(Slot& slot, abi::HttpRequest request, bool can_wait, Done done);
  // After a request that waited has ended: destroys a retired instance it was the last user of.
  void EndWait(Slot* slot);
  // Destroys the slot's instance unless a request is on it or waits in it.
  void DestroyIfIdle(Slot& slot);
  // Execute for a caller that needs the answer now.
  Result<abi::HttpResponse> ExecuteNow(Slot& slot, abi::HttpRequest request);
  Result<abi::HttpResponse> AfterRequest(Slot& slot, Result<abi::HttpResponse> result);
  void Release(Slot* slot);
  void Destroy(Slot& slot);
  void Replace(Slot& slot);
  void Revive(Slot& slot);
  void Housekeep(Slot& slot);
  // After a guest call on the slot's loop: arm the tick timer the instance asked for.
  void ArmTick(Slot& slot);
  void Adopt(Slot& slot, std::unique_ptr<abi::PluginVm> vm);
  Status StartOn(const std::vector<EventLoop*>& loops, bool pooled, int count, std::vector<Slot*>* started)
      REQUIRES(resize_mutex_) EXCLUDES(mutex_);
  // Starts `count` instances where the function runs now (serving or pool loops).
  Status StartWhereItRuns(int count) REQUIRES(resize_mutex_) EXCLUDES(mutex_);
  // On the control loop: moves every instance to the pool loops (see the header comment).
  void MoveToPool(std::chrono::milliseconds took) EXCLUDES(resize_mutex_, mutex_);

  const PluginConfig config_;
  const std::shared_ptr<const abi::PluginSpec> spec_;
  const std::shared_ptr<const engine::Module> module_;
  const abi::HostServices services_;
  const std::string md5_;
  const std::chrono::milliseconds cpu_limit_;
  PoolContext& context_;
  std::string route_id_;
  std::atomic<int> instance_num_{0};
  // Where the instances are. While moving, the serving loops' instances take no new request
  // (one more slow request there would stall that loop again): requests wait for the pool's.
  enum class Placement { kServing, kMoving, kPool, kServingForGood /* the move failed */ };
  std::atomic<Placement> placement_{Placement::kServing};

  Mutex resize_mutex_;  // one AddInstances, Resize or MoveToPool at a time
  // Also guards the fields of each Slot that say so (the analysis cannot name another object's
  // lock there).
  mutable Mutex mutex_;
  // Slots are never erased while the pool lives (a retired one keeps its place, empty), so a
  // timer or notifier holding a weak_ptr to the pool may use its Slot* once it has locked it.
  std::vector<std::unique_ptr<Slot>> slots_ GUARDED_BY(mutex_);
  std::deque<std::shared_ptr<Job>> waiting_ GUARDED_BY(mutex_);
  bool retired_ GUARDED_BY(mutex_) = false;
  std::weak_ptr<FunctionPool> successor_ GUARDED_BY(mutex_);
};

}  // namespace wasmlet::server
