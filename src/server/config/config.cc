#include "server/config/config.h"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "abi/header_map.h"
#include "common/address.h"
#include "common/text.h"
#include "server/config/config_json.h"

namespace wasmlet::server {
namespace {

using namespace config_json;

// True when `filter` is an object whose "type" is the string `type`.
bool HasType(const json& filter, const char* type) {
  if (!filter.is_object()) return false;
  auto it = filter.find("type");
  return it != filter.end() && it->is_string() && it->get_ref<const std::string&>() == type;
}

// wasmlet's "subscriptions": [{"pubsubname", "topic", "route", "deadLetterTopic",
// "maxDeliveries", "retryBackoffMs"}, ...].
Status ParseSubscriptions(const json& list, const std::string& path, PluginConfig& plugin) {
  if (!list.is_array()) return Bad(path, "expected a list of subscriptions, found " + TypeName(list));
  for (size_t i = 0; i < list.size(); ++i) {
    const json& item = list[i];
    const std::string at = path + "[" + std::to_string(i) + "]";
    if (!item.is_object()) return Bad(at, "expected an object, found " + TypeName(item));
    SubscriptionConfig s;
    s.json_path = at;
    WASMLET_RETURN_IF_ERROR(ReadString(item, "pubsubname", at, s.pubsub));
    WASMLET_RETURN_IF_ERROR(ReadString(item, "topic", at, s.topic));
    WASMLET_RETURN_IF_ERROR(ReadString(item, "route", at, s.route));
    WASMLET_RETURN_IF_ERROR(ReadString(item, "deadLetterTopic", at, s.dead_letter_topic));
    WASMLET_RETURN_IF_ERROR(ReadInt(item, "maxDeliveries", at, s.max_deliveries, 1, 1000));
    uint32_t backoff_ms = static_cast<uint32_t>(s.retry_backoff.count());
    WASMLET_RETURN_IF_ERROR(ReadInt(item, "retryBackoffMs", at, backoff_ms, 1, 3600000));
    s.retry_backoff = std::chrono::milliseconds(backoff_ms);
    if (s.pubsub.empty()) return Bad(at, "missing \"pubsubname\" (a name under grpc_config.pub_subs)");
    if (s.topic.empty()) return Bad(at, "missing \"topic\"");
    if (s.route.empty() || s.route.front() != '/') return Bad(at + ".route", "must start with '/'");
    if (s.dead_letter_topic.empty()) s.dead_letter_topic = s.topic + "-deadletter";
    if (s.dead_letter_topic == s.topic) return Bad(at + ".deadLetterTopic", "must not be the topic itself");
    plugin.subscriptions.push_back(std::move(s));
  }
  return Status::Ok();
}

Status ParsePlugin(const std::string& key, const json& item, const std::string& path, PluginConfig& plugin,
                   const std::map<std::string, PluginConfig>* globals = nullptr) {
  if (!item.is_object()) return Bad(path, "expected an object (a plugin item), found " + TypeName(item));
  plugin.key = key;
  plugin.json_path = path;
  WASMLET_RETURN_IF_ERROR(ReadString(item, "name", path, plugin.name));
  if (plugin.name.empty()) plugin.name = key;
  WASMLET_RETURN_IF_ERROR(ReadInt(item, "instance_num", path, plugin.instance_num, -1, 4096));
  WASMLET_RETURN_IF_ERROR(ReadInt(item, "root_context_id", path, plugin.root_context_id, 1, UINT32_MAX));
  WASMLET_RETURN_IF_ERROR(ReadString(item, "root_id", path, plugin.root_id));
  if (auto it = item.find("configuration"); it != item.end() && !it->is_null()) {
    plugin.configuration = it->is_string() ? it->get<std::string>() : it->dump();
  }
  for (const auto& [k, v] : item.items()) {
    if (v.is_string()) plugin.string_keys[k] = v.get<std::string>();
  }
  if (auto it = item.find("allowed_stores"); it != item.end()) {
    // A list of names, or (as Layotto's plugin items hold strings) one comma-separated string.
    std::vector<std::string> stores;
    if (it->is_string()) {
      std::stringstream names(it->get<std::string>());
      for (std::string name; std::getline(names, name, ',');) {
        name.erase(0, name.find_first_not_of(' '));
        name.erase(name.find_last_not_of(' ') + 1);
        if (!name.empty()) stores.push_back(name);
      }
    } else if (it->is_array()) {
      for (const json& name : *it) {
        if (!name.is_string())
          return Bad(path + ".allowed_stores", "expected store names (strings), found " + TypeName(name));
        stores.push_back(name.get<std::string>());
      }
    } else {
      return Bad(path + ".allowed_stores", "expected a list of store names, found " + TypeName(*it));
    }
    plugin.allowed_stores = std::move(stores);
  }
  if (auto it = item.find("subscriptions"); it != item.end()) {
    WASMLET_RETURN_IF_ERROR(ParseSubscriptions(*it, path + ".subscriptions", plugin));
  }
  auto vm = item.find("vm_config");
  if (auto from = item.find("from_wasm_plugin"); globals && from != item.end() && vm == item.end()) {
    // MOSN: the module (and its limits) of a wasm_global_plugins entry.
    if (!from->is_string())
      return Bad(path + ".from_wasm_plugin", "expected a string, found " + TypeName(*from));
    auto global = globals->find(from->get<std::string>());
    if (global == globals->end()) {
      std::string names;
      for (const auto& [name, g] : *globals) names += (names.empty() ? "" : ", ") + name;
      return Bad(path + ".from_wasm_plugin", "no wasm_global_plugins entry is named \"" +
                                                 Printable(from->get<std::string>(), 64) +
                                                 "\" (there are: " + (names.empty() ? "none" : names) + ")");
    }
    plugin.vm = global->second.vm;
    if (!item.contains("instance_num")) plugin.instance_num = global->second.instance_num;
    plugin.string_keys.erase("from_wasm_plugin");
    return Status::Ok();
  }
  if (vm == item.end()) return Bad(path, "missing vm_config (it names the .wasm file: {\"path\": ...})");
  if (!vm->is_object()) return Bad(path + ".vm_config", "expected an object, found " + TypeName(*vm));
  const std::string vm_path = path + ".vm_config";
  WASMLET_RETURN_IF_ERROR(ReadString(*vm, "engine", vm_path, plugin.vm.engine));
  WASMLET_RETURN_IF_ERROR(ReadString(*vm, "path", vm_path, plugin.vm.path));
  WASMLET_RETURN_IF_ERROR(ReadString(*vm, "url", vm_path, plugin.vm.url));
  WASMLET_RETURN_IF_ERROR(ReadString(*vm, "md5", vm_path, plugin.vm.md5));
  WASMLET_RETURN_IF_ERROR(ReadInt(*vm, "cpu", vm_path, plugin.vm.cpu_ms, 0, 3600000));
  WASMLET_RETURN_IF_ERROR(ReadInt(*vm, "mem", vm_path, plugin.vm.mem_mb, 0, 4096));
  const std::string& engine = plugin.vm.engine;
  if (!engine.empty() && engine != "v8" && engine != "wasmtime" && engine != "wasmer") {
    return Bad(vm_path + ".engine",
               "unknown engine \"" + engine + "\"; use \"v8\" (\"wasmtime\" and \"wasmer\" also run on V8)");
  }
  if (plugin.vm.path.empty() && plugin.vm.url.empty()) {
    return Bad(vm_path, "give the module's \"path\" (or \"url\")");
  }
  if (plugin.vm.path.empty() && plugin.vm.url.rfind("http://", 0) != 0 &&
      plugin.vm.url.rfind("https://", 0) != 0) {
    return Bad(vm_path + ".url", "\"" + Printable(plugin.vm.url, 80) +
                                     "\" is not an http:// or https:// URL (use \"path\" for a local file)");
  }
  return Status::Ok();
}

// grpc_config.state, .lock or .sequencer: named components {type, metadata} of one kind.
// `types`: the types wasmlet has for these components, for the message when one has none.
Status ParseStores(const json& state, const std::string& path, std::map<std::string, StoreConfig>& into,
                   const char* types = "embedded, redis or in-memory") {
  if (!state.is_object()) return Bad(path, "expected an object of named stores, found " + TypeName(state));
  for (const auto& [name, store] : state.items()) {
    const std::string store_path = path + "." + name;
    if (!store.is_object()) return Bad(store_path, "expected an object, found " + TypeName(store));
    StoreConfig sc;
    sc.name = name;
    sc.json_path = store_path;
    WASMLET_RETURN_IF_ERROR(ReadString(store, "type", store_path, sc.type));
    if (sc.type.empty()) return Bad(store_path, std::string("missing \"type\" (") + types + ")");
    if (auto md = store.find("metadata"); md != store.end() && !md->is_null()) {
      if (!md->is_object())
        return Bad(store_path + ".metadata", "expected an object, found " + TypeName(*md));
      for (const auto& [k, v] : md->items()) {
        sc.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
    }
    into[name] = std::move(sc);
  }
  return Status::Ok();
}

// grpc_config.hellos: {"name": {"type": "helloworld", "hello": "greeting"}}.
Status ParseHellos(const json& hellos, const std::string& path, std::map<std::string, HelloConfig>& into) {
  if (!hellos.is_object()) return Bad(path, "expected an object of named components, found " + TypeName(hellos));
  for (const auto& [name, item] : hellos.items()) {
    const std::string at = path + "." + name;
    if (!item.is_object()) return Bad(at, "expected an object, found " + TypeName(item));
    HelloConfig hello;
    WASMLET_RETURN_IF_ERROR(ReadString(item, "type", at, hello.type));
    WASMLET_RETURN_IF_ERROR(ReadString(item, "hello", at, hello.hello));
    if (hello.type != "helloworld")
      return Bad(at + ".type", "\"" + Printable(hello.type, 32) + "\" is not a hello component (\"helloworld\")");
    into[name] = std::move(hello);
  }
  return Status::Ok();
}

// grpc_config.app: {"app_id", "grpc_callback_port", "grpc_callback_host"}.
Status ParseApp(const json& app, const std::string& path, AppConfig& into) {
  if (!app.is_object()) return Bad(path, "expected an object, found " + TypeName(app));
  WASMLET_RETURN_IF_ERROR(ReadString(app, "app_id", path, into.app_id));
  if (into.app_id.find("||") != std::string::npos)
    return Bad(path + ".app_id", "must not contain \"||\" (it separates the app id from a state key)");
  WASMLET_RETURN_IF_ERROR(ReadInt(app, "grpc_callback_port", path, into.callback_port, 0, 65535));
  WASMLET_RETURN_IF_ERROR(ReadString(app, "grpc_callback_host", path, into.callback_host));
  if (into.callback_host.empty()) into.callback_host = "127.0.0.1";
  return Status::Ok();
}

Status ParseRpcs(const json& rpcs, const std::string& path, ServerConfig& config) {
  if (!rpcs.is_object()) return Bad(path, "expected an object, found " + TypeName(rpcs));
  for (const auto& [name, rpc] : rpcs.items()) {
    if (!rpc.is_object()) continue;
    auto rpc_config = rpc.find("config");
    if (rpc_config == rpc.end() || !rpc_config->is_object()) continue;
    auto channels = rpc_config->find("channel");
    if (channels == rpc_config->end()) continue;
    if (!channels->is_array()) return Bad(path + "." + name + ".config.channel", "expected an array");
    for (size_t i = 0; i < channels->size(); ++i) {
      const json& channel = (*channels)[i];
      const std::string cpath = path + "." + name + ".config.channel[" + std::to_string(i) + "]";
      std::string address;
      WASMLET_RETURN_IF_ERROR(ReadString(channel, "address", cpath, address));
      if (!address.empty()) config.rpc_address = address;  // otherwise: this process's listener
    }
  }
  return Status::Ok();
}

Status ParseListener(const json& listener, const std::string& path, ServerConfig& config,
                     const std::map<std::string, PluginConfig>& globals) {
  if (!listener.is_object()) return Bad(path, "expected an object, found " + TypeName(listener));
  std::string address;
  WASMLET_RETURN_IF_ERROR(ReadString(listener, "address", path, address));
  ProxyListenerConfig proxy;
  proxy.json_path = path;
  proxy.address = address;
  WASMLET_RETURN_IF_ERROR(ReadString(listener, "name", path, proxy.name));
  if (proxy.name.empty()) proxy.name = address;
  bool has_proxy = false;
  if (auto chains = listener.find("filter_chains"); chains != listener.end() && chains->is_array()) {
    for (size_t c = 0; c < chains->size(); ++c) {
      const json& chain = (*chains)[c];
      auto filters = chain.find("filters");
      if (filters == chain.end() || !filters->is_array()) continue;
      for (size_t f = 0; f < filters->size(); ++f) {
        const json& filter = (*filters)[f];
        const std::string fpath =
            path + ".filter_chains[" + std::to_string(c) + "].filters[" + std::to_string(f) + "]";
        if (HasType(filter, "proxy")) {
          // MOSN's proxy network filter: requests go where its router says.
          auto proxy_config = filter.find("config");
          if (proxy_config == filter.end() || !proxy_config->is_object())
            return Bad(fpath + ".config", "expected an object with router_config_name");
          WASMLET_RETURN_IF_ERROR(
              ReadString(*proxy_config, "router_config_name", fpath + ".config", proxy.router));
          if (proxy.router.empty())
            return Bad(fpath + ".config.router_config_name",
                       "missing: name the router (servers[].routers[])");
          for (const char* key : {"downstream_protocol", "upstream_protocol"}) {
            std::string protocol;
            WASMLET_RETURN_IF_ERROR(ReadString(*proxy_config, key, fpath + ".config", protocol));
            if (!protocol.empty() && protocol != "Http1" && protocol != "Auto") {
              return Bad(fpath + ".config." + key,
                         "\"" + Printable(protocol, 32) +
                             "\" is not supported; wasmlet speaks HTTP/1.1 (\"Http1\")");
            }
          }
          has_proxy = true;
          continue;
        }
        if (!HasType(filter, "grpc")) continue;
        const json* grpc = nullptr;
        if (filter.contains("config") && filter["config"].is_object() &&
            filter["config"].contains("grpc_config"))
          grpc = &filter["config"]["grpc_config"];
        if (!grpc) continue;
        const std::string gpath = fpath + ".config.grpc_config";
        if (!grpc->is_object()) return Bad(gpath, "expected an object, found " + TypeName(*grpc));
        std::string server_name;
        WASMLET_RETURN_IF_ERROR(ReadString(filter["config"], "server_name", fpath + ".config", server_name));
        if (server_name == "runtime") {
          if (address.empty()) {
            spdlog::warn("config {}: the runtime API listener has no address, so it is not served", path);
          } else {
            config.runtime_listeners.push_back({proxy.name, address, path});
          }
        }
        if (grpc->contains("hellos"))
          WASMLET_RETURN_IF_ERROR(ParseHellos((*grpc)["hellos"], gpath + ".hellos", config.hellos));
        if (grpc->contains("app")) WASMLET_RETURN_IF_ERROR(ParseApp((*grpc)["app"], gpath + ".app", config.app));
        if (grpc->contains("state"))
          WASMLET_RETURN_IF_ERROR(ParseStores((*grpc)["state"], gpath + ".state", config.stores));
        if (grpc->contains("lock"))
          WASMLET_RETURN_IF_ERROR(ParseStores((*grpc)["lock"], gpath + ".lock", config.locks));
        if (grpc->contains("sequencer"))
          WASMLET_RETURN_IF_ERROR(ParseStores((*grpc)["sequencer"], gpath + ".sequencer", config.sequencers));
        if (grpc->contains("pub_subs")) {
          WASMLET_RETURN_IF_ERROR(ParseStores((*grpc)["pub_subs"], gpath + ".pub_subs", config.pubsubs));
        }
        if (grpc->contains("config_store")) {
          WASMLET_RETURN_IF_ERROR(
              ParseStores((*grpc)["config_store"], gpath + ".config_store", config.configuration_stores));
        }
        if (grpc->contains("secret_store")) {
          WASMLET_RETURN_IF_ERROR(
              ParseStores((*grpc)["secret_store"], gpath + ".secret_store", config.secret_stores, "local.file or local.env"));
        }
        if (grpc->contains("file"))
          WASMLET_RETURN_IF_ERROR(ParseStores((*grpc)["file"], gpath + ".file", config.files, "local"));
        if (grpc->contains("bindings"))
          WASMLET_RETURN_IF_ERROR(ParseStores((*grpc)["bindings"], gpath + ".bindings", config.bindings, "http"));
        if (grpc->contains("rpcs"))
          WASMLET_RETURN_IF_ERROR(ParseRpcs((*grpc)["rpcs"], gpath + ".rpcs", config));
        for (const auto& [section, value] : grpc->items()) {
          if (section != "state" && section != "rpcs" && section != "lock" && section != "sequencer" &&
              section != "secret_store" && section != "config_store" && section != "pub_subs" &&
              section != "hellos" && section != "app" && section != "file" && section != "bindings")
            spdlog::debug("config {}.{}: not used by wasmlet", gpath, section);
        }
      }
    }
  }
  if (auto filters = listener.find("stream_filters"); filters != listener.end()) {
    if (!filters->is_array()) return Bad(path + ".stream_filters", "expected an array");
    for (size_t i = 0; i < filters->size(); ++i) {
      const json& filter = (*filters)[i];
      const std::string fpath = path + ".stream_filters[" + std::to_string(i) + "]";
      if (HasType(filter, "proxywasm")) {
        auto item = filter.find("config");
        if (item == filter.end() || !item->is_object())
          return Bad(fpath + ".config",
                     "expected an object (vm_config or from_wasm_plugin, and the plugin's keys)");
        PluginConfig plugin;
        const std::string key = proxy.name + "/" + std::to_string(i);
        WASMLET_RETURN_IF_ERROR(ParsePlugin(key, *item, fpath + ".config", plugin, &globals));
        proxy.filters.push_back(std::move(plugin));
        continue;
      }
      if (!HasType(filter, "Layotto")) {
        spdlog::debug("config {}: not a Layotto or proxywasm stream filter, ignored", fpath);
        continue;
      }
      auto items = filter.find("config");
      if (items == filter.end() || !items->is_object())
        return Bad(fpath + ".config", "expected an object of plugin items");
      config.serve_functions = true;
      if (!address.empty()) config.function_address = address;
      for (const auto& [key, item] : items->items()) {
        PluginConfig plugin;
        WASMLET_RETURN_IF_ERROR(ParsePlugin(key, item, fpath + ".config." + key, plugin));
        config.plugins.push_back(std::move(plugin));
      }
    }
  }
  // The listener that carries the Layotto filter serves functions, and one that carries the
  // actuator filter the health endpoints (their proxy filters are Layotto's own plumbing); any
  // other listener with a proxy filter is a proxy listener.
  bool layotto = false;
  bool actuator = false;
  if (auto filters = listener.find("stream_filters"); filters != listener.end() && filters->is_array()) {
    for (const json& filter : *filters) {
      layotto |= HasType(filter, "Layotto");
      actuator |= HasType(filter, "actuator_filter");
    }
  }
  if (actuator) {
    if (layotto) return Bad(path, "has both Layotto and actuator_filter stream filters; put them on separate listeners");
    if (address.empty()) return Bad(path + ".address", "missing: the actuator listener needs an address (host:port)");
    config.actuator_listeners.push_back({proxy.name, address, path});
    return Status::Ok();
  }
  if (has_proxy && !layotto) {
    if (address.empty())
      return Bad(path + ".address", "missing: a proxy listener needs an address (host:port)");
    config.proxy_listeners.push_back(std::move(proxy));
  } else if (!proxy.filters.empty()) {
    return Bad(path,
               layotto ? "has both Layotto and proxywasm stream filters; put them on separate listeners"
                       : "has proxywasm stream filters but no filter of type \"proxy\" to send requests on");
  }
  return Status::Ok();
}

Status ParseGlobalPlugins(const json& plugins, std::map<std::string, PluginConfig>& out) {
  const std::string path = "wasm_global_plugins";
  if (!plugins.is_array()) return Bad(path, "expected an array, found " + TypeName(plugins));
  for (size_t i = 0; i < plugins.size(); ++i) {
    const std::string ppath = path + "[" + std::to_string(i) + "]";
    std::string name;
    if (plugins[i].is_object()) WASMLET_RETURN_IF_ERROR(ReadString(plugins[i], "plugin_name", ppath, name));
    if (name.empty())
      return Bad(ppath + ".plugin_name", "missing: name the plugin (from_wasm_plugin refers to it)");
    PluginConfig plugin;
    WASMLET_RETURN_IF_ERROR(ParsePlugin(name, plugins[i], ppath, plugin));
    if (!out.emplace(name, std::move(plugin)).second)
      return Bad(ppath + ".plugin_name", "\"" + Printable(name, 64) + "\" is named twice");
  }
  return Status::Ok();
}

Status ParseSettings(const json& settings, ServerConfig& config) {
  const std::string path = "wasmlet";
  if (!settings.is_object()) return Bad(path, "expected an object, found " + TypeName(settings));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "workers", path, config.workers, 0, 1024));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "pool_threads", path, config.pool_threads, -1, 1024));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "inline_limit_ms", path, config.inline_limit_ms, 0, 3600000));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "max_invoke_depth", path, config.max_invoke_depth, 1, 64));
  if (settings.contains("io_threads")) {
    // Before the serving loops, a separate set of threads ran the listener. Accepted, unused.
    int ignored = 1;
    WASMLET_RETURN_IF_ERROR(ReadInt(settings, "io_threads", path, ignored, 1, 64));
    spdlog::warn(
        "config wasmlet.io_threads is no longer used: the serving loops (wasmlet.workers) "
        "accept and answer the connections themselves");
  }
  WASMLET_RETURN_IF_ERROR(
      ReadInt(settings, "max_request_body", path, config.max_request_body, 0, int64_t{1} << 32));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "queue_timeout_ms", path, config.queue_timeout_ms, 0, 600000));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "max_queued", path, config.max_queued, 0, 1 << 20));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "default_cpu_ms", path, config.default_cpu_ms, 1, 3600000));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "default_mem_mb", path, config.default_mem_mb, 1, 4096));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "invoke_timeout_ms", path, config.invoke_timeout_ms, 1, 600000));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "drain_timeout_ms", path, config.drain_timeout_ms, 0, 600000));
  WASMLET_RETURN_IF_ERROR(ReadString(settings, "admin_address", path, config.admin_address));
  WASMLET_RETURN_IF_ERROR(ReadString(settings, "admin_token", path, config.admin_token));
  WASMLET_RETURN_IF_ERROR(ReadBool(settings, "admin_allow_insecure", path, config.admin_allow_insecure));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "max_connections", path, config.max_connections, 1, 1 << 24));
  WASMLET_RETURN_IF_ERROR(ReadString(settings, "api_token", path, config.api_token));
  WASMLET_RETURN_IF_ERROR(ReadString(settings, "dapr_http_address", path, config.dapr_http_address));
  WASMLET_RETURN_IF_ERROR(ReadBool(settings, "api_allow_insecure", path, config.api_allow_insecure));
  WASMLET_RETURN_IF_ERROR(
      ReadInt(settings, "api_max_message_bytes", path, config.api_max_message_bytes, 1024, int64_t{1} << 30));
  WASMLET_RETURN_IF_ERROR(
      ReadInt(settings, "api_max_concurrent_calls", path, config.api_max_concurrent_calls, 1, 4096));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "api_max_streams", path, config.api_max_streams, 1, 4096));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "api_watch_interval_ms", path, config.api_watch_interval_ms, 10, 3600000));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "idle_timeout_ms", path, config.idle_timeout_ms, 1, 3600000));
  WASMLET_RETURN_IF_ERROR(
      ReadInt(settings, "max_module_bytes", path, config.max_module_bytes, 8, int64_t{1} << 31));
  WASMLET_RETURN_IF_ERROR(
      ReadInt(settings, "max_reload_delay_ms", path, config.max_reload_delay_ms, 1, 3600000));
  WASMLET_RETURN_IF_ERROR(ReadString(settings, "state_dir", path, config.state_dir));
  if (config.state_dir.empty()) return Bad(path + ".state_dir", "must name a directory (\".\": where wasmlet runs)");
  WASMLET_RETURN_IF_ERROR(ReadBool(settings, "code_cache", path, config.code_cache));
  WASMLET_RETURN_IF_ERROR(ReadString(settings, "code_cache_dir", path, config.code_cache_dir));
  WASMLET_RETURN_IF_ERROR(ReadInt(settings, "code_cache_max_mb", path, config.code_cache_max_mb, 1, 1 << 20));
  if (auto limits = settings.find("guest_limits"); limits != settings.end() && !limits->is_null()) {
    const std::string lpath = path + ".guest_limits";
    if (!limits->is_object()) return Bad(lpath, "expected an object, found " + TypeName(*limits));
    abi::HostLimits& l = config.guest_limits;
    const std::pair<const char*, uint64_t*> fields[] = {{"shared_data_bytes", &l.shared_data_bytes},
                                                        {"queue_entries", &l.queue_entries},
                                                        {"queue_bytes", &l.queue_bytes},
                                                        {"metrics", &l.metrics},
                                                        {"header_count", &l.header_count},
                                                        {"header_bytes", &l.header_bytes},
                                                        {"buffer_bytes", &l.buffer_bytes},
                                                        {"property_bytes", &l.property_bytes}};
    for (const auto& [key, value] : limits->items()) {
      auto field =
          std::find_if(std::begin(fields), std::end(fields), [&](const auto& f) { return key == f.first; });
      if (field == std::end(fields)) {
        return Bad(lpath + "." + key,
                   "unknown limit (there are shared_data_bytes, queue_entries, queue_bytes, metrics, "
                   "header_count, header_bytes, buffer_bytes, property_bytes)");
      }
      WASMLET_RETURN_IF_ERROR(ReadInt(*limits, field->first, lpath, *field->second, 0, int64_t{1} << 40));
    }
  }
  std::string listen;
  WASMLET_RETURN_IF_ERROR(ReadString(settings, "function_address", path, listen));
  if (!listen.empty()) config.function_address = listen;
  return Status::Ok();
}

Result<ServerConfig> ConfigFromJson(const json& root) {
  if (!root.is_object()) return Bad("(top level)", "expected an object");
  ServerConfig config;
  std::map<std::string, PluginConfig> globals;
  if (auto plugins = root.find("wasm_global_plugins"); plugins != root.end() && !plugins->is_null())
    WASMLET_RETURN_IF_ERROR(ParseGlobalPlugins(*plugins, globals));
  auto servers = root.find("servers");
  if (servers == root.end() || !servers->is_array())
    return Bad("servers", "missing: expected an array of servers");
  if (auto manager = root.find("cluster_manager"); manager != root.end() && !manager->is_null())
    WASMLET_RETURN_IF_ERROR(ParseClusterManager(*manager, "cluster_manager", config.clusters));
  for (size_t s = 0; s < servers->size(); ++s) {
    const json& server = (*servers)[s];
    if (!server.is_object())
      return Bad("servers[" + std::to_string(s) + "]", "expected an object, found " + TypeName(server));
    if (auto routers = server.find("routers"); routers != server.end() && !routers->is_null()) {
      const std::string rpath = "servers[" + std::to_string(s) + "].routers";
      if (!routers->is_array()) return Bad(rpath, "expected an array, found " + TypeName(*routers));
      for (size_t r = 0; r < routers->size(); ++r) {
        RouterConfig router;
        WASMLET_RETURN_IF_ERROR(ParseRouter((*routers)[r], rpath + "[" + std::to_string(r) + "]", router));
        config.routers.push_back(std::move(router));
      }
    }
    auto listeners = server.find("listeners");
    if (listeners == server.end() || !listeners->is_array()) continue;
    for (size_t l = 0; l < listeners->size(); ++l) {
      WASMLET_RETURN_IF_ERROR(ParseListener(
          (*listeners)[l], "servers[" + std::to_string(s) + "].listeners[" + std::to_string(l) + "]", config,
          globals));
    }
  }
  WASMLET_RETURN_IF_ERROR(CheckRouters(config.routers, config.clusters));
  if (auto settings = root.find("wasmlet"); settings != root.end())
    WASMLET_RETURN_IF_ERROR(ParseSettings(*settings, config));
  for (const auto& [section, value] : root.items()) {
    if (section != "servers" && section != "wasmlet" && section != "cluster_manager" &&
        section != "wasm_global_plugins")
      spdlog::debug("config {}: not used by wasmlet", section);
  }
  if (const char* token = std::getenv("WASMLET_ADMIN_TOKEN"); token && *token && config.admin_token.empty()) {
    config.admin_token = token;  // the environment, for secrets kept out of config files
  }
  if (const char* token = std::getenv("WASMLET_API_TOKEN"); token && *token && config.api_token.empty()) {
    config.api_token = token;
  }
  if (!config.serve_functions && config.proxy_listeners.empty() && config.runtime_listeners.empty() &&
      config.dapr_http_address.empty()) {
    return Bad("servers[].listeners[]",
               "no listener has a stream filter of type \"Layotto\" (functions), a filter of type \"proxy\" "
               "(proxy mode) or a grpc filter with \"server_name\": \"runtime\" (the runtime API), so there "
               "is nothing to serve");
  }
  for (const ProxyListenerConfig& listener : config.proxy_listeners) {
    const bool known = std::any_of(config.routers.begin(), config.routers.end(),
                                   [&](const RouterConfig& r) { return r.name == listener.router; });
    if (!known) {
      return Bad(listener.json_path + ".filter_chains[].filters[].config.router_config_name",
                 "no router is named \"" + Printable(listener.router, 64) + "\" in servers[].routers[]");
    }
  }
  return config;
}

}  // namespace

Status CheckExposure(const Exposure& e) {
  auto split = SplitHostPort(e.address);
  if (!split.ok()) return Status(split.status().code(), "config " + e.address_setting + ": " + split.status().message());
  const std::string& host = split->first;
  in_addr v4{};
  in6_addr v6{};
  const bool loopback = host == "localhost" ||
                        (inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127) ||
                        (inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6));
  if (loopback || e.has_token) return Status::Ok();
  if (!e.allow_insecure) {
    return FailedPrecondition("config " + e.address_setting + ": " + e.address +
                              " is reachable from other machines and no " + e.token_setting + " is set, so anyone " +
                              e.risk + "; set wasmlet." + e.token_setting + " (or " + e.token_env +
                              "), bind it to 127.0.0.1, or set " + e.insecure_setting + ": true to accept the risk");
  }
  spdlog::warn("the {} on {} has no token and is reachable from other machines: anyone who can reach it {} ({} is set)",
               e.what, e.address, e.risk, e.insecure_setting);
  return Status::Ok();
}

Result<ServerConfig> ParseConfig(const std::string& json_text) {
  json root;
  try {
    root = json::parse(json_text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
    return InvalidArgument(std::string("config is not valid JSON: ") + e.what());
  }
  // Every field is read with its type checked; should a shape still slip past those checks, it
  // is an error in this config, never an exception out of the server's start.
  try {
    return ConfigFromJson(root);
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("config has a field of an unexpected shape: ") + e.what());
  }
}

Result<PluginConfig> ParsePluginItem(const std::string& json_text, const std::string& path) {
  json item;
  try {
    item = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
    return InvalidArgument(path + " is not valid JSON: " + e.what());
  }
  PluginConfig plugin;
  std::string key;
  if (item.is_object() && item.contains("name") && item["name"].is_string())
    key = item["name"].get<std::string>();
  if (key.empty()) return Bad(path + ".name", "missing: name the function");
  try {
    WASMLET_RETURN_IF_ERROR(ParsePlugin(key, item, path, plugin));
  } catch (const json::exception& e) {
    return InvalidArgument(path + " has a field of an unexpected shape: " + e.what());
  }
  return plugin;
}

std::string ServerConfig::CodeCacheDir() const {
  if (!code_cache) return "";
  if (!code_cache_dir.empty()) return code_cache_dir;
  return state_dir + "/wasmlet-code-cache";
}

Result<ServerConfig> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read the config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  auto config = ParseConfig(text.str());
  if (!config.ok()) return Status(config.status().code(), path + ": " + config.status().message());
  return config;
}

std::string PluginConfigurationBytes(const PluginConfig& plugin) {
  if (plugin.configuration) return *plugin.configuration;
  abi::HeaderList pairs(plugin.string_keys.begin(), plugin.string_keys.end());
  return abi::HeaderMap(pairs).Serialize();
}

int ServingLoops(const ServerConfig& config, unsigned cores, std::string* why) {
  const int per_core = static_cast<int>(std::max(1u, cores));
  if (config.workers > 0) {
    *why = "wasmlet.workers";
    return config.workers;
  }
  const std::pair<const char*, const std::map<std::string, StoreConfig>*> kinds[] = {
      {"state store", &config.stores},
      {"lock store", &config.locks},
      {"sequencer", &config.sequencers},
      {"secret store", &config.secret_stores},
      {"configuration store", &config.configuration_stores},
      {"pub/sub", &config.pubsubs}};
  std::string on_redis;  // the first component on Redis, named for the log
  for (const auto& [kind, components] : kinds) {
    for (const auto& [name, component] : *components) {
      if (on_redis.empty() && component.type == "redis")
        on_redis = std::string(kind) + " '" + Printable(name, 64) + "' is on Redis";
    }
  }
  if (on_redis.empty()) {
    *why = "one per core";
    return per_core;
  }
  // A function with fewer instances than loops has none on some loops: each request accepted
  // there is handed to another loop and back, and its instance count bounds its round trips in
  // flight anyway.
  const int raised = per_core * kLoopsPerCoreForNetworkStores;
  for (const PluginConfig& plugin : config.plugins) {
    if (plugin.instance_num > 0 && plugin.instance_num < raised) {
      *why = "one per core: " + on_redis + ", but function '" + Printable(plugin.name, 64) +
             "' has instance_num " + std::to_string(plugin.instance_num) + ", fewer than the " +
             std::to_string(raised) + " loops that would keep more round trips in flight";
      return per_core;
    }
  }
  *why = std::to_string(kLoopsPerCoreForNetworkStores) + " per core: " + on_redis +
         ", and a guest's call to it holds its loop for a round trip (wasmlet.workers sets the number)";
  return raised;
}

std::string VmConfigurationBytes(const PluginConfig& plugin) {
  abi::HeaderList pairs = {{"Engine", plugin.vm.engine},
                           {"Path", plugin.vm.path},
                           {"Url", plugin.vm.url},
                           {"Md5", plugin.vm.md5},
                           {"Cpu", std::to_string(plugin.vm.cpu_ms)},
                           {"Mem", std::to_string(plugin.vm.mem_mb)}};
  abi::HeaderMap map;
  for (const auto& [k, v] : pairs) map.Add(k, v);
  return map.Serialize();
}

}  // namespace wasmlet::server
