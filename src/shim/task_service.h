// containerd.task.v2.Task for one container whose process is a wasm function.
//
// The function does not run in the shim: the node's wasmlet daemon runs it. So the task's life
// maps onto the daemon's admin API:
//
//   Create  mount the rootfs on <bundle>/rootfs, find args[0] in it and check it is wasm
//   Start   make sure the daemon runs, install the function       -> RUNNING
//   Kill    uninstall it; SIGTERM/SIGINT exit 0, other signals 128+signal -> STOPPED
//   Wait    returns when the task is STOPPED, with its exit status
//   Delete  unmount the rootfs, report the exit status; Shutdown then ends the shim
//
// The task's pid is the shim's own: there is no other process to report. Exec, Pause, Resume,
// Checkpoint, ResizePty and Update answer UNIMPLEMENTED.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <functional>
#include <string>

#include "common/mutex.h"
#include "shim/events.h"
#include "shim/function_spec.h"
#include "shim/mounts.h"
#include "shim/node_daemon.h"
#include "shim/ttrpc.h"
#include "task.pb.h"

namespace wasmlet::shim {

namespace task = ::containerd::task::v2;

// A file in the bundle that exists while the task's function is installed in the daemon, so
// that `delete` after a shim died uninstalls it, and only then (it holds the plugin's name).
inline constexpr const char* kInstalledMarker = "wasmlet-installed";

class TaskService {
 public:
  TaskService(FunctionHost& host, EventSink& events, uint32_t shim_pid);

  // Registers every method of containerd.task.v2.Task. `on_shutdown` is called (once, after
  // the Shutdown call has been answered) when the shim may exit.
  void RegisterWith(TtrpcServer& server, std::function<void()> on_shutdown);

  Result<task::CreateTaskResponse> Create(const task::CreateTaskRequest& request)
      EXCLUDES(lifecycle_mutex_, mutex_);
  Result<task::StartResponse> Start(const task::StartRequest& request) EXCLUDES(lifecycle_mutex_, mutex_);
  Status Kill(const task::KillRequest& request) EXCLUDES(lifecycle_mutex_, mutex_);
  Result<task::WaitResponse> Wait(const task::WaitRequest& request) EXCLUDES(mutex_);
  Result<task::DeleteResponse> Delete(const task::DeleteRequest& request) EXCLUDES(lifecycle_mutex_, mutex_);
  Result<task::StateResponse> State(const task::StateRequest& request) EXCLUDES(mutex_);
  Result<task::PidsResponse> Pids(const task::PidsRequest& request) EXCLUDES(mutex_);
  Result<task::StatsResponse> Stats(const task::StatsRequest& request) EXCLUDES(mutex_);
  Result<task::ConnectResponse> Connect(const task::ConnectRequest& request);
  // True when the shim may exit: no task, or its task deleted (or `now`).
  bool Shutdown(const task::ShutdownRequest& request) EXCLUDES(mutex_);

  // While the task runs, makes sure the node's daemon still serves its function: a daemon that
  // died is started again and a daemon that lost the function (it restarted) gets it again.
  // The shim calls it every check_interval_ms.
  Status Reconcile() EXCLUDES(lifecycle_mutex_, mutex_);

  // The route id the function serves under, once started.
  std::string route_id() const EXCLUDES(mutex_);

 private:
  // The task named `id`, with no exec id (a function has no exec processes).
  Status CheckTask(const std::string& id, const std::string& exec_id) const REQUIRES(mutex_);
  // Marks the task stopped with `exit_status`, releases Wait, publishes /tasks/exit.
  void StopLocked(uint32_t exit_status) REQUIRES(mutex_);
  // A line for whoever reads the task's stdout (ctr run in the foreground, kubectl logs): the
  // function's own logs go to the daemon's log, so this says where it serves and how it ended.
  // Never blocks: with nobody reading, the line is dropped.
  void Say(const std::string& line) REQUIRES(mutex_);

  FunctionHost& host_;
  EventSink& events_;
  const uint32_t pid_;

  // Create, Start, Kill and Delete run one at a time (they talk to the daemon and mount);
  // mutex_ is never held while waiting on the daemon.
  Mutex lifecycle_mutex_;
  mutable Mutex mutex_;
  CondVar stopped_;
  bool created_ GUARDED_BY(mutex_) = false;
  bool deleted_ GUARDED_BY(mutex_) = false;
  task::TaskStatus status_ GUARDED_BY(mutex_) = task::UNKNOWN;
  // As containerd sent it. Not GUARDED_BY: Create writes it once, holding both locks, before
  // created_ lets any other call find the task; the others read it without a lock after that.
  task::CreateTaskRequest create_;
  FunctionSpec spec_ GUARDED_BY(mutex_);
  // Where the rootfs is mounted ("" when containerd sent no mounts).
  std::string rootfs_ GUARDED_BY(mutex_);
  nlohmann::json item_ GUARDED_BY(mutex_);      // the plugin item installed at Start
  std::string module_path_ GUARDED_BY(mutex_);  // the .wasm on the host
  std::string route_id_ GUARDED_BY(mutex_);
  int stdout_fd_ GUARDED_BY(mutex_) = -1;  // the task's stdout fifo, while it runs
  // Its stderr fifo: nothing is written, but containerd reads it until closed.
  int stderr_fd_ GUARDED_BY(mutex_) = -1;
  bool installed_ GUARDED_BY(mutex_) = false;
  uint32_t exit_status_ GUARDED_BY(mutex_) = 0;
  google::protobuf::Timestamp exited_at_ GUARDED_BY(mutex_);
};

}  // namespace wasmlet::shim
