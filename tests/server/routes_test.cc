// Proxy mode's configuration: MOSN's cluster_manager and routers, read from the config, and how
// a router picks the rule for a request.
#include "server/config/routes.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/config/config.h"

namespace wasmlet::server {
namespace {

using namespace std::chrono_literals;

// A config in MOSN's shape: two clusters, one router with two virtual hosts, and the function
// listener wasmlet needs today.
std::string MosnConfig(const std::string& clusters, const std::string& routers) {
  return R"({"cluster_manager": {"clusters": )" + clusters + R"(},
  "servers": [{"routers": )" +
         routers + R"(,
    "listeners": [{"name": "wasm", "address": "127.0.0.1:2045",
      "stream_filters": [{"type": "Layotto", "config": {"f": {"vm_config": {"path": "f.wasm"}}}}]}]}]})";
}

const char* kClusters = R"([
  {"name": "backend", "type": "SIMPLE", "lb_type": "LB_RANDOM", "connect_timeout": "1.5s",
   "max_request_per_conn": 100, "conn_buffer_limit_bytes": 32768,
   "hosts": [{"address": "127.0.0.1:8080", "weight": 1}, {"address": "[::1]:8081"}]},
  {"name": "canary", "hosts": [{"address": "localhost:9090"}]}])";

const char* kRouters = R"([{"router_config_name": "main", "virtual_hosts": [
  {"name": "api", "domains": ["api.example.com", "*.api.example.com"], "routers": [
    {"match": {"path": "/health"}, "direct_response": {"status": 204}},
    {"match": {"prefix": "/", "headers": [{"name": "X-Canary", "value": "1"}]},
     "route": {"cluster_name": "canary", "timeout": "250ms"}},
    {"match": {"prefix": "/v", "headers": [{"name": "x-version", "value": "v[0-9]+", "regex": true}]},
     "route": {"cluster_name": "canary"}},
    {"match": {"prefix": "/"}, "route": {"cluster_name": "backend"}}]},
  {"name": "rest", "domains": ["*"], "routers": [
    {"match": {"prefix": "/"}, "direct_response": {"status": 404, "body": "no such site"}}]}]}])";

TEST(RoutesTest, ReadsMosnsClustersAndRouters) {
  auto config = ParseConfig(MosnConfig(kClusters, kRouters));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->clusters.size(), 2u);
  const ClusterConfig& backend = config->clusters[0];
  EXPECT_EQ(backend.name, "backend");
  EXPECT_EQ(backend.lb, LoadBalancing::kRandom);
  EXPECT_EQ(backend.connect_timeout, 1500ms);
  EXPECT_EQ(backend.max_request_per_conn, 100u);
  EXPECT_EQ(backend.hosts, (std::vector<std::string>{"127.0.0.1:8080", "[::1]:8081"}));
  const ClusterConfig& canary = config->clusters[1];  // the defaults
  EXPECT_EQ(canary.lb, LoadBalancing::kRoundRobin);
  EXPECT_EQ(canary.connect_timeout, 3000ms);
  EXPECT_EQ(canary.max_request_per_conn, 0u);

  ASSERT_EQ(config->routers.size(), 1u);
  const RouterConfig& router = config->routers[0];
  EXPECT_EQ(router.name, "main");
  ASSERT_EQ(router.virtual_hosts.size(), 2u);
  ASSERT_EQ(router.virtual_hosts[0].routes.size(), 4u);
  const RouteRule& health = router.virtual_hosts[0].routes[0];
  ASSERT_TRUE(health.direct.has_value());
  EXPECT_EQ(health.direct->status, 204u);
  EXPECT_EQ(router.virtual_hosts[0].routes[1].timeout, 250ms);
  EXPECT_EQ(router.virtual_hosts[0].routes[3].cluster, "backend");
}

TEST(RoutesTest, ARequestGoesToTheClosestDomainsFirstMatchingRule) {
  auto config = ParseConfig(MosnConfig(kClusters, kRouters));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const RouterConfig& router = config->routers[0];
  auto route = [&](std::string_view authority, std::string_view path, abi::HeaderList headers = {}) {
    const RouteRule* rule = router.Match(authority, path, headers);
    if (!rule) return std::string("none");
    return rule->direct ? "direct " + std::to_string(rule->direct->status) : rule->cluster;
  };
  EXPECT_EQ(route("api.example.com", "/health"), "direct 204");
  EXPECT_EQ(route("api.example.com", "/health?full=1"), "direct 204");  // the query is not the path
  EXPECT_EQ(route("api.example.com", "/healthz"), "backend");           // a path matches whole
  EXPECT_EQ(route("API.Example.com:8443", "/x"), "backend");            // case and port do not count
  EXPECT_EQ(route("eu.api.example.com", "/x"), "backend");              // "*.api.example.com"
  EXPECT_EQ(route("api.example.com", "/x", {{"x-canary", "1"}}), "canary");
  EXPECT_EQ(route("api.example.com", "/x", {{"x-canary", "2"}}), "backend");
  EXPECT_EQ(route("api.example.com", "/v2/x", {{"X-Version", "v2"}}), "canary");
  EXPECT_EQ(route("api.example.com", "/v2/x", {{"x-version", "v2-beta"}}),
            "backend");  // a regex matches whole
  // A value too long for a regular expression does not match (and cannot exhaust the stack).
  EXPECT_EQ(route("api.example.com", "/v2/x", {{"x-version", "v" + std::string(100000, '2')}}), "backend");
  EXPECT_EQ(route("example.com", "/x"), "direct 404");  // the "*" host
  EXPECT_EQ(route("", "/x"), "direct 404");

  RouterConfig only_api;
  only_api.virtual_hosts.push_back(router.virtual_hosts[0]);
  EXPECT_EQ(only_api.Match("other.org", "/", {}), nullptr);
}

TEST(RoutesTest, WildcardDomainsPreferTheLongestAndSuffixesBeforePrefixes) {
  RouterConfig router;
  auto host = [](std::string name, std::vector<std::string> domains) {
    VirtualHost h;
    h.name = std::move(name);
    h.domains = std::move(domains);
    RouteRule rule;
    rule.cluster = h.name;
    h.routes.push_back(rule);
    return h;
  };
  router.virtual_hosts = {host("any", {"*"}), host("prefix", {"api.*"}), host("short", {"*.com"}),
                          host("long", {"*.example.com"}), host("exact", {"www.example.com"})};
  auto cluster = [&](std::string_view authority) {
    const RouteRule* rule = router.Match(authority, "/", {});
    return rule ? rule->cluster : "none";
  };
  EXPECT_EQ(cluster("www.example.com"), "exact");
  EXPECT_EQ(cluster("api.example.com"), "long");  // a suffix wildcard before a prefix one
  EXPECT_EQ(cluster("shop.other.com"), "short");
  EXPECT_EQ(cluster("api.internal"), "prefix");
  EXPECT_EQ(cluster("localhost"), "any");
}

TEST(RoutesTest, DurationsReadAsMosnWritesThem) {
  EXPECT_EQ(*ParseDuration("300ms"), 300ms);
  EXPECT_EQ(*ParseDuration("1.5s"), 1500ms);
  EXPECT_EQ(*ParseDuration("1m30s"), 90000ms);
  EXPECT_EQ(*ParseDuration("2h"), 7200000ms);
  EXPECT_EQ(*ParseDuration("0"), 0ms);
  EXPECT_EQ(*ParseDuration("1500us"), 2ms);  // rounded up: a timeout never shrinks to nothing
  for (const char* bad : {"", "3", "s", "3 s", "3sec", "-1s", "1e3s", "99999999h"}) {
    auto parsed = ParseDuration(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
  }
}

// Each mistake is refused with the JSON path of the field and what to write instead.
TEST(RoutesTest, MistakesNameTheFieldAndTheFix) {
  struct Case {
    std::string clusters, routers, expected;
  };
  const std::string ok_router =
      R"([{"router_config_name": "r", "virtual_hosts": [{"routers": [{"route": {"cluster_name": "c"}}]}]}])";
  const std::string one = R"([{"name": "c", "hosts": [{"address": "127.0.0.1:1"}]}])";
  const std::vector<Case> cases = {
      {R"([{"hosts": [{"address": "127.0.0.1:1"}]}])", "[]", "cluster_manager.clusters[0].name: missing"},
      {R"([{"name": "c", "type": "STRICT_DNS", "hosts": [{"address": "a:1"}]}])", "[]",
       "clusters[0].type: \"STRICT_DNS\" is not supported"},
      {R"([{"name": "c", "lb_type": "LB_MAGLEV", "hosts": [{"address": "a:1"}]}])", "[]",
       "use LB_ROUNDROBIN or LB_RANDOM"},
      {R"([{"name": "c"}])", "[]", "clusters[0].hosts: missing"},
      {R"([{"name": "c", "hosts": [{"address": "nowhere"}]}])", "[]",
       "hosts[0].address: \"nowhere\" is not host:port"},
      {R"([{"name": "c", "connect_timeout": 3, "hosts": [{"address": "a:1"}]}])", "[]",
       "connect_timeout: expected a duration such as \"3s\""},
      {R"([{"name": "c", "connect_timeout": "3 seconds", "hosts": [{"address": "a:1"}]}])", "[]",
       "connect_timeout: \"3 seconds\""},
      {R"([{"name": "c", "connect_timeout": "0s", "hosts": [{"address": "a:1"}]}])", "[]",
       "connect_timeout: must be at least 1ms"},
      {one + "", R"([{"virtual_hosts": []}])", "routers[0].router_config_name: missing"},
      {one, R"([{"router_config_name": "r", "virtual_hosts": [{"routers": [{"match": {"prefix": "/"}}]}]}])",
       "routers[0]: give either a route (to a cluster) or a direct_response"},
      {one,
       R"([{"router_config_name": "r", "virtual_hosts": [{"routers": [{"route": {"cluster_name": "gone"}}]}]}])",
       "route.cluster_name: no cluster is named 'gone' (cluster_manager.clusters has: c)"},
      {one, ok_router.substr(0, ok_router.size() - 1) + "," + ok_router.substr(1),
       "the router 'r' is defined twice"},
      {R"([{"name": "c", "hosts": [{"address": "a:1"}]}, {"name": "c", "hosts": [{"address": "a:2"}]}])",
       "[]", "the cluster 'c' is defined twice"},
      {one,
       R"([{"router_config_name": "r", "virtual_hosts": [{"routers": [{"match": {"headers": [{"name": "a", "value": "(", "regex": true}]}, "route": {"cluster_name": "c"}}]}]}])",
       "headers[0].value: not a regular expression"},
      {one,
       R"([{"router_config_name": "r", "virtual_hosts": [{"routers": [{"direct_response": {"status": 99}}]}]}])",
       "direct_response.status: 99 is outside 200..599"},
  };
  for (const Case& c : cases) {
    auto config = ParseConfig(MosnConfig(c.clusters, c.routers));
    ASSERT_FALSE(config.ok()) << c.expected;
    EXPECT_NE(config.status().message().find(c.expected), std::string::npos) << config.status().message();
  }
  EXPECT_TRUE(ParseConfig(MosnConfig(one, ok_router)).ok());
}

}  // namespace
}  // namespace wasmlet::server
