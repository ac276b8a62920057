#include "shim/function_spec.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "wasm/module_info.h"

namespace wasmlet::shim {

namespace {

using nlohmann::json;

constexpr off_t kMaxModuleSize = off_t{256} << 20;  // an image is untrusted input
constexpr const char* kHowToFix =
    "the image's entrypoint must name the function's .wasm file (`wasmlet pack FILE.wasm` builds such an "
    "image)";

// A setting from the annotations (io.wasmlet.<key>) or the environment (WASMLET_<KEY>).
std::optional<std::string> Setting(const std::map<std::string, std::string>& annotations,
                                   const std::map<std::string, std::string>& env, const std::string& key) {
  if (auto it = annotations.find("io.wasmlet." + key); it != annotations.end()) return it->second;
  std::string upper = "WASMLET_";
  for (char c : key) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (auto it = env.find(upper); it != env.end()) return it->second;
  return std::nullopt;
}

Status IntSetting(const std::map<std::string, std::string>& annotations,
                  const std::map<std::string, std::string>& env, const std::string& key, int min, int max,
                  std::optional<int>& out) {
  auto text = Setting(annotations, env, key);
  if (!text) return Status::Ok();
  try {
    size_t used = 0;
    const long value = std::stol(*text, &used);
    if (used == text->size() && value >= min && value <= max) {
      out = static_cast<int>(value);
      return Status::Ok();
    }
  } catch (const std::exception&) {
  }
  return InvalidArgument("setting " + key + " (annotation io.wasmlet." + key + " or env WASMLET_*) is '" +
                         *text + "'; it must be a whole number from " + std::to_string(min) + " to " +
                         std::to_string(max));
}

// Parses the spec; a field of the wrong type throws (json::type_error).
Result<FunctionSpec> ParseFunctionSpecOrThrow(const std::string& config_json) {
  json spec;
  try {
    spec = json::parse(config_json);
  } catch (const json::parse_error& e) {
    return InvalidArgument(std::string("the bundle's config.json is not JSON: ") + e.what());
  }
  if (!spec.is_object()) return InvalidArgument("the bundle's config.json is not a JSON object");

  std::map<std::string, std::string> annotations;
  if (auto it = spec.find("annotations"); it != spec.end() && it->is_object()) {
    for (const auto& [key, value] : it->items())
      if (value.is_string()) annotations[key] = value.get<std::string>();
  }
  FunctionSpec out;
  if (auto it = annotations.find("io.kubernetes.cri.container-type");
      it != annotations.end() && it->second == "sandbox") {
    out.sandbox = true;
    return out;
  }

  const json process = spec.value("process", json::object());
  std::map<std::string, std::string> env;
  if (auto it = process.find("env"); it != process.end() && it->is_array()) {
    for (const auto& entry : *it) {
      if (!entry.is_string()) continue;
      const std::string text = entry.get<std::string>();
      const size_t eq = text.find('=');
      if (eq != std::string::npos) env[text.substr(0, eq)] = text.substr(eq + 1);
    }
  }
  const json args = process.value("args", json::array());
  if (!args.is_array() || args.empty() || !args[0].is_string() || args[0].get<std::string>().empty()) {
    return InvalidArgument(std::string("the container has no command (process.args is empty): ") + kHowToFix);
  }
  std::filesystem::path wasm = args[0].get<std::string>();
  if (wasm.is_relative()) wasm = std::filesystem::path(process.value("cwd", std::string("/"))) / wasm;
  out.wasm = wasm.lexically_normal().string();

  WASMLET_RETURN_IF_ERROR(IntSetting(annotations, env, "instance_num", 1, 4096, out.instance_num));
  WASMLET_RETURN_IF_ERROR(IntSetting(annotations, env, "cpu", 1, 24 * 3600 * 1000, out.cpu_ms));
  WASMLET_RETURN_IF_ERROR(IntSetting(annotations, env, "mem", 1, 4096, out.mem_mb));
  out.root_id = Setting(annotations, env, "root_id").value_or("");
  out.configuration = Setting(annotations, env, "configuration");
  return out;
}

}  // namespace

Result<FunctionSpec> ParseFunctionSpec(const std::string& config_json) {
  try {
    return ParseFunctionSpecOrThrow(config_json);
  } catch (const json::exception& e) {
    // A field of the wrong type (process not an object, cwd not a string, ...).
    return InvalidArgument(
        std::string("the bundle's config.json does not have the OCI runtime spec's shape: ") + e.what());
  }
}

Result<FunctionSpec> ReadFunctionSpec(const std::string& bundle) {
  const std::string path = bundle + "/config.json";
  std::ifstream in(path);
  if (!in) return NotFound("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  return ParseFunctionSpec(text.str());
}

Result<std::string> ResolveModule(const std::string& rootfs, const std::string& wasm) {
  const int root = open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return Internal("cannot open the rootfs " + rootfs + ": " + std::strerror(errno));
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const size_t start = wasm.find_first_not_of('/');
  const std::string relative = start == std::string::npos ? "" : wasm.substr(start);
  const int fd = static_cast<int>(
      syscall(SYS_openat2, root, relative.empty() ? "." : relative.c_str(), &how, sizeof how));
  const int error = errno;
  close(root);
  if (fd < 0) {
    return InvalidArgument("the image has no file " + wasm + " (args[0]): " + std::strerror(error) + "; " +
                           kHowToFix);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return InvalidArgument(wasm + " (args[0]) in the image is not a regular file; " + std::string(kHowToFix));
  }
  if (st.st_size > kMaxModuleSize) {
    close(fd);
    return InvalidArgument(wasm + " (args[0]) in the image is " + std::to_string(st.st_size / (1 << 20)) +
                           " MiB; a module may have at most " + std::to_string(kMaxModuleSize >> 20) +
                           " MiB");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = read(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  // The file's real path on the host: what the daemon loads (no symlink left to follow).
  char host_path[4096];
  const ssize_t len =
      readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), host_path, sizeof host_path - 1);
  close(fd);
  if (done != bytes.size()) return Internal("cannot read " + wasm + " in the image");
  if (len <= 0) return Internal("cannot tell where " + wasm + " is on the host");
  auto info = wasm::ParseModule(bytes);
  if (!info.ok()) {
    return InvalidArgument(
        wasm + " (args[0]) in the image is not a usable WebAssembly module: " + info.status().message());
  }
  return std::string(host_path, static_cast<size_t>(len));
}

nlohmann::json PluginItem(const FunctionSpec& spec, const std::string& name, const std::string& module_path) {
  json vm = {{"engine", "v8"}, {"path", module_path}};
  if (spec.cpu_ms) vm["cpu"] = *spec.cpu_ms;
  if (spec.mem_mb) vm["mem"] = *spec.mem_mb;
  json item = {{"name", name}, {"vm_config", vm}, {"instance_num", spec.instance_num.value_or(1)}};
  if (!spec.root_id.empty()) item["root_id"] = spec.root_id;
  if (spec.configuration) item["configuration"] = *spec.configuration;
  return item;
}

}  // namespace wasmlet::shim
