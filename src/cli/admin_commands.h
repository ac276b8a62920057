// The commands that drive a running server through its admin API: ls, install, update,
// uninstall and top. They speak the same HTTP calls an operator would make with curl
// (docs/server.md, Operations), so what they show is what the API serves.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "common/status.h"

namespace wasmlet::cli {

struct AdminTarget {
  std::string address;  // host:port
  std::string token;    // sent as "Authorization: Bearer <token>" when not empty
};

// Where the admin API is: `flag` (--admin) when given, else the config's
// wasmlet.admin_address when `config_path` is given, else the default 127.0.0.1:34998. The
// token is WASMLET_ADMIN_TOKEN, else the config's admin_token.
Result<AdminTarget> ResolveAdmin(const std::string& flag, const std::string& config_path);

// `wasmlet ls`: one row per function (or the API's JSON with `json`).
Status ListFunctions(const AdminTarget& admin, bool json, std::ostream& out);

struct InstallOptions {
  std::string file;  // made absolute: the server resolves paths from its own directory
  std::string id;    // the plugin item's name: the route id unless the module reports its own
  std::optional<int> instances;
  std::optional<uint32_t> cpu_ms;
  std::optional<uint32_t> mem_mib;
};
// `wasmlet install`: prints the route id the function answers under.
Status Install(const AdminTarget& admin, const InstallOptions& options, std::ostream& out);
// `wasmlet update ID --instances N`. ID is a route id, or the name install --id gave.
Status Update(const AdminTarget& admin, const std::string& id, int instances, std::ostream& out);
// `wasmlet uninstall ID`: a route id (every plugin under it), or the name install --id gave.
Status Uninstall(const AdminTarget& admin, const std::string& id, std::ostream& out);

// `wasmlet top`: the functions with their request and error rates, redrawn every `interval`;
// `frames` frames, or until interrupted when 0. The screen is cleared between frames only when
// `out` is a terminal.
Status Top(const AdminTarget& admin, std::ostream& out, int frames, std::chrono::milliseconds interval,
           bool terminal);

}  // namespace wasmlet::cli
