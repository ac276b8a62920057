// FunctionRegistry on real event loops and a real engine, through its public API.
#include "server/functions/function_registry.h"

#include <gtest/gtest.h>

#include <optional>

#include "abi/shared_state.h"

namespace wasmlet::server {
namespace {

engine::Engine& SharedEngine() {
  static std::unique_ptr<engine::Engine> engine = std::move(*engine::CreateEngine());
  return *engine;
}

// A thread caches the route table of the registry it last asked, keyed by that registry. Keyed
// by its address and version (which starts over in each registry), a registry made where a
// destroyed one was, at the same version, was answered with the dead one's table.
TEST(FunctionRegistryTest, ARegistryMadeWhereAnotherWasDoesNotSeeItsRoutes) {
  EventLoop loop(EventLoop::Options{.name = "loop 0", .engine = &SharedEngine()});
  ASSERT_TRUE(loop.WaitReady().ok());
  abi::HostServices services;
  services.shared = std::make_shared<abi::SharedState>(abi::HostLimits{});
  Metrics metrics;
  auto config_with = [](const std::string& name) {
    ServerConfig config;
    config.pool_threads = 0;
    PluginConfig plugin;
    plugin.name = name;
    plugin.instance_num = 1;
    plugin.json_path = name;
    plugin.vm.path = std::string(WASMLET_TEST_GUESTS) + "/abi_filter.wasm";
    config.plugins.push_back(plugin);
    return config;
  };
  const ServerConfig first_config = config_with("first");
  const ServerConfig second_config = config_with("second");
  std::optional<FunctionRegistry> registry;  // both live in the same storage

  registry.emplace(first_config, SharedEngine(), services, metrics, std::vector<EventLoop*>{&loop});
  ASSERT_TRUE(registry->Start().ok());
  ASSERT_TRUE(registry->LoadAll().ok());
  EXPECT_TRUE(registry->HasRoute("first"));  // this thread now caches the first one's table
  const FunctionRegistry* first_address = &*registry;
  registry.reset();

  registry.emplace(second_config, SharedEngine(), services, metrics, std::vector<EventLoop*>{&loop});
  ASSERT_EQ(&*registry, first_address);
  ASSERT_TRUE(registry->Start().ok());
  ASSERT_TRUE(registry->LoadAll().ok());  // one function: the same version the first one had
  EXPECT_TRUE(registry->HasRoute("second"));
  EXPECT_FALSE(registry->HasRoute("first"));
  registry.reset();
}

}  // namespace
}  // namespace wasmlet::server
