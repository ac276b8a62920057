// Configuration in a map of the process (tests; lost at exit).
#pragma once

#include <map>
#include <mutex>

#include "components/configuration/configuration_store.h"

namespace wasmlet::components {

class MemoryConfiguration : public ConfigurationStoreComponent {
 public:
  Result<ConfigurationItems> Get(const std::vector<std::string>& keys) override {
    std::lock_guard lock(mutex_);
    ConfigurationItems items;
    for (const std::string& key : keys) {
      if (auto it = items_.find(key); it != items_.end()) items.emplace_back(key, it->second);
    }
    return items;
  }
  Status Set(std::string_view key, std::string_view content) override {
    std::lock_guard lock(mutex_);
    items_[std::string(key)] = std::string(content);
    return Status::Ok();
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> items_;
};

}  // namespace wasmlet::components
