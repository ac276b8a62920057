// containerd-shim-wasmlet-v2: the containerd runtime v2 shim of io.containerd.wasmlet.v2.
//
// containerd runs it two ways (flags as Go's flag package writes them):
//   ... -namespace NS -address SOCK -publish-binary BIN -id ID start
//       in the bundle directory, TTRPC_ADDRESS set: fork the long-lived shim (which serves
//       ttrpc on a unix socket), print the socket's address ("unix://PATH"), exit.
//   ... -namespace NS -address SOCK -publish-binary BIN -id ID -bundle DIR delete
//       after a shim died: clean up what it left, print a DeleteResponse (protobuf) on stdout.
#include <fcntl.h>
#include <google/protobuf/util/time_util.h>
#include <openssl/sha.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/text.h"
#include "shim/events.h"
#include "shim/mounts.h"
#include "shim/node_daemon.h"
#include "shim/task_service.h"
#include "shim/ttrpc.h"
#include "task.pb.h"

namespace {

namespace fs = std::filesystem;
using namespace wasmlet;
using namespace wasmlet::shim;

struct Flags {
  std::string ns, address, publish_binary, id, bundle;
  bool debug = false;
  std::string action;
};

int Fail(const std::string& message) {
  std::cerr << "containerd-shim-wasmlet-v2: " << message << "\n";
  return 1;
}

// Go's flag syntax: -name value, -name=value, --name value; booleans take no value.
Result<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  std::map<std::string, std::string*> strings = {{"namespace", &flags.ns},
                                                 {"address", &flags.address},
                                                 {"publish-binary", &flags.publish_binary},
                                                 {"id", &flags.id},
                                                 {"bundle", &flags.bundle}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.empty() || arg[0] != '-') {
      if (!flags.action.empty()) return InvalidArgument("more than one action: " + flags.action + ", " + arg);
      flags.action = arg;
      continue;
    }
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "debug") {
      flags.debug = !value || *value == "true";
      continue;
    }
    auto it = strings.find(name);
    if (it == strings.end()) return InvalidArgument("unknown flag -" + name);
    if (!value) {
      if (i + 1 >= argc) return InvalidArgument("flag -" + name + " needs a value");
      value = argv[++i];
    }
    *it->second = *value;
  }
  if (flags.action != "" && flags.action != "start" && flags.action != "delete") {
    return InvalidArgument("unknown action '" + flags.action +
                           "' (containerd runs start, delete, or no action)");
  }
  if (flags.ns.empty() || flags.id.empty()) return InvalidArgument("-namespace and -id are required");
  return flags;
}

// One socket per (containerd, namespace, task): a short name under the state directory.
std::string SocketPath(const ShimSettings& settings, const Flags& flags) {
  const std::string key = flags.address + "\n" + flags.ns + "\n" + flags.id;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  return settings.state_dir + "/s/" + HexEncode({digest, 16});
}

void WriteFileAtomically(const std::string& path, const std::string& content) {
  const std::string temp = path + ".tmp";
  std::ofstream(temp) << content;
  std::rename(temp.c_str(), path.c_str());
}

// The long-lived shim: serves containerd.task.v2.Task on `listen_fd` until Shutdown.
int Serve(const Flags& flags, const ShimSettings& settings, int listen_fd, const std::string& ttrpc_address) {
  signal(SIGPIPE, SIG_IGN);

  auto logger = spdlog::stderr_logger_mt("shim");
  logger->set_pattern("[%Y-%m-%dT%H:%M:%S.%e] [wasmlet-shim " + flags.id + "] [%l] %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  spdlog::set_level(flags.debug ? spdlog::level::debug : spdlog::level::info);

  NodeDaemon daemon(settings);
  EventForwarder events(ttrpc_address, flags.ns);
  TaskService service(daemon, events, static_cast<uint32_t>(getpid()));
  TtrpcServer server;
  service.RegisterWith(server, [&server] { server.Stop(); });
  if (settings.check_interval_ms > 0) {
    // Detached: it sleeps most of the time, and the process ends with _exit below.
    std::thread([&service, interval = std::chrono::milliseconds(settings.check_interval_ms)] {
      for (;;) {
        std::this_thread::sleep_for(interval);
        if (Status status = service.Reconcile(); !status.ok()) spdlog::warn("{}", status.message());
      }
    }).detach();
  }
  server.Serve(listen_fd);

  events.Flush(std::chrono::seconds(3));
  const std::string socket_path = SocketPath(settings, flags);
  unlink(socket_path.c_str());
  spdlog::info("shim exits");
  spdlog::shutdown();
  // Request threads are detached and may still hold the answered connection: end here.
  _exit(0);
}

int Start(const Flags& flags, const ShimSettings& settings) {
  const std::string socket_path = SocketPath(settings, flags);
  const std::string address = "unix://" + socket_path;
  std::error_code error;
  fs::create_directories(fs::path(socket_path).parent_path(), error);
  if (error)
    return Fail("cannot create " + fs::path(socket_path).parent_path().string() + ": " + error.message());
  // A shim of this task that is alive already (containerd retrying) serves it on.
  if (auto fd = ConnectUnix(socket_path, 0); fd.ok()) {
    close(*fd);
    std::cout << address << std::endl;
    return 0;
  }
  const char* ttrpc_address = std::getenv("TTRPC_ADDRESS");
  if (!ttrpc_address || !*ttrpc_address) return Fail("TTRPC_ADDRESS is not set: containerd sets it");
  auto listen_fd = ListenUnix(socket_path);
  if (!listen_fd.ok()) return Fail(listen_fd.status().message());

  // The long-lived shim is this process forked, not a new program: no second exec and dynamic
  // link on the way to a running task. Nothing runs a thread yet, so the fork is safe.
  const pid_t child = fork();
  if (child < 0) return Fail(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    setsid();
    const int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    // containerd reads the shim's log from the fifo "log" in the bundle (and holds it open).
    const int log = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (log >= 0) fcntl(log, F_SETFL, fcntl(log, F_GETFL) & ~O_NONBLOCK);
    dup2(log >= 0 ? log : null, 2);
    // containerd waits for the end of start's output: keep nothing of it open.
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != *listen_fd) close(fd);
    _exit(Serve(flags, settings, *listen_fd, ttrpc_address));
  }
  close(*listen_fd);
  // Where containerd finds this task's shim again after it restarts.
  WriteFileAtomically("address", address);
  WriteFileAtomically("shim.pid", std::to_string(child));
  std::cout << address << std::endl;
  return 0;
}

int Delete(const Flags& flags, const ShimSettings& settings) {
  std::string bundle = flags.bundle;
  std::error_code ignored;
  if (bundle.empty()) bundle = fs::current_path(ignored).string();
  // Uninstall only what the dead shim had installed (a clean stop removed the marker): the
  // function of a newer task of the same id must not be touched.
  const fs::path marker = fs::path(bundle) / kInstalledMarker;
  std::string name;
  if (std::ifstream in(marker); in >> name) {
    NodeDaemon daemon(settings);
    // The daemon may be down too: then it serves the function no more either.
    if (Status status = daemon.Uninstall(name); !status.ok() && status.code() != StatusCode::kUnavailable) {
      std::cerr << "uninstalling " << name << ": " << status.message() << "\n";
    }
    fs::remove(marker, ignored);
  }
  const std::string rootfs = fs::weakly_canonical(fs::path(bundle) / "rootfs").string();
  if (Status status = UnmountAll(rootfs); !status.ok()) std::cerr << status.message() << "\n";
  unlink(SocketPath(settings, flags).c_str());

  containerd::task::v2::DeleteResponse response;
  response.set_exit_status(128 + SIGKILL);  // the shim died: its task ended as if killed
  *response.mutable_exited_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  std::cout << response.SerializeAsString() << std::flush;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto flags = ParseFlags(argc, argv);
  if (!flags.ok()) return Fail(flags.status().message());
  auto settings = LoadShimSettings();
  if (!settings.ok()) return Fail(settings.status().message());
  if (flags->action == "start") return Start(*flags, *settings);
  return Delete(*flags, *settings);
}
