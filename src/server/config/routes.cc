#include "server/config/routes.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/address.h"
#include "common/text.h"
#include "server/config/config_json.h"

namespace wasmlet::server {
namespace {

using namespace config_json;

// Header values longer than this never match a regular expression.
constexpr size_t kMaxRegexSubject = 1024;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A duration field: absent leaves `out` as it is.
Status ReadDuration(const json& obj, const char* key, const std::string& path,
                    std::chrono::milliseconds& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_string()) {
    return Bad(path + "." + key, "expected a duration such as \"3s\" or \"500ms\", found " + TypeName(*it));
  }
  auto parsed = ParseDuration(it->get_ref<const std::string&>());
  if (!parsed.ok()) return Bad(path + "." + key, parsed.status().message());
  out = *parsed;
  return Status::Ok();
}

Status ParseCluster(const json& cluster, const std::string& path, ClusterConfig& out) {
  if (!cluster.is_object()) return Bad(path, "expected an object (a cluster), found " + TypeName(cluster));
  out.json_path = path;
  WASMLET_RETURN_IF_ERROR(ReadString(cluster, "name", path, out.name));
  if (out.name.empty()) return Bad(path + ".name", "missing: name the cluster (routes refer to it by name)");
  std::string type = "SIMPLE";
  WASMLET_RETURN_IF_ERROR(ReadString(cluster, "type", path, type));
  if (type != "SIMPLE") {
    return Bad(path + ".type",
               "\"" + Printable(type, 64) +
                   "\" is not supported: wasmlet's clusters are SIMPLE (a fixed list of hosts)");
  }
  std::string lb = "LB_ROUNDROBIN";
  WASMLET_RETURN_IF_ERROR(ReadString(cluster, "lb_type", path, lb));
  if (lb == "LB_ROUNDROBIN") {
    out.lb = LoadBalancing::kRoundRobin;
  } else if (lb == "LB_RANDOM") {
    out.lb = LoadBalancing::kRandom;
  } else {
    return Bad(path + ".lb_type",
               "\"" + Printable(lb, 64) + "\" is not supported: use LB_ROUNDROBIN or LB_RANDOM");
  }
  WASMLET_RETURN_IF_ERROR(ReadDuration(cluster, "connect_timeout", path, out.connect_timeout));
  if (out.connect_timeout.count() == 0)
    return Bad(path + ".connect_timeout", "must be at least 1ms (no connection could be made in none)");
  WASMLET_RETURN_IF_ERROR(
      ReadInt(cluster, "max_request_per_conn", path, out.max_request_per_conn, 0, 1 << 30));
  auto hosts = cluster.find("hosts");
  if (hosts == cluster.end() || !hosts->is_array() || hosts->empty()) {
    return Bad(path + ".hosts",
               "missing: list the cluster's hosts, e.g. [{\"address\": \"127.0.0.1:8080\"}]");
  }
  for (size_t i = 0; i < hosts->size(); ++i) {
    const std::string hpath = path + ".hosts[" + std::to_string(i) + "]";
    const json& host = (*hosts)[i];
    if (!host.is_object()) return Bad(hpath, "expected an object with an address, found " + TypeName(host));
    std::string address;
    WASMLET_RETURN_IF_ERROR(ReadString(host, "address", hpath, address));
    auto split = SplitHostPort(address);
    if (!split.ok() || split->first.empty() || split->second == 0) {
      return Bad(hpath + ".address",
                 "\"" + Printable(address, 128) + "\" is not host:port (e.g. 127.0.0.1:8080)");
    }
    out.hosts.push_back(address);
  }
  return Status::Ok();
}

Status ParseRule(const json& rule, const std::string& path, RouteRule& out) {
  if (!rule.is_object()) return Bad(path, "expected an object (a route), found " + TypeName(rule));
  out.json_path = path;
  auto match = rule.find("match");
  if (match != rule.end() && !match->is_null()) {
    const std::string mpath = path + ".match";
    if (!match->is_object()) return Bad(mpath, "expected an object, found " + TypeName(*match));
    WASMLET_RETURN_IF_ERROR(ReadString(*match, "prefix", mpath, out.prefix));
    WASMLET_RETURN_IF_ERROR(ReadString(*match, "path", mpath, out.path));
    if (!out.prefix.empty() && !out.path.empty()) return Bad(mpath, "give a prefix or a path, not both");
    WASMLET_RETURN_IF_ERROR(
        ForEachElement(*match, "headers", mpath, [&](const json& header, const std::string& hpath) {
          if (!header.is_object()) return Bad(hpath, "expected an object, found " + TypeName(header));
          HeaderMatch h;
          bool regex = false;
          WASMLET_RETURN_IF_ERROR(ReadString(header, "name", hpath, h.name));
          WASMLET_RETURN_IF_ERROR(ReadString(header, "value", hpath, h.value));
          WASMLET_RETURN_IF_ERROR(ReadBool(header, "regex", hpath, regex));
          if (h.name.empty()) return Bad(hpath + ".name", "missing: name the header to match");
          if (regex) {
            try {
              h.regex = std::make_shared<const std::regex>(h.value, std::regex::ECMAScript);
            } catch (const std::regex_error& e) {
              return Bad(hpath + ".value", "not a regular expression: " + std::string(e.what()));
            }
          }
          out.headers.push_back(std::move(h));
          return Status::Ok();
        }));
  }
  auto route = rule.find("route");
  auto direct = rule.find("direct_response");
  const bool has_route = route != rule.end() && !route->is_null();
  const bool has_direct = direct != rule.end() && !direct->is_null();
  if (has_route == has_direct) return Bad(path, "give either a route (to a cluster) or a direct_response");
  if (has_route) {
    const std::string rpath = path + ".route";
    if (!route->is_object()) return Bad(rpath, "expected an object, found " + TypeName(*route));
    WASMLET_RETURN_IF_ERROR(ReadString(*route, "cluster_name", rpath, out.cluster));
    if (out.cluster.empty())
      return Bad(rpath + ".cluster_name", "missing: name the cluster to send requests to");
    WASMLET_RETURN_IF_ERROR(ReadDuration(*route, "timeout", rpath, out.timeout));
  } else {
    const std::string dpath = path + ".direct_response";
    if (!direct->is_object()) return Bad(dpath, "expected an object, found " + TypeName(*direct));
    abi::HttpResponse response;
    WASMLET_RETURN_IF_ERROR(ReadInt(*direct, "status", dpath, response.status, 200, 599));
    WASMLET_RETURN_IF_ERROR(ReadString(*direct, "body", dpath, response.body));
    out.direct = std::move(response);
  }
  return Status::Ok();
}

// How closely `domain` matches `host`: 0 = not at all; higher wins.
size_t DomainScore(std::string_view domain, std::string_view host) {
  constexpr size_t kExact = 1 << 30, kSuffix = 1 << 20, kPrefix = 1 << 10;
  if (domain == "*") return 1;
  if (EqualsIgnoreCase(domain, host)) return kExact;
  if (domain.size() > 1 && domain.substr(0, 1) == "*" && host.size() > domain.size() - 1 &&
      EqualsIgnoreCase(domain.substr(1), host.substr(host.size() - (domain.size() - 1)))) {
    return kSuffix + domain.size();
  }
  if (domain.size() > 1 && domain.back() == '*' && host.size() > domain.size() - 1 &&
      EqualsIgnoreCase(domain.substr(0, domain.size() - 1), host.substr(0, domain.size() - 1))) {
    return kPrefix + domain.size();
  }
  return 0;
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  const std::string shown = "\"" + Printable(std::string(text), 64) + "\"";
  if (text.empty()) return InvalidArgument("an empty duration: write e.g. \"3s\" or \"500ms\"");
  if (text == "0") return std::chrono::milliseconds(0);
  double total_ns = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == start)
      return InvalidArgument(shown + " is not a duration: write e.g. \"3s\", \"500ms\" or \"1m30s\"");
    const std::string number(text.substr(start, i - start));
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) return InvalidArgument(shown + " is not a duration");
    const size_t unit_start = i;
    while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) && text[i] != '.') ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    double ns_per_unit = 0;
    if (unit == "ns") {
      ns_per_unit = 1;
    } else if (unit == "us" || unit == "\u00b5s") {
      ns_per_unit = 1e3;
    } else if (unit == "ms") {
      ns_per_unit = 1e6;
    } else if (unit == "s") {
      ns_per_unit = 1e9;
    } else if (unit == "m") {
      ns_per_unit = 60e9;
    } else if (unit == "h") {
      ns_per_unit = 3600e9;
    } else {
      return InvalidArgument(shown + " has no unit or an unknown one: use ns, us, ms, s, m or h");
    }
    total_ns += value * ns_per_unit;
  }
  if (!std::isfinite(total_ns) || total_ns > 30 * 24 * 3600e9) {
    return InvalidArgument(shown + " is longer than 30 days");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(total_ns / 1e6)));
}

bool RouteRule::Matches(std::string_view request_path, const abi::HeaderList& request_headers) const {
  const std::string_view path_only = request_path.substr(0, request_path.find('?'));
  if (!path.empty() && path_only != path) return false;
  if (!prefix.empty() && path_only.substr(0, prefix.size()) != prefix) return false;
  for (const HeaderMatch& want : headers) {
    bool found = false;
    for (const auto& [name, value] : request_headers) {
      if (!EqualsIgnoreCase(name, want.name)) continue;
      // std::regex recurses about once a character: a long value could exhaust the stack.
      found = want.regex ? value.size() <= kMaxRegexSubject && std::regex_match(value, *want.regex)
                         : value == want.value;
      if (found) break;
    }
    if (!found) return false;
  }
  return true;
}

const RouteRule* RouterConfig::Match(std::string_view authority, std::string_view path,
                                     const abi::HeaderList& headers) const {
  const VirtualHost* best = nullptr;
  size_t best_score = 0;
  auto consider = [&](std::string_view host) {
    for (const VirtualHost& vhost : virtual_hosts) {
      for (const std::string& domain : vhost.domains) {
        const size_t score = DomainScore(domain, host);
        if (score > best_score) {
          best_score = score;
          best = &vhost;
        }
      }
    }
  };
  consider(authority);
  // "example.com:8080" also matches a domain written without the port.
  if (const size_t colon = authority.rfind(':'); best_score < (1u << 30) && colon != std::string_view::npos &&
                                                 authority.find(']', colon) == std::string_view::npos) {
    consider(authority.substr(0, colon));
  }
  if (!best) return nullptr;
  for (const RouteRule& rule : best->routes) {
    if (rule.Matches(path, headers)) return &rule;
  }
  return nullptr;
}

Status ParseClusterManager(const json& cluster_manager, const std::string& path,
                           std::vector<ClusterConfig>& clusters) {
  if (!cluster_manager.is_object())
    return Bad(path, "expected an object, found " + TypeName(cluster_manager));
  std::set<std::string> names;
  return ForEachElement(cluster_manager, "clusters", path, [&](const json& item, const std::string& cpath) {
    ClusterConfig cluster;
    WASMLET_RETURN_IF_ERROR(ParseCluster(item, cpath, cluster));
    if (!names.insert(cluster.name).second)
      return Bad(cpath + ".name", "the cluster '" + Printable(cluster.name, 64) + "' is defined twice");
    clusters.push_back(std::move(cluster));
    return Status::Ok();
  });
}

Status ParseRouter(const json& router, const std::string& path, RouterConfig& out) {
  if (!router.is_object()) return Bad(path, "expected an object (a router), found " + TypeName(router));
  WASMLET_RETURN_IF_ERROR(ReadString(router, "router_config_name", path, out.name));
  if (out.name.empty()) {
    return Bad(path + ".router_config_name",
               "missing: name the router (a listener's proxy filter refers to it)");
  }
  return ForEachElement(router, "virtual_hosts", path, [&](const json& vhost, const std::string& vpath) {
    if (!vhost.is_object()) return Bad(vpath, "expected an object, found " + TypeName(vhost));
    VirtualHost host;
    WASMLET_RETURN_IF_ERROR(ReadString(vhost, "name", vpath, host.name));
    WASMLET_RETURN_IF_ERROR(
        ForEachElement(vhost, "domains", vpath, [&](const json& domain, const std::string& dpath) {
          if (!domain.is_string() || domain.get_ref<const std::string&>().empty())
            return Bad(dpath, "expected a host name, \"*.suffix\", \"prefix.*\" or \"*\"");
          host.domains.push_back(domain.get<std::string>());
          return Status::Ok();
        }));
    if (host.domains.empty()) host.domains.push_back("*");
    WASMLET_RETURN_IF_ERROR(
        ForEachElement(vhost, "routers", vpath, [&](const json& item, const std::string& rpath) {
          RouteRule rule;
          WASMLET_RETURN_IF_ERROR(ParseRule(item, rpath, rule));
          host.routes.push_back(std::move(rule));
          return Status::Ok();
        }));
    out.virtual_hosts.push_back(std::move(host));
    return Status::Ok();
  });
}

Status CheckRouters(const std::vector<RouterConfig>& routers, const std::vector<ClusterConfig>& clusters) {
  std::set<std::string> names;
  for (const RouterConfig& router : routers) {
    if (!names.insert(router.name).second) {
      return InvalidArgument("config servers[].routers[]: the router '" + Printable(router.name, 64) +
                             "' is defined twice");
    }
    for (const VirtualHost& host : router.virtual_hosts) {
      for (const RouteRule& rule : host.routes) {
        if (rule.cluster.empty()) continue;
        const bool known = std::any_of(clusters.begin(), clusters.end(),
                                       [&](const ClusterConfig& c) { return c.name == rule.cluster; });
        if (known) continue;
        std::string have;
        for (const ClusterConfig& c : clusters) have += (have.empty() ? "" : ", ") + c.name;
        return Bad(rule.json_path + ".route.cluster_name",
                   "no cluster is named '" + Printable(rule.cluster, 64) +
                       "' (cluster_manager.clusters has: " + (have.empty() ? "none" : have) + ")");
      }
    }
  }
  return Status::Ok();
}

}  // namespace wasmlet::server
