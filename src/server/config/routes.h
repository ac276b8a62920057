// Proxy mode's configuration in MOSN's shape: the clusters of `cluster_manager` (where requests
// can go) and the routers of `servers[].routers[]` (which request goes where), and how a router
// picks the rule for a request.
//
//   "cluster_manager": {"clusters": [{"name": "backend", "type": "SIMPLE", "lb_type": "LB_ROUNDROBIN",
//       "connect_timeout": "3s", "max_request_per_conn": 1000, "hosts": [{"address": "127.0.0.1:8080"}]}]}
//   "servers": [{"routers": [{"router_config_name": "main", "virtual_hosts": [{"name": "all",
//       "domains": ["*"], "routers": [
//         {"match": {"prefix": "/health"}, "direct_response": {"status": 200, "body": "ok"}},
//         {"match": {"prefix": "/", "headers": [{"name": "x-canary", "value": "1"}]},
//          "route": {"cluster_name": "backend", "timeout": "5s"}}]}]}], ...}]
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "abi/http.h"
#include "common/status.h"

namespace wasmlet::server {

enum class LoadBalancing { kRoundRobin, kRandom };

struct ClusterConfig {
  std::string name;
  LoadBalancing lb = LoadBalancing::kRoundRobin;
  std::vector<std::string> hosts;  // "host:port"
  std::chrono::milliseconds connect_timeout{3000};
  uint32_t max_request_per_conn = 0;  // requests one upstream connection carries; 0 = no limit
  std::string json_path;              // for messages
};

struct HeaderMatch {
  std::string name;   // compared without regard to case
  std::string value;  // the whole value, or a regular expression (ECMAScript) over it; a value
                      // over 1 KiB never matches a regular expression
  std::shared_ptr<const std::regex> regex;
};

struct RouteRule {
  // match: a path prefix, or a whole path (without the query), and headers that must all match.
  std::string prefix;
  std::string path;
  std::vector<HeaderMatch> headers;
  // route: the cluster the request goes to, and how long its answer may take (0: the upstream
  // client's default, 15 s).
  std::string cluster;
  std::chrono::milliseconds timeout{0};
  // direct_response: an answer given here, instead of a cluster.
  std::optional<abi::HttpResponse> direct;
  std::string json_path;

  bool Matches(std::string_view path, const abi::HeaderList& headers) const;
};

struct VirtualHost {
  std::string name;
  std::vector<std::string> domains;  // "example.com", "*.example.com", "example.*", "*"
  std::vector<RouteRule> routes;
};

struct RouterConfig {
  std::string name;  // router_config_name
  std::vector<VirtualHost> virtual_hosts;

  // The rule for a request, or nullptr (no route: 404). The virtual host is the one whose
  // domain matches the authority most closely (an exact name, then the longest "*.suffix",
  // then the longest "prefix.*", then "*"; a port in the authority is ignored when no domain
  // names it); its first rule that matches wins.
  const RouteRule* Match(std::string_view authority, std::string_view path,
                         const abi::HeaderList& headers) const;
};

// A duration as MOSN (Go) writes it: "300ms", "1.5s", "1m30s"; units ns, us, µs, ms, s, m, h.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// `cluster_manager`, at `path` ("cluster_manager"), into `clusters`.
Status ParseClusterManager(const nlohmann::json& cluster_manager, const std::string& path,
                           std::vector<ClusterConfig>& clusters);
// One entry of `servers[].routers[]`.
Status ParseRouter(const nlohmann::json& router, const std::string& path, RouterConfig& out);
// Every route names a cluster there is, and router names are not repeated.
Status CheckRouters(const std::vector<RouterConfig>& routers, const std::vector<ClusterConfig>& clusters);

}  // namespace wasmlet::server
