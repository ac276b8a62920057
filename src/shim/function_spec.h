// What a container asks of wasmlet: read from the OCI bundle's config.json that containerd
// writes for a task. args[0] names the .wasm inside the image's rootfs; the function's plugin
// settings come from annotations (io.wasmlet.<setting>) or, failing that, the environment
// (WASMLET_<SETTING>): instance_num, cpu (ms per request), mem (MiB per instance), root_id,
// configuration (the plugin configuration string handed to the module).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/status.h"

namespace wasmlet::shim {

struct FunctionSpec {
  // A Kubernetes pod sandbox (annotation io.kubernetes.cri.container-type=sandbox): it runs no
  // function; the task lives until it is killed, as a pause container would.
  bool sandbox = false;
  std::string wasm;  // args[0], resolved against process.cwd: an absolute path inside the rootfs
  std::optional<int> instance_num;
  std::optional<int> cpu_ms;
  std::optional<int> mem_mb;
  std::string root_id;
  std::optional<std::string> configuration;
};

// Parses an OCI runtime spec (the text of config.json). Errors name the field and what to do.
Result<FunctionSpec> ParseFunctionSpec(const std::string& config_json);
Result<FunctionSpec> ReadFunctionSpec(const std::string& bundle);

// Opens `wasm` inside `rootfs` as if `rootfs` were "/" (symlinks and ".." cannot leave it),
// checks that it is a regular file holding a WebAssembly module whose sections read cleanly,
// and returns its path on the host.
Result<std::string> ResolveModule(const std::string& rootfs, const std::string& wasm);

// The plugin item the admin API installs (the shape of a Layotto config item).
nlohmann::json PluginItem(const FunctionSpec& spec, const std::string& name, const std::string& module_path);

}  // namespace wasmlet::shim
