#include "shim/node_daemon.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "common/address.h"
#include "common/admin_call.h"
#include "common/http_client.h"
#include "common/text.h"

namespace wasmlet::shim {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kDefaultSettingsPath = "/etc/wasmlet/shim.json";

std::string DefaultWasmletBinary() {
  std::error_code ignored;
  const fs::path self = fs::read_symlink("/proc/self/exe", ignored);
  const fs::path beside = self.parent_path() / "wasmlet";
  if (!self.empty() && fs::exists(beside, ignored)) return beside.string();
  return "wasmlet";  // found on PATH by execvp
}

// True while `pid` runs (a zombie, not yet reaped by init, has ended).
bool Running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// The last non-empty line of a log file, for an error message.
std::string LastLine(const std::string& path) {
  std::ifstream in(path);
  std::string line, last = "(its log is empty)";
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

}  // namespace

Result<ShimSettings> LoadShimSettings(const std::string& path_in) {
  std::string path = path_in;
  if (path.empty()) {
    const char* env = std::getenv("WASMLET_SHIM_CONFIG");
    path = env && *env ? env : kDefaultSettingsPath;
  }
  ShimSettings settings;
  std::ifstream in(path);
  if (!in) {
    if (path == kDefaultSettingsPath && errno == ENOENT) {
      settings.wasmlet_binary = DefaultWasmletBinary();
      return settings;
    }
    return NotFound("cannot read the shim settings " + path + ": " + std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    const json j = json::parse(text.str());
    if (!j.is_object()) return InvalidArgument(path + ": the shim settings must be a JSON object");
    const std::map<std::string, std::string ShimSettings::*> strings = {
        {"admin_address", &ShimSettings::admin_address},   {"admin_token", &ShimSettings::admin_token},
        {"wasmlet_binary", &ShimSettings::wasmlet_binary}, {"daemon_config", &ShimSettings::daemon_config},
        {"daemon_log", &ShimSettings::daemon_log},         {"state_dir", &ShimSettings::state_dir}};
    for (const auto& [key, value] : j.items()) {
      if (auto field = strings.find(key); field != strings.end()) {
        if (!value.is_string()) return InvalidArgument(path + ": " + key + " must be a string");
        settings.*(field->second) = value.get<std::string>();
      } else if (key == "start_timeout_ms") {
        if (!value.is_number_integer() || value.get<int>() <= 0)
          return InvalidArgument(path + ": start_timeout_ms must be a positive whole number");
        settings.start_timeout_ms = value.get<int>();
      } else if (key == "check_interval_ms") {
        if (!value.is_number_integer() || value.get<int>() < 0)
          return InvalidArgument(path + ": check_interval_ms must be a whole number, 0 or more");
        settings.check_interval_ms = value.get<int>();
      } else {
        return InvalidArgument(
            path + ": unknown setting '" + key +
            "' (known: admin_address, admin_token, wasmlet_binary, daemon_config, daemon_log, "
            "state_dir, start_timeout_ms, check_interval_ms)");
      }
    }
  } catch (const json::exception& e) {
    return InvalidArgument(path + " is not valid JSON: " + e.what());
  }
  if (settings.wasmlet_binary.empty()) settings.wasmlet_binary = DefaultWasmletBinary();
  return settings;
}

Result<NodeDaemon::Answer> NodeDaemon::Call(const std::string& method, const std::string& target,
                                            const std::string& body, int timeout_ms) {
  auto split = SplitHostPort(settings_.admin_address);
  if (!split.ok() || split->first.empty()) {
    return InvalidArgument("admin_address '" + settings_.admin_address + "' must be host:port");
  }
  auto answer = CallAdmin(settings_.admin_address, settings_.admin_token, method, target, body,
                          std::chrono::milliseconds(timeout_ms));
  if (!answer.ok()) {
    return Unavailable("the wasmlet daemon at " + settings_.admin_address + " does not answer " + method +
                       " " + target + ": " + answer.status().message());
  }
  return Answer{answer->status, std::move(answer->body)};
}

bool NodeDaemon::Ready() {
  auto answer = Call("GET", "/health/readiness", "", 1000);
  return answer.ok() && answer->status == 200;
}

Status NodeDaemon::EnsureRunning() {
  if (Ready()) return Status::Ok();
  std::error_code error;
  fs::create_directories(settings_.state_dir, error);
  const std::string lock_path = settings_.state_dir + "/daemon.lock";
  const int lock = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0) return Internal("cannot open " + lock_path + ": " + std::strerror(errno));
  flock(lock, LOCK_EX);
  Status status = Status::Ok();
  if (!Ready()) {  // another shim may have started it while we waited for the lock
    auto daemon = Spawn();
    status = daemon.ok() ? WaitReady(*daemon) : daemon.status();
  }
  flock(lock, LOCK_UN);
  close(lock);
  return status;
}

Status NodeDaemon::WaitReady(pid_t daemon) {
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.start_timeout_ms);
  while (!Ready()) {
    if (!Running(daemon)) {
      // Say why at once, rather than after the whole timeout.
      return FailedPrecondition("the wasmlet daemon started with " + settings_.daemon_config + " exited: " +
                                LastLine(settings_.daemon_log) + " (its log: " + settings_.daemon_log + ")");
    }
    if (std::chrono::steady_clock::now() > give_up) {
      return Unavailable("the wasmlet daemon started with " + settings_.daemon_config +
                         " did not become ready at " + settings_.admin_address + " within " +
                         std::to_string(settings_.start_timeout_ms) + " ms; see its log, " +
                         settings_.daemon_log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Ok();
}

Result<pid_t> NodeDaemon::Spawn() {
  std::error_code error;
  if (!fs::exists(settings_.daemon_config, error)) {
    return FailedPrecondition("no wasmlet daemon answers at " + settings_.admin_address +
                              ", and the shim cannot start one: " + settings_.daemon_config +
                              " does not exist (set daemon_config in the shim settings, or "
                              "start `wasmlet start -c CONFIG` on the node)");
  }
  const fs::path config = fs::absolute(settings_.daemon_config);
  fs::create_directories(fs::path(settings_.daemon_log).parent_path(), error);
  // Everything the child needs is prepared here: between fork and exec a process with threads
  // may only make async-signal-safe calls (no allocation).
  const std::string pid_path = settings_.state_dir + "/wasmlet.pid";
  const std::string folder = config.parent_path().string();
  const std::string path = config.string();
  const std::string& binary = settings_.wasmlet_binary;
  const std::string& log_path = settings_.daemon_log;
  // Double fork: the daemon belongs to no shim (it outlives them all) and has its own session.
  const pid_t child = fork();
  if (child < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    setsid();
    const pid_t daemon = fork();
    if (daemon != 0) {
      const int pid_file = open(pid_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (pid_file >= 0 && daemon > 0) dprintf(pid_file, "%d\n", daemon);
      _exit(daemon < 0 ? 1 : 0);
    }
    const int in = open("/dev/null", O_RDONLY);
    const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
    if (in >= 0) dup2(in, 0);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    // Relative paths in the daemon's config are relative to the config's folder.
    if (chdir(folder.c_str()) != 0) _exit(1);
    execlp(binary.c_str(), binary.c_str(), "start", "-c", path.c_str(), static_cast<char*>(nullptr));
    dprintf(2, "containerd-shim-wasmlet-v2: cannot run %s: %s\n", binary.c_str(), std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  pid_t daemon = 0;
  if (std::ifstream in(pid_path); !(in >> daemon) || daemon <= 0) {
    return Internal("could not start the wasmlet daemon (fork failed); see " + settings_.daemon_log);
  }
  return daemon;
}

Result<std::string> NodeDaemon::Install(const json& item) {
  WASMLET_RETURN_IF_ERROR(EnsureRunning());
  auto answer = Call("POST", "/wasm/install", ToJson(item), 60000);
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) {
    const std::string message = "the wasmlet daemon refused the function: " + AdminErrorOf(answer->body);
    if (answer->status == 409) return AlreadyExists(message);
    if (answer->status >= 500) return Internal(message);
    return InvalidArgument(message);
  }
  try {
    return json::parse(answer->body).at("id").get<std::string>();
  } catch (const json::exception&) {
    return Internal("the wasmlet daemon's answer to /wasm/install has no id: " + answer->body);
  }
}

Status NodeDaemon::Uninstall(const std::string& name) {
  auto answer = Call("POST", "/wasm/uninstall", ToJson(json{{"plugin", name}}));
  if (!answer.ok()) return answer.status();
  if (answer->status == 200 || answer->status == 404) return Status::Ok();
  return Internal("the wasmlet daemon did not uninstall " + name + ": " + AdminErrorOf(answer->body));
}

Result<json> NodeDaemon::Describe(const std::string& name) {
  auto answer = Call("GET", "/wasm/list");
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) return Internal("GET /wasm/list: " + AdminErrorOf(answer->body));
  try {
    for (const json& entry : json::parse(answer->body))
      if (entry.value("name", "") == name) return entry;
  } catch (const json::exception& e) {
    return Internal(std::string("GET /wasm/list: ") + e.what());
  }
  return NotFound("the wasmlet daemon runs no function named " + name);
}

}  // namespace wasmlet::shim
