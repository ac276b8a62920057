#include "server/worker.h"

#include <spdlog/spdlog.h>

#include <future>

namespace wasmlet::server {
namespace {
thread_local Worker* current_worker = nullptr;
}

Worker::Worker(engine::Engine& engine, int index) : index_(index) {
  thread_ = std::thread([this, &engine] {
    auto store = engine.NewStore();
    if (!store.ok()) {
      spdlog::critical("worker {}: cannot create its engine store: {}", index_, store.status().ToString());
      std::abort();
    }
    store_ = std::move(*store);
    started_.set_value();
    Run(engine);
  });
}

void Worker::WaitReady() { ready_.wait(); }

Worker::~Worker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Worker* Worker::Current() { return current_worker; }

void Worker::Post(Job job) {
  bool sleeping;
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
    sleeping = sleeping_;
  }
  if (sleeping) wake_.notify_one();
}

void Worker::Run(engine::Engine&) {
  current_worker = this;
  std::unique_lock lock(mutex_);
  while (true) {
    sleeping_ = true;
    wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    sleeping_ = false;
    if (jobs_.empty()) break;  // stopping, and nothing left
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job(*this);
    lock.lock();
  }
  lock.unlock();
  // The jobs' owners destroy their instances on this thread before the store goes (see
  // FunctionRegistry::Shutdown); the store itself is destroyed here, on its thread.
  store_.reset();
  current_worker = nullptr;
}

}  // namespace wasmlet::server
