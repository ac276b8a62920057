// A thread that runs guest code. It owns one engine Store (a V8 isolate), so every instance
// created in it runs here and only here. Jobs run one at a time, in order.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/engine.h"

namespace wasmlet::server {

class Worker {
 public:
  using Job = std::function<void(Worker&)>;

  // Starts the thread, which creates the worker's store; WaitReady waits for that (so that
  // several workers can start in parallel).
  Worker(engine::Engine& engine, int index);
  void WaitReady();
  // Runs the jobs already queued, then stops the thread.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Post(Job job);
  int index() const { return index_; }
  // Only on this worker's thread.
  engine::Store& store() { return *store_; }
  // The worker whose thread is calling, or nullptr.
  static Worker* Current();

 private:
  void Run(engine::Engine& engine);

  const int index_;
  std::unique_ptr<engine::Store> store_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  bool sleeping_ = false;  // waiting on wake_: only then does Post pay for a notify
  std::promise<void> started_;
  std::shared_future<void> ready_ = started_.get_future().share();
  std::thread thread_;
};

}  // namespace wasmlet::server
