#include "cli/admin_commands.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "common/address.h"
#include "common/admin_call.h"
#include "common/text.h"
#include "server/config/config.h"

namespace wasmlet::cli {
namespace {

using nlohmann::json;

constexpr const char* kDefaultAdmin = "127.0.0.1:34998";
// An install reads and compiles the module before it answers.
constexpr std::chrono::milliseconds kChangeTimeout{60000};
constexpr std::chrono::milliseconds kReadTimeout{5000};

// One admin call; the answer's JSON on a 2xx, else an error that says what to do.
Result<json> Call(const AdminTarget& admin, const std::string& method, const std::string& path,
                  const json& body = nullptr) {
  const auto timeout = method == "GET" ? kReadTimeout : kChangeTimeout;
  auto response =
      CallAdmin(admin.address, admin.token, method, path, body.is_null() ? "" : ToJson(body), timeout);
  if (!response.ok()) {
    if (response.status().code() == StatusCode::kDeadlineExceeded) {
      return Status(StatusCode::kDeadlineExceeded, "the admin API at " + admin.address + " did not answer " +
                                                       method + " " + path + " within " +
                                                       std::to_string(timeout.count() / 1000) + " s");
    }
    return Status(StatusCode::kUnavailable,
                  "cannot reach the admin API at " + admin.address + " (" + response.status().message() +
                      "); is wasmlet running? Give its address with --admin HOST:PORT "
                      "or its config with -c");
  }
  if (response->status == 401) {
    return Status(StatusCode::kFailedPrecondition, "the admin API at " + admin.address +
                                                       " needs its token: set WASMLET_ADMIN_TOKEN to the "
                                                       "server's wasmlet.admin_token");
  }
  if (response->status < 200 || response->status > 299) {
    const std::string why = Printable(AdminErrorOf(response->body), 500);
    const StatusCode code = response->status == 404   ? StatusCode::kNotFound
                            : response->status == 409 ? StatusCode::kAlreadyExists
                            : response->status < 500  ? StatusCode::kInvalidArgument
                                                      : StatusCode::kUnavailable;
    return Status(code, why);
  }
  json answer = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded())
    return Internal("the admin API's answer to " + path + " is not JSON: " + Printable(response->body, 200));
  return answer;
}

// A field of a /wasm/list row, 0 or "" when it is missing or of another type (an older
// server): the table still prints.
uint64_t Number(const json& row, const char* key) {
  auto it = row.find(key);
  return it != row.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}
std::string Text(const json& row, const char* key) {
  auto it = row.find(key);
  return it != row.end() && it->is_string() ? Printable(it->get<std::string>(), 80) : "";
}

std::string Mib(uint64_t bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1 << 20);
  return s.str();
}

// A function's linear memory as of its instances' last requests, against their caps summed.
std::string Memory(const json& row) {
  const uint64_t limit = Number(row, "memory_limit_bytes");
  return Mib(Number(row, "memory_bytes")) + (limit > 0 ? " / " + Mib(limit) : "");
}

std::string Rate(double per_second) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(per_second < 10 ? 1 : 0) << per_second;
  return s.str();
}

// Rows of text as columns, each as wide as its widest cell, the last one left unpadded.
void PrintTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

Result<json> List(const AdminTarget& admin) {
  auto list = Call(admin, "GET", "/wasm/list");
  if (!list.ok()) return list.status();
  if (!list->is_array())
    return Internal("the admin API's /wasm/list is not a list: " + Printable(list->dump(), 200));
  return list;
}

}  // namespace

Result<AdminTarget> ResolveAdmin(const std::string& flag, const std::string& config_path) {
  AdminTarget target{flag.empty() ? kDefaultAdmin : flag, ""};
  std::string config_token;
  if (!config_path.empty()) {
    auto config = server::LoadConfig(config_path);
    if (!config.ok()) return config.status();
    if (config->admin_address.empty() && flag.empty())
      return InvalidArgument(config_path + " turns the admin API off (wasmlet.admin_address is \"\")");
    if (flag.empty()) target.address = config->admin_address;
    config_token = config->admin_token;
  }
  auto split = SplitHostPort(target.address);
  if (!split.ok())
    return InvalidArgument("admin address '" + Printable(target.address, 64) +
                           "': " + split.status().message());
  // A server listening on every address is reached on loopback.
  auto [host, port] = *split;
  if (host.empty() || host == "0.0.0.0") target.address = "127.0.0.1:" + std::to_string(port);
  if (host == "::" || host == "[::]") target.address = "[::1]:" + std::to_string(port);
  const char* env = std::getenv("WASMLET_ADMIN_TOKEN");
  target.token = env != nullptr && *env != '\0' ? env : config_token;
  return target;
}

Status ListFunctions(const AdminTarget& admin, bool as_json, std::ostream& out) {
  auto list = List(admin);
  if (!list.ok()) return list.status();
  if (as_json) {
    out << ToJson(*list, 2) << "\n";
    return Status::Ok();
  }
  if (list->empty()) {
    out << "no functions (install one with: wasmlet install FILE.wasm --id ID)\n";
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows{
      {"ID", "NAME", "INSTANCES", "BUSY", "PLACEMENT", "REQUESTS", "ERRORS", "MEMORY MiB", "FILE"}};
  for (const json& f : *list) {
    rows.push_back({Text(f, "id"), Text(f, "name"), std::to_string(Number(f, "instances")),
                    std::to_string(Number(f, "busy")), Text(f, "placement"),
                    std::to_string(Number(f, "requests")), std::to_string(Number(f, "errors")), Memory(f),
                    Text(f, "file")});
  }
  PrintTable(rows, out);
  return Status::Ok();
}

Status Install(const AdminTarget& admin, const InstallOptions& options, std::ostream& out) {
  std::error_code ec;
  const std::filesystem::path file = std::filesystem::absolute(options.file, ec);
  if (ec || !std::ifstream(file))
    return NotFound(options.file + ": cannot open the file (does it exist, and is it readable?)");
  if (options.id.empty()) return InvalidArgument("--id must not be empty");
  json vm = {{"engine", "v8"}, {"path", file.string()}};
  if (options.cpu_ms) vm["cpu"] = *options.cpu_ms;
  if (options.mem_mib) vm["mem"] = *options.mem_mib;
  json item = {{"name", options.id}, {"vm_config", vm}};
  if (options.instances) item["instance_num"] = *options.instances;
  auto answer = Call(admin, "POST", "/wasm/install", item);
  if (!answer.ok()) return answer.status();
  const std::string id = Text(*answer, "id");
  out << "installed " << file.string() << " as id " << id << "\n";
  if (id != options.id) {
    out << "note: the module reports its own id, so requests reach it with the header 'id: " << id << "'\n";
  }
  return Status::Ok();
}

// The route id of the function whose plugin item is named `name`, when `name` is not a
// route id itself (install --id names the item; a module may report another id).
std::optional<std::string> RouteIdOfPlugin(const AdminTarget& admin, const std::string& name) {
  auto list = List(admin);
  if (!list.ok()) return std::nullopt;
  for (const json& f : *list) {
    if (Text(f, "name") == name && Text(f, "id") != name) return Text(f, "id");
  }
  return std::nullopt;
}

Status Update(const AdminTarget& admin, const std::string& id, int instances, std::ostream& out) {
  auto answer = Call(admin, "POST", "/wasm/update", {{"name", id}, {"instance_num", instances}});
  if (answer.status().code() == StatusCode::kNotFound) {
    if (auto route = RouteIdOfPlugin(admin, id))
      answer = Call(admin, "POST", "/wasm/update", {{"name", *route}, {"instance_num", instances}});
  }
  if (!answer.ok()) return answer.status();
  out << "updated " << Printable(id, 80) << ": " << instances << " instance" << (instances == 1 ? "" : "s")
      << (instances == 0 ? " (0: one per serving loop)" : "") << "\n";
  return Status::Ok();
}

Status Uninstall(const AdminTarget& admin, const std::string& id, std::ostream& out) {
  auto answer = Call(admin, "POST", "/wasm/uninstall", {{"name", id}});
  if (answer.status().code() == StatusCode::kNotFound) {
    // Not a route id: maybe the name of a plugin item (what install --id gave).
    auto by_plugin = Call(admin, "POST", "/wasm/uninstall", {{"plugin", id}});
    if (by_plugin.status().code() != StatusCode::kNotFound) answer = std::move(by_plugin);
  }
  if (!answer.ok()) return answer.status();
  out << "uninstalled " << Printable(id, 80) << "\n";
  return Status::Ok();
}

Status Top(const AdminTarget& admin, std::ostream& out, int frames, std::chrono::milliseconds interval,
           bool terminal) {
  struct Seen {
    uint64_t requests = 0;
    uint64_t errors = 0;
  };
  std::map<std::string, Seen> last;  // by id and name: a route id may have several plugins
  auto last_at = std::chrono::steady_clock::now();
  for (int frame = 0; frames == 0 || frame < frames; ++frame) {
    if (frame > 0) std::this_thread::sleep_for(interval);
    auto list = List(admin);
    if (!list.ok()) return list.status();
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - last_at).count();
    last_at = now;
    std::vector<std::pair<double, std::vector<std::string>>> rows;
    std::map<std::string, Seen> seen;
    for (const json& f : *list) {
      const std::string key = Text(f, "id") + "\n" + Text(f, "name");
      const Seen current{Number(f, "requests"), Number(f, "errors")};
      seen[key] = current;
      auto before = last.find(key);
      double rps = 0, eps = 0;
      std::string rps_text = "-", eps_text = "-";
      if (frame > 0 && before != last.end() && seconds > 0 && current.requests >= before->second.requests) {
        rps = static_cast<double>(current.requests - before->second.requests) / seconds;
        eps = static_cast<double>(current.errors - std::min(current.errors, before->second.errors)) / seconds;
        rps_text = Rate(rps);
        eps_text = Rate(eps);
      }
      rows.push_back({rps,
                      {Text(f, "id"), Text(f, "name"), rps_text, eps_text,
                       std::to_string(Number(f, "busy")) + "/" + std::to_string(Number(f, "instances")),
                       std::to_string(current.requests), std::to_string(current.errors), Memory(f),
                       Text(f, "placement")}});
    }
    last = std::move(seen);
    std::stable_sort(rows.begin(), rows.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    if (terminal) out << "\033[H\033[2J";
    out << "wasmlet top: " << admin.address << ", " << list->size() << " function"
        << (list->size() == 1 ? "" : "s") << ", every " << interval.count() / 1000.0 << " s"
        << (terminal ? " (Ctrl-C to stop)" : "") << "\n";
    std::vector<std::vector<std::string>> table{
        {"ID", "NAME", "REQ/S", "ERR/S", "BUSY", "REQUESTS", "ERRORS", "MEMORY MiB", "PLACEMENT"}};
    for (auto& row : rows) table.push_back(std::move(row.second));
    PrintTable(table, out);
    out << std::flush;
  }
  return Status::Ok();
}

}  // namespace wasmlet::cli
