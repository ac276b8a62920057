// Threads for work that blocks (a component's network round trip, a SQLite write), so that it
// holds none of the event loops: a fixed number of threads and a bounded queue in front of them.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace wasmlet::server {

class WorkerPool {
 public:
  // `threads` run the work, at most `max_queued` wait for one of them.
  WorkerPool(std::string name, size_t threads, size_t max_queued);
  // Runs the queued work, then joins the threads.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `work`; false when the queue is full (or the pool is stopping): the caller answers
  // that it is busy.
  bool Submit(std::function<void()> work) EXCLUDES(mutex_);

 private:
  void Run() EXCLUDES(mutex_);

  const size_t max_queued_;
  Mutex mutex_;
  CondVar ready_;
  std::deque<std::function<void()>> queue_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace wasmlet::server
