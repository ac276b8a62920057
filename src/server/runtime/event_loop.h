// A thread with an event loop (an Asio io_context) and, when given an engine, one engine Store
// (a V8 isolate). Everything created in that store runs on this thread and only here: the
// instances living in it, the sockets the loop accepted, the timers armed on it.
//
// The function server runs two kinds (docs/architecture.md, "Threads and instances"):
//   serving loops  one per core; each accepts connections, parses their requests, runs them
//                  through instances of its own store and writes the answers, all on its thread.
//   pool loops     run functions that proved slow (a guest near its CPU budget, a host call
//                  that blocks) so that they never stall a serving loop; they run at a lower
//                  scheduling priority.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "engine/engine.h"

namespace wasmlet::server {

class EventLoop {
 public:
  struct Options {
    std::string name;                  // for logs: "loop 0", "pool 1", "control"
    int index = 0;                     // its place among the loops of its kind
    engine::Engine* engine = nullptr;  // null: a loop without a store (timers and control work)
    int nice = 0;                      // added to the thread's scheduling niceness (Linux: per thread)
  };

  // Starts the thread, which creates the store; WaitReady waits for that (so that several loops
  // can start in parallel) and returns why the store could not be created, if it could not.
  explicit EventLoop(Options options);
  Status WaitReady();
  // Stops the loop (see Stop) and joins it. Handlers still queued are destroyed, not run.
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Stops the loop at once and waits for its thread: handlers still queued are destroyed without
  // running, so work that must finish has to be waited for before (RunAndWait). Whatever owns
  // instances of this loop's store must have destroyed them (on this thread) before: the store
  // goes when the thread ends.
  void Stop();

  boost::asio::io_context& io() { return io_; }
  template <typename F>
  void Post(F&& f) {
    boost::asio::post(io_, std::forward<F>(f));
  }
  // Runs `f` on this loop and waits for it (never call it from this loop's own thread). An
  // exception `f` throws is thrown here, in the caller.
  void RunAndWait(std::function<void()> f);

  const std::string& name() const { return options_.name; }
  int index() const { return options_.index; }
  bool has_store() const { return store_ != nullptr; }
  // Only on this loop's thread.
  engine::Store& store() { return *store_; }
  bool IsCurrent() const { return Current() == this; }
  // The loop whose thread is calling, or nullptr.
  static EventLoop* Current();

 private:
  void Run();

  const Options options_;
  // Run by one thread: a handler that thread posts goes on a queue of its own, without the
  // scheduler's lock. Asio still locks for posts and timers from other threads; only the
  // BOOST_ASIO_CONCURRENCY_HINT_UNSAFE hints drop the locks, which those threads make unsafe here.
  boost::asio::io_context io_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> keep_running_;
  std::unique_ptr<engine::Store> store_;
  std::promise<Status> started_;
  std::thread thread_;
};

}  // namespace wasmlet::server
