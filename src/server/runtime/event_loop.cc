#include "server/runtime/event_loop.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/text.h"

namespace wasmlet::server {
namespace {
thread_local EventLoop* current_loop = nullptr;
}

EventLoop::EventLoop(Options options) : options_(std::move(options)) {
  keep_running_.emplace(io_.get_executor());
  thread_ = std::thread([this] {
    if (options_.nice != 0) {
      // Linux keeps a niceness per thread: this lowers only this loop's priority.
      const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
      const int now = ::getpriority(PRIO_PROCESS, tid);
      if (::setpriority(PRIO_PROCESS, tid, now + options_.nice) != 0)
        spdlog::debug("{}: cannot lower its priority: {}", options_.name, std::strerror(errno));
    }
    if (options_.engine) {
      auto store = options_.engine->NewStore();
      if (!store.ok()) {
        started_.set_value(
            Status(store.status().code(),
                   options_.name + ": cannot create its engine store: " + store.status().message()));
        return;
      }
      store_ = std::move(*store);
      store_->PinToThread();  // this thread uses no other store
    }
    started_.set_value(Status::Ok());
    Run();
  });
}

Status EventLoop::WaitReady() {
  auto ready = started_.get_future();
  return ready.get();
}

EventLoop::~EventLoop() { Stop(); }

void EventLoop::Stop() {
  if (!thread_.joinable()) return;
  keep_running_.reset();
  io_.stop();
  thread_.join();
}

EventLoop* EventLoop::Current() { return current_loop; }

void EventLoop::RunAndWait(std::function<void()> f) {
  std::promise<void> done;
  Post([&] {
    try {
      f();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());  // the caller's, not the loop's to log
    }
  });
  done.get_future().get();
}

void EventLoop::Run() {
  current_loop = this;
  // An exception that escapes a handler is logged and the loop goes on: one connection's
  // failure must not end the thread that serves all the others.
  for (;;) {
    try {
      io_.run();
      break;
    } catch (const std::exception& e) {
      spdlog::error("{}: an exception escaped a handler and was caught: {}", options_.name,
                    Printable(e.what()));
    }
  }
  // The instances of this store were destroyed by their owners (FunctionRegistry::Shutdown);
  // the store itself goes here, on its own thread.
  store_.reset();
  current_loop = nullptr;
}

}  // namespace wasmlet::server
