#include "server/config/config.h"

#include <gtest/gtest.h>

#include "abi/header_map.h"

namespace wasmlet::server {
namespace {

const char* kLayotto = R"({
  "servers": [{
    "listeners": [
      {"name": "grpc", "address": "0.0.0.0:34904",
       "filter_chains": [{"filters": [{"type": "grpc", "config": {"grpc_config": {
         "hellos": {"quick_start_demo": {"type": "helloworld"}},
         "state": {"state_demo": {"type": "redis", "metadata": {"redisHost": "localhost:6380", "redisPassword": ""}}},
         "rpcs": {"mosn": {"config": {"channel": [{"size": 16, "protocol": "http", "listener": "wasm"}]}}}}}}]}]},
      {"name": "wasm", "address": "127.0.0.1:2045",
       "stream_filters": [{"type": "Layotto", "config": {
         "function1": {"name": "function1", "instance_num": 1,
                       "vm_config": {"engine": "wasmer", "path": "f1.wasm", "cpu": "150", "mem": 64}},
         "function2": {"instance_num": 2, "root_context_id": 5, "vm_config": {"path": "f2.wasm", "md5": "abc"}}}}]}
    ]
  }],
  "tracing": {"enable": false}
})";

TEST(ConfigTest, ReadsLayottosShape) {
  auto config = ParseConfig(kLayotto);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->function_address, "127.0.0.1:2045");
  ASSERT_EQ(config->plugins.size(), 2u);
  const PluginConfig& f1 = config->plugins[0];
  EXPECT_EQ(f1.name, "function1");
  EXPECT_EQ(f1.instance_num, 1);
  EXPECT_EQ(f1.vm.engine, "wasmer");
  EXPECT_EQ(f1.vm.cpu_ms, 150u);  // Layotto writes numbers as strings too
  EXPECT_EQ(f1.vm.mem_mb, 64u);
  const PluginConfig& f2 = config->plugins[1];
  EXPECT_EQ(f2.name, "function2");  // no "name": the item's key
  EXPECT_EQ(f2.root_context_id, 5u);
  EXPECT_EQ(f2.vm.md5, "abc");
  ASSERT_EQ(config->stores.count("state_demo"), 1u);
  EXPECT_EQ(config->stores["state_demo"].type, "redis");
  EXPECT_EQ(config->stores["state_demo"].metadata["redisHost"], "localhost:6380");
  EXPECT_EQ(config->rpc_address, "");  // the channel names this process's own listener
}

TEST(ConfigTest, ServingLoopsAreOnePerCoreAndMoreWhenAComponentIsOnRedis) {
  ServerConfig local;
  local.stores["local"] = StoreConfig{.name = "local", .type = "embedded", .metadata = {}, .json_path = ""};
  std::string why;
  EXPECT_EQ(ServingLoops(local, 2, &why), 2);
  EXPECT_EQ(why, "one per core");
  EXPECT_EQ(ServingLoops(local, 0, &why), 1);  // the core count is unknown

  ServerConfig redis = local;
  redis.locks["locks"] = StoreConfig{.name = "locks", .type = "redis", .metadata = {}, .json_path = ""};
  EXPECT_EQ(ServingLoops(redis, 2, &why), 2 * kLoopsPerCoreForNetworkStores);
  EXPECT_NE(why.find("lock store 'locks' is on Redis"), std::string::npos) << why;

  redis.workers = 3;  // the operator's number wins
  EXPECT_EQ(ServingLoops(redis, 2, &why), 3);
  EXPECT_EQ(why, "wasmlet.workers");

  // Layotto's demo: its state store is on Redis, but its functions have 1 and 2 instances; more
  // loops would only hand their requests from loop to loop.
  auto layotto = ParseConfig(kLayotto);
  ASSERT_TRUE(layotto.ok()) << layotto.status().ToString();
  EXPECT_EQ(ServingLoops(*layotto, 4, &why), 4);
  EXPECT_NE(why.find("function 'function1' has instance_num 1"), std::string::npos) << why;
  for (PluginConfig& plugin : layotto->plugins) plugin.instance_num = 0;  // one per loop
  EXPECT_EQ(ServingLoops(*layotto, 4, &why), 4 * kLoopsPerCoreForNetworkStores);
}

TEST(ConfigTest, PluginConfigurationIsTheItemsStringKeysOrEnvoysConfiguration) {
  PluginConfig layotto;
  layotto.string_keys = {{"name", "function1"}};
  auto pairs = abi::ParsePairs({reinterpret_cast<const uint8_t*>(PluginConfigurationBytes(layotto).data()),
                                PluginConfigurationBytes(layotto).size()});
  ASSERT_TRUE(pairs);
  EXPECT_EQ(*pairs, (abi::HeaderList{{"name", "function1"}}));
  PluginConfig envoy;
  envoy.configuration = R"({"header": "x-a"})";
  EXPECT_EQ(PluginConfigurationBytes(envoy), R"({"header": "x-a"})");
}

TEST(ConfigTest, WrongFieldsAreNamedByTheirJsonPath) {
  struct Case {
    std::string json;
    std::string message;
  };
  const std::string prefix =
      R"({"servers": [{"listeners": [{"address": "127.0.0.1:1", "stream_filters": [{"type": "Layotto", "config": )";
  std::vector<Case> cases = {
      {prefix + R"({"f": {"instance_num": "many", "vm_config": {"path": "x.wasm"}}}}]}]}]})",
       "config servers[0].listeners[0].stream_filters[0].config.f.instance_num: expected a whole number, "
       "found \"many\""},
      {prefix + R"({"f": {"vm_config": {"path": 7}}}}]}]}]})",
       "config servers[0].listeners[0].stream_filters[0].config.f.vm_config.path: expected a string, found "
       "number"},
      {prefix + R"({"f": {"name": "f"}}}]}]}]})",
       "config servers[0].listeners[0].stream_filters[0].config.f: missing vm_config"},
      {prefix + R"({"f": {"vm_config": {}}}}]}]}]})",
       "config servers[0].listeners[0].stream_filters[0].config.f.vm_config: give the module's \"path\""},
      {R"({"servers": [{"listeners": []}]})", "no listener has a stream filter of type \"Layotto\""},
      {R"({"servers": )", "config is not valid JSON"},
      {prefix + R"({"f": {"vm_config": {"path": "x"}}}}]}]}], "wasmlet": {"workers": -3}})",
       "config wasmlet.workers: -3 is outside 0..1024"},
      // Found by fuzz_config: each once threw out of ParseConfig and aborted `wasmlet start`.
      {R"({"servers": [{"listeners": [{"stream_filters": [{"type": 1e999}]}]}]})",
       "config is not valid JSON"},
      {R"({"servers": [{"listeners": [{"stream_filters": [{"type": 1}]}]}]})",
       "no listener has a stream filter of type \"Layotto\""},
      {R"({"servers": [{"listeners": [{"filter_chains": [{"filters": [{"type": "grpc", "config": {"grpc_config": {"rpcs": {"mosn": {"config": 10}}}}}]}]}]}]})",
       "no listener has a stream filter of type \"Layotto\""},
      {R"({"servers": [{"listeners": [{"filter_chains": [{"filters": [{"type": ["grpc"]}]}]}]}]})",
       "no listener has a stream filter of type \"Layotto\""},
      {R"({"servers": [{"listeners": [{"filter_chains": [{"filters": [{"type": "grpc", "config": {"grpc_config": 5}}]}]}]}]})",
       "config servers[0].listeners[0].filter_chains[0].filters[0].config.grpc_config: expected an object, "
       "found number"},
      {prefix +
           R"({"f": {"vm_config": {"path": "x", "url": "file:///etc/passwd"}}}}]}]}], "wasmlet": {"guest_limits": {"heap": 1}}})",
       "config wasmlet.guest_limits.heap: unknown limit"},
      {prefix + R"({"f": {"vm_config": {"url": "file:///etc/passwd"}}}}]}]}]})",
       "vm_config.url: \"file:///etc/passwd\" is not an http:// or https:// URL"},
  };
  for (const auto& c : cases) {
    auto config = ParseConfig(c.json);  // must not throw, whatever the input
    ASSERT_FALSE(config.ok()) << c.json;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find(c.message), std::string::npos) << config.status().message();
  }
}

// allowed_stores: a list, or one comma-separated string as Layotto's plugin items hold them.
TEST(ConfigTest, AllowedStoresAreAListOrACommaSeparatedString) {
  auto none = ParsePluginItem(R"({"name": "f", "vm_config": {"path": "f.wasm"}})", "plugin");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->allowed_stores.has_value());  // every store of the config
  auto list = ParsePluginItem(
      R"({"name": "f", "allowed_stores": ["orders", "stock"], "vm_config": {"path": "f.wasm"}})", "plugin");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(*list->allowed_stores, (std::vector<std::string>{"orders", "stock"}));
  auto text = ParsePluginItem(
      R"({"name": "f", "allowed_stores": "orders, stock", "vm_config": {"path": "f.wasm"}})", "plugin");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text->allowed_stores, (std::vector<std::string>{"orders", "stock"}));
  auto empty =
      ParsePluginItem(R"({"name": "f", "allowed_stores": [], "vm_config": {"path": "f.wasm"}})", "plugin");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->allowed_stores && empty->allowed_stores->empty());  // no store at all
  auto bad =
      ParsePluginItem(R"({"name": "f", "allowed_stores": [1], "vm_config": {"path": "f.wasm"}})", "plugin");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("plugin.allowed_stores"), std::string::npos)
      << bad.status().message();
}

TEST(ConfigTest, APluginItemWithANumberPastADoublesRangeIsAnError) {
  auto item = ParsePluginItem(R"({"name": "f", "instance_num": 1e999, "vm_config": {"path": "x"}})", "body");
  ASSERT_FALSE(item.ok());
  EXPECT_NE(item.status().message().find("body is not valid JSON"), std::string::npos)
      << item.status().message();
}

}  // namespace
}  // namespace wasmlet::server
