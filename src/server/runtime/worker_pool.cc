#include "server/runtime/worker_pool.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace wasmlet::server {

WorkerPool::WorkerPool(std::string name, size_t threads, size_t max_queued) : max_queued_(max_queued) {
  name.resize(std::min<size_t>(name.size(), 15));  // the kernel's limit for a thread's name
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Run(); });
    pthread_setname_np(threads_.back().native_handle(), name.c_str());
  }
}

WorkerPool::~WorkerPool() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  ready_.NotifyAll();
  for (std::thread& thread : threads_) thread.join();
}

bool WorkerPool::Submit(std::function<void()> work) {
  {
    MutexLock lock(mutex_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(work));
  }
  ready_.NotifyOne();
  return true;
}

void WorkerPool::Run() {
  for (;;) {
    std::function<void()> work;
    {
      MutexLock lock(mutex_);
      while (queue_.empty() && !stopping_) ready_.Wait(mutex_);
      if (queue_.empty()) return;  // stopping, and nothing is left to run
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      work();
    } catch (const std::exception& e) {
      spdlog::error("a worker's task failed: {}", e.what());
    }
  }
}

}  // namespace wasmlet::server
