#include "shim/task_service.h"

#include <fcntl.h>
#include <google/protobuf/util/time_util.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "events.pb.h"
#include "metrics.pb.h"

namespace wasmlet::shim {

namespace fs = std::filesystem;
namespace events = ::containerd::events;

namespace {

constexpr const char* kTaskService = "containerd.task.v2.Task";

// How a function ends on a signal: SIGTERM and SIGINT ask it to stop, which it does cleanly
// (exit 0); any other signal ends it as that signal ends a process (128 + signal).
uint32_t ExitStatusFor(uint32_t signal) { return signal == SIGTERM || signal == SIGINT ? 0 : 128 + signal; }

// Adapts a typed handler to the server's (payload -> payload) form.
template <typename Request, typename Response>
TtrpcServer::Handler Typed(std::function<Result<Response>(const Request&)> handler) {
  return [handler = std::move(handler)](const std::string& payload, const Metadata&) -> Result<std::string> {
    Request request;
    if (!request.ParseFromString(payload)) {
      return InvalidArgument("the request is not a " + request.GetTypeName() + " message");
    }
    auto response = handler(request);
    if (!response.ok()) return response.status();
    return response->SerializeAsString();
  };
}

}  // namespace

TaskService::TaskService(FunctionHost& host, EventSink& events, uint32_t shim_pid)
    : host_(host), events_(events), pid_(shim_pid) {}

void TaskService::RegisterWith(TtrpcServer& server, std::function<void()> on_shutdown) {
  auto add = [&](const char* method, TtrpcServer::Handler handler) {
    server.Register(kTaskService, method, std::move(handler));
  };
  add("Create",
      Typed<task::CreateTaskRequest, task::CreateTaskResponse>([this](auto& r) { return Create(r); }));
  add("Start", Typed<task::StartRequest, task::StartResponse>([this](auto& r) { return Start(r); }));
  add("Kill", Typed<task::KillRequest, task::Empty>([this](auto& r) -> Result<task::Empty> {
        WASMLET_RETURN_IF_ERROR(Kill(r));
        return task::Empty();
      }));
  add("Wait", Typed<task::WaitRequest, task::WaitResponse>([this](auto& r) { return Wait(r); }));
  add("Delete", Typed<task::DeleteRequest, task::DeleteResponse>([this](auto& r) { return Delete(r); }));
  add("State", Typed<task::StateRequest, task::StateResponse>([this](auto& r) { return State(r); }));
  add("Pids", Typed<task::PidsRequest, task::PidsResponse>([this](auto& r) { return Pids(r); }));
  add("Stats", Typed<task::StatsRequest, task::StatsResponse>([this](auto& r) { return Stats(r); }));
  add("Connect", Typed<task::ConnectRequest, task::ConnectResponse>([this](auto& r) { return Connect(r); }));
  // A function reads no stdin, so closing it is accepted and changes nothing.
  add("CloseIO", [](const std::string&, const Metadata&) -> Result<std::string> { return std::string(); });
  add("Shutdown",
      Typed<task::ShutdownRequest, task::Empty>([this, on_shutdown](auto& request) -> Result<task::Empty> {
        // The shim ends while this answer is on its way: containerd takes the connection
        // closing by the exit as an answer to Shutdown too.
        if (Shutdown(request)) std::thread(on_shutdown).detach();
        return task::Empty();
      }));
  for (const char* method : {"Pause", "Resume", "Checkpoint", "Exec", "ResizePty", "Update"}) {
    add(method, [method](const std::string&, const Metadata&) -> Result<std::string> {
      return Unimplemented(std::string(method) + " is not supported for wasm functions");
    });
  }
}

Status TaskService::CheckTask(const std::string& id, const std::string& exec_id) const {
  if (!created_ || deleted_ || id != create_.id()) return NotFound("task " + id + " not found in this shim");
  if (!exec_id.empty())
    return NotFound("exec " + exec_id + " not found: wasm functions have no exec processes");
  return Status::Ok();
}

void TaskService::Say(const std::string& line) {
  if (stdout_fd_ < 0) return;
  const std::string text = "wasmlet: " + line + "\n";
  if (write(stdout_fd_, text.data(), text.size()) < 0) {
    // Nobody reads (or the reader is full): the task goes on without its notes.
  }
}

void TaskService::StopLocked(uint32_t exit_status) {
  Say("function " + create_.id() + " stopped, exit status " + std::to_string(exit_status));
  for (int* fd : {&stdout_fd_, &stderr_fd_}) {
    if (*fd >= 0) {
      close(*fd);  // the reader sees the end of the task's output
      *fd = -1;
    }
  }
  status_ = task::STOPPED;
  exit_status_ = exit_status;
  exited_at_ = google::protobuf::util::TimeUtil::GetCurrentTime();
  events::TaskExit exit;
  exit.set_container_id(create_.id());
  exit.set_id(create_.id());
  exit.set_pid(pid_);
  exit.set_exit_status(exit_status);
  *exit.mutable_exited_at() = exited_at_;
  events_.Publish("/tasks/exit", exit);
  stopped_.NotifyAll();
}

Result<task::CreateTaskResponse> TaskService::Create(const task::CreateTaskRequest& request) {
  MutexLock lifecycle(lifecycle_mutex_);
  {
    MutexLock lock(mutex_);
    if (created_) return AlreadyExists("this shim already runs task " + create_.id());
  }
  auto spec = ReadFunctionSpec(request.bundle());
  if (!spec.ok()) return spec.status();

  std::string rootfs;
  if (request.rootfs_size() > 0) {
    rootfs = fs::weakly_canonical(fs::path(request.bundle()) / "rootfs").string();
    std::error_code ignored;
    fs::create_directories(rootfs, ignored);
    std::vector<MountSpec> mounts;
    for (const auto& m : request.rootfs())
      mounts.push_back({m.type(), m.source(), {m.options().begin(), m.options().end()}});
    WASMLET_RETURN_IF_ERROR(MountAll(mounts, rootfs));
  }
  std::string module_path;
  if (!spec->sandbox) {
    auto resolved = ResolveModule(rootfs.empty() ? request.bundle() + "/rootfs" : rootfs, spec->wasm);
    if (!resolved.ok()) {
      if (!rootfs.empty()) (void)UnmountAll(rootfs);
      return resolved.status();
    }
    module_path = *resolved;
  }

  MutexLock lock(mutex_);
  created_ = true;
  status_ = task::CREATED;
  create_ = request;
  spec_ = *spec;
  rootfs_ = rootfs;
  module_path_ = module_path;
  events::TaskCreate event;
  event.set_container_id(request.id());
  event.set_bundle(request.bundle());
  *event.mutable_rootfs() = request.rootfs();
  event.mutable_io()->set_stdin(request.stdin());
  event.mutable_io()->set_stdout(request.stdout());
  event.mutable_io()->set_stderr(request.stderr());
  event.mutable_io()->set_terminal(request.terminal());
  event.set_checkpoint(request.checkpoint());
  event.set_pid(pid_);
  events_.Publish("/tasks/create", event);
  spdlog::info("task {}: created ({})", request.id(), spec->sandbox ? "pod sandbox" : module_path);
  task::CreateTaskResponse response;
  response.set_pid(pid_);
  return response;
}

Result<task::StartResponse> TaskService::Start(const task::StartRequest& request) {
  MutexLock lifecycle(lifecycle_mutex_);
  nlohmann::json item;
  bool sandbox = false;
  {
    MutexLock lock(mutex_);
    WASMLET_RETURN_IF_ERROR(CheckTask(request.id(), request.exec_id()));
    if (status_ != task::CREATED) return FailedPrecondition("task " + request.id() + " was started already");
    sandbox = spec_.sandbox;
    item = item_ = PluginItem(spec_, create_.id(), module_path_);
  }
  std::string route_id;
  if (!sandbox) {
    auto installed = host_.Install(item);
    if (!installed.ok()) {
      // The function never ran: the task ends here, as a process that failed to start.
      MutexLock lock(mutex_);
      StopLocked(1);
      if (installed.status().code() == StatusCode::kAlreadyExists) {
        // Functions are named by container id on the node: the same id in another namespace.
        return AlreadyExists("the node's wasmlet daemon runs a function named " + create_.id() +
                             " already (a task of that id in another containerd namespace?); give this "
                             "container another id");
      }
      return installed.status();
    }
    route_id = *installed;
    std::ofstream(fs::path(create_.bundle()) / kInstalledMarker) << create_.id();
  }
  MutexLock lock(mutex_);
  installed_ = !sandbox;
  route_id_ = route_id;
  status_ = task::RUNNING;
  if (!create_.stdout().empty()) {
    // The reader opened the fifo before the task was created; without one, open fails at once.
    stdout_fd_ = open(create_.stdout().c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  }
  // Opened and left silent, so that the reader's copy ends at the close instead of failing on
  // a fifo no writer ever opened ("reading from a closed fifo" in containerd's log).
  if (!create_.stderr().empty())
    stderr_fd_ = open(create_.stderr().c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (!sandbox) Say("function " + create_.id() + " serves requests with header 'id: " + route_id + "'");
  events::TaskStart event;
  event.set_container_id(create_.id());
  event.set_pid(pid_);
  events_.Publish("/tasks/start", event);
  spdlog::info("task {}: started{}", create_.id(), sandbox ? "" : ", serving id '" + route_id + "'");
  task::StartResponse response;
  response.set_pid(pid_);
  return response;
}

Status TaskService::Kill(const task::KillRequest& request) {
  MutexLock lifecycle(lifecycle_mutex_);
  bool uninstall = false;
  {
    MutexLock lock(mutex_);
    WASMLET_RETURN_IF_ERROR(CheckTask(request.id(), request.exec_id()));
    if (status_ == task::STOPPED) return NotFound("process already finished");
    if (request.signal() == 0) return Status::Ok();  // "is it alive?"
    uninstall = installed_;
  }
  if (uninstall) {
    Status status = host_.Uninstall(create_.id());
    // A daemon that is gone serves the function no more either: the task is over all the same.
    if (!status.ok()) spdlog::warn("task {}: {}", request.id(), status.message());
    std::error_code ignored;
    fs::remove(fs::path(create_.bundle()) / kInstalledMarker, ignored);
  }
  MutexLock lock(mutex_);
  installed_ = false;
  StopLocked(ExitStatusFor(request.signal()));
  spdlog::info("task {}: stopped by signal {}", request.id(), request.signal());
  return Status::Ok();
}

Result<task::WaitResponse> TaskService::Wait(const task::WaitRequest& request) {
  MutexLock lock(mutex_);
  WASMLET_RETURN_IF_ERROR(CheckTask(request.id(), request.exec_id()));
  while (status_ != task::STOPPED) stopped_.Wait(mutex_);
  task::WaitResponse response;
  response.set_exit_status(exit_status_);
  *response.mutable_exited_at() = exited_at_;
  return response;
}

Result<task::DeleteResponse> TaskService::Delete(const task::DeleteRequest& request) {
  MutexLock lifecycle(lifecycle_mutex_);
  std::string rootfs;
  {
    MutexLock lock(mutex_);
    WASMLET_RETURN_IF_ERROR(CheckTask(request.id(), request.exec_id()));
    if (status_ == task::RUNNING) {
      return FailedPrecondition("task " + request.id() + " is running; kill it before deleting it");
    }
    if (status_ != task::STOPPED) StopLocked(0);  // created, never started
    rootfs = rootfs_;
  }
  if (!rootfs.empty()) WASMLET_RETURN_IF_ERROR(UnmountAll(rootfs));
  MutexLock lock(mutex_);
  deleted_ = true;
  events::TaskDelete event;
  event.set_container_id(create_.id());
  event.set_pid(pid_);
  event.set_exit_status(exit_status_);
  *event.mutable_exited_at() = exited_at_;
  events_.Publish("/tasks/delete", event);
  spdlog::info("task {}: deleted", create_.id());
  task::DeleteResponse response;
  response.set_pid(pid_);
  response.set_exit_status(exit_status_);
  *response.mutable_exited_at() = exited_at_;
  return response;
}

Result<task::StateResponse> TaskService::State(const task::StateRequest& request) {
  MutexLock lock(mutex_);
  WASMLET_RETURN_IF_ERROR(CheckTask(request.id(), request.exec_id()));
  task::StateResponse response;
  response.set_id(create_.id());
  response.set_bundle(create_.bundle());
  response.set_pid(pid_);
  response.set_status(status_);
  response.set_stdin(create_.stdin());
  response.set_stdout(create_.stdout());
  response.set_stderr(create_.stderr());
  response.set_terminal(create_.terminal());
  response.set_exit_status(exit_status_);
  if (status_ == task::STOPPED) *response.mutable_exited_at() = exited_at_;
  return response;
}

Result<task::PidsResponse> TaskService::Pids(const task::PidsRequest& request) {
  MutexLock lock(mutex_);
  WASMLET_RETURN_IF_ERROR(CheckTask(request.id(), ""));
  task::PidsResponse response;
  response.add_processes()->set_pid(pid_);
  return response;
}

Result<task::StatsResponse> TaskService::Stats(const task::StatsRequest& request) {
  bool running = false;
  {
    MutexLock lock(mutex_);
    WASMLET_RETURN_IF_ERROR(CheckTask(request.id(), ""));
    running = installed_;
  }
  io::containerd::cgroups::v1::Metrics metrics;
  if (running) {
    auto entry = host_.Describe(create_.id());
    if (!entry.ok()) return entry.status();
    // The function's instances are its "processes"; its memory is their linear memory.
    metrics.mutable_pids()->set_current(entry->value("instances", uint64_t{0}));
    auto* memory = metrics.mutable_memory()->mutable_usage();
    memory->set_usage(entry->value("memory_bytes", uint64_t{0}));
    memory->set_limit(entry->value("memory_limit_bytes", uint64_t{0}));
  }
  task::StatsResponse response;
  response.mutable_stats()->set_type_url(metrics.GetTypeName());
  response.mutable_stats()->set_value(metrics.SerializeAsString());
  return response;
}

Result<task::ConnectResponse> TaskService::Connect(const task::ConnectRequest& request) {
  task::ConnectResponse response;
  response.set_shim_pid(pid_);
  response.set_task_pid(pid_);
  response.set_version(WASMLET_VERSION);
  return response;
}

bool TaskService::Shutdown(const task::ShutdownRequest& request) {
  MutexLock lock(mutex_);
  return request.now() || !created_ || deleted_;
}

Status TaskService::Reconcile() {
  MutexLock lifecycle(lifecycle_mutex_);
  nlohmann::json item;
  {
    MutexLock lock(mutex_);
    if (!installed_ || status_ != task::RUNNING) return Status::Ok();
    item = item_;
  }
  auto entry = host_.Describe(create_.id());
  if (entry.ok()) return Status::Ok();
  if (entry.status().code() != StatusCode::kNotFound && entry.status().code() != StatusCode::kUnavailable) {
    return entry.status();
  }
  // Gone (the daemon died: Install starts it again) or forgotten (the daemon restarted).
  spdlog::warn("task {}: the node's wasmlet daemon does not serve the function ({}); installing it again",
               create_.id(), entry.status().message());
  auto installed = host_.Install(item);
  if (!installed.ok()) return installed.status();
  MutexLock lock(mutex_);
  route_id_ = *installed;
  spdlog::info("task {}: serving id '{}' again", create_.id(), route_id_);
  return Status::Ok();
}

std::string TaskService::route_id() const {
  MutexLock lock(mutex_);
  return route_id_;
}

}  // namespace wasmlet::shim
