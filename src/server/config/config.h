// wasmlet's configuration: Layotto's config.json shape, unchanged, plus an optional top-level
// "wasmlet" object for settings Layotto does not have.
//
//   servers[].listeners[] with stream_filters[] of type "Layotto"   the function listener and
//                                                                     its plugin items
//   servers[].listeners[].filter_chains[].filters[].config.grpc_config.state   state stores
//   ... .grpc_config.rpcs.<name>.config.channel[]                     where invoke_service goes
//   cluster_manager.clusters[], servers[].routers[]                    proxy mode (server/routes.h)
//   servers[].listeners[] with a "proxy" filter and stream_filters[] of type "proxywasm"
//                                                                     proxy listeners
//   wasm_global_plugins[]                                            modules proxywasm filters
//                                                                     name in from_wasm_plugin
//
// Every error names the JSON path of the offending field.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "abi/limits.h"
#include "common/status.h"
#include "components/state/state_store.h"
#include "server/config/routes.h"

namespace wasmlet::server {

struct VmConfig {
  std::string engine;  // as written; "wasmtime" / "wasmer" run on V8
  std::string path;
  std::string url;
  std::string md5;
  uint32_t cpu_ms = 0;  // the most guest time one request may use; 0 = the server default
  uint32_t mem_mb = 0;  // the most linear memory one instance may have; 0 = the server default
};

// A plugin item's subscription (wasmlet's "subscriptions" key, in the shape of Dapr's
// declarative subscriptions): each message of `topic` on the pub/sub `pubsub` is POSTed to the
// function at `route`.
struct SubscriptionConfig {
  std::string pubsub;                            // "pubsubname"
  std::string topic;                             // "topic"
  std::string route = "/";                       // "route": the request's path
  std::string dead_letter_topic;                 // "deadLetterTopic", default TOPIC-deadletter
  uint32_t max_deliveries = 5;                   // "maxDeliveries": then the dead letter topic
  std::chrono::milliseconds retry_backoff{500};  // "retryBackoffMs": the first retry; doubles, to 30 s
  std::string json_path;
};

struct PluginConfig {
  std::string key;       // the item's key in the stream filter's config
  std::string name;      // "name", or the key
  int instance_num = 0;  // <= 0: one per core
  uint32_t root_context_id = 1;
  std::string root_id;                             // Envoy's root_id (plugin_root_id property)
  std::optional<std::string> configuration;        // Envoy's configuration, verbatim
  std::map<std::string, std::string> string_keys;  // Layotto: the plugin configuration
  // The state stores the function may use ("allowed_stores"); unset: every store of the config.
  std::optional<std::vector<std::string>> allowed_stores;
  std::vector<SubscriptionConfig> subscriptions;
  VmConfig vm;
  std::string json_path;  // for messages
};

using components::StoreConfig;  // a state store's type and metadata

// A listener in proxy mode: its proxy filter's router, and the proxywasm stream filters every
// request on it passes through, in the order listed.
struct ProxyListenerConfig {
  std::string name;
  std::string address;
  std::string router;  // router_config_name
  std::vector<PluginConfig> filters;
  std::string json_path;
};

// A listener whose grpc filter has "server_name": "runtime": the runtime API for applications
// (server/api/), served on its address.
struct RuntimeListenerConfig {
  std::string name;
  std::string address;
  std::string json_path;
};

// A listener with Layotto's "actuator_filter" stream filter: the health endpoints Kubernetes
// probes (/actuator/health/liveness, /actuator/health/readiness), served on its address.
struct ActuatorListenerConfig {
  std::string name;
  std::string address;
  std::string json_path;
};

// grpc_config.hellos: what SayHello answers for each named component.
struct HelloConfig {
  std::string type;   // "helloworld"
  std::string hello;  // the greeting
};

// grpc_config.app: the application this sidecar runs beside.
struct AppConfig {
  std::string app_id;  // the prefix of state keys under keyPrefix "appid" (Layotto's default)
  uint16_t callback_port = 0;  // its AppCallback gRPC service ("grpc_callback_port"); 0: none
  std::string callback_host = "127.0.0.1";  // "grpc_callback_host"
};

struct ServerConfig {
  std::string function_address = "0.0.0.0:2045";
  std::vector<PluginConfig> plugins;
  std::map<std::string, StoreConfig> stores;                // grpc_config.state
  std::map<std::string, StoreConfig> locks;                 // grpc_config.lock
  std::map<std::string, StoreConfig> sequencers;            // grpc_config.sequencer
  std::map<std::string, StoreConfig> secret_stores;         // grpc_config.secret_store
  std::map<std::string, StoreConfig> configuration_stores;  // grpc_config.config_store
  std::map<std::string, StoreConfig> pubsubs;               // grpc_config.pub_subs
  std::map<std::string, StoreConfig> files;                 // grpc_config.file (applications only)
  std::map<std::string, StoreConfig> bindings;              // grpc_config.bindings (applications only)
  // invoke_service target: empty = this process's own function listener; else "host:port".
  std::string rpc_address;
  // Proxy mode (MOSN's shape): cluster_manager.clusters[] and servers[].routers[].
  std::vector<ClusterConfig> clusters;
  std::vector<RouterConfig> routers;
  std::vector<ProxyListenerConfig> proxy_listeners;
  // Whether a listener carries the Layotto filter: only then is function_address served.
  bool serve_functions = false;
  // The runtime API for applications: where it is served, SayHello's components, the app.
  std::vector<RuntimeListenerConfig> runtime_listeners;
  std::vector<ActuatorListenerConfig> actuator_listeners;
  std::map<std::string, HelloConfig> hellos;
  AppConfig app;

  // "wasmlet": { ... } settings.
  // Serving loops: each accepts connections, parses their requests and runs their functions
  // on its own thread. 0 = chosen by ServingLoops().
  int workers = 0;
  // Pool loops, for functions that proved slow (see inline_limit_ms). -1 = one per core; 0 =
  // none (every function stays on the serving loops).
  int pool_threads = -1;
  // A function whose request runs longer than this on a serving loop moves to the pool loops,
  // so that it cannot hold up that loop's other connections again. 0 = never.
  uint32_t inline_limit_ms = 10;
  // The most functions one chain of proxy_invoke_service calls may pass through.
  size_t max_invoke_depth = 8;
  uint64_t max_request_body = 1 << 20;
  uint32_t queue_timeout_ms = 1000;  // wait for a free instance before 503
  size_t max_queued = 1024;          // requests waiting for an instance, per plugin, before 503
  uint32_t default_cpu_ms = 5000;
  uint32_t default_mem_mb = 256;
  uint32_t invoke_timeout_ms = 3000;
  uint32_t drain_timeout_ms = 10000;              // graceful stop: how long in-flight requests may take
  std::string admin_address = "127.0.0.1:34998";  // "" turns the admin listener off
  std::string admin_token;  // when set, admin calls need "Authorization: Bearer <token>"
  // An admin listener on a non-loopback address without a token is refused unless this is set.
  bool admin_allow_insecure = false;
  // Dapr's HTTP API ("host:port"); "" (the default) leaves it off.
  std::string dapr_http_address;
  // When set, runtime API calls need it (gRPC metadata "dapr-api-token", or "authorization:
  // Bearer <token>"); WASMLET_API_TOKEN in the environment sets it too.
  std::string api_token;
  // A runtime API listener on a non-loopback address without a token is refused unless this is set.
  bool api_allow_insecure = false;
  uint64_t api_max_message_bytes = 4 << 20;  // a runtime API message larger than this is refused
  // The runtime API calls that run at once; each holds a thread while its component answers.
  uint32_t api_max_concurrent_calls = 64;
  // Streams of the runtime API open at once (SubscribeConfiguration); each holds two threads.
  uint32_t api_max_streams = 16;
  // How often SubscribeConfiguration reads its keys again to find changes.
  uint32_t api_watch_interval_ms = 500;
  size_t max_connections = 10000;  // open connections to the function listener; past it: 503
  // A connection whose client sends no request (or does not take its answer) for this long is closed.
  uint32_t idle_timeout_ms = 60000;
  uint64_t max_module_bytes = 64 << 20;  // a module file or download larger than this is refused
  uint32_t max_reload_delay_ms = 2000;   // a file that keeps changing is still reloaded this often
  abi::HostLimits guest_limits;          // "guest_limits": what a plugin may make the host hold
  // Where wasmlet keeps what outlives a run (the code cache). Relative, like every path of the
  // config, to the directory wasmlet runs in (/var/lib/wasmlet under the package's unit).
  std::string state_dir = ".";
  // Compiled code kept between runs, so that a module compiled once loads without compiling.
  bool code_cache = true;
  std::string code_cache_dir;          // "" = <state_dir>/wasmlet-code-cache
  uint32_t code_cache_max_mb = 256;    // past it, the least recently used entries go

  // The code cache's directory; "" when it is off.
  std::string CodeCacheDir() const;
};

Result<ServerConfig> LoadConfig(const std::string& path);

// The rule for a listener that hands out control (the admin API, the runtime API): on a
// loopback address, or with a token, it serves; on any other address without a token it is
// refused unless `allow_insecure`, and then served with a warning. `what` names it in the
// messages, `address_setting`, `token_setting` and `insecure_setting` the config fields.
struct Exposure {
  std::string what;
  std::string address;
  std::string address_setting;
  bool has_token = false;
  std::string token_setting;  // under "wasmlet"
  std::string token_env;      // the environment variable that sets it too
  bool allow_insecure = false;
  std::string insecure_setting;
  std::string risk;  // what anyone who reaches it could do
};
Status CheckExposure(const Exposure& exposure);

// How many serving loops to run on `cores` cores: `workers` when set. Otherwise one per core,
// or kLoopsPerCoreForNetworkStores per core when a component is reached over the network (its
// calls block their loop for a round trip, and only more loops keep more of them in flight)
// and no function of the config asks for fewer instances than that many loops. `why` receives
// the reason, for the log.
constexpr int kLoopsPerCoreForNetworkStores = 4;
int ServingLoops(const ServerConfig& config, unsigned cores, std::string* why);
// One plugin item (as the admin API's /wasm/install receives it); `path` names it in errors.
Result<PluginConfig> ParsePluginItem(const std::string& json_text, const std::string& path);
Result<ServerConfig> ParseConfig(const std::string& json_text);

// Buffer 7 of a Layotto item: its string keys in the pairs format; or Envoy's configuration.
std::string PluginConfigurationBytes(const PluginConfig& plugin);
// Buffer 6: the VM configuration fields as a map, as Layotto passes them.
std::string VmConfigurationBytes(const PluginConfig& plugin);

}  // namespace wasmlet::server
