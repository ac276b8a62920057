// Parses arbitrary text as a config file and as an admin API plugin item. Both answer every
// input with a config or an error Status; an exception escaping them is a bug (the server
// would die on a bad config reload or a bad /wasm/install body), so none is caught here.
#include <cstdint>
#include <string>

#include "server/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = wasmlet::server::ParseConfig(text);
  if (config.ok()) {
    // What the server derives from each plugin item at start-up.
    for (const auto& plugin : config->plugins) {
      (void)wasmlet::server::PluginConfigurationBytes(plugin);
      (void)wasmlet::server::VmConfigurationBytes(plugin);
    }
  }
  auto plugin = wasmlet::server::ParsePluginItem(text, "body");
  if (plugin.ok()) {
    (void)wasmlet::server::PluginConfigurationBytes(*plugin);
    (void)wasmlet::server::VmConfigurationBytes(*plugin);
  }
  return 0;
}
