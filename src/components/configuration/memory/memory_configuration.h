// Configuration in a map of the process (tests; lost at exit).
#pragma once

#include <map>

#include "common/mutex.h"
#include "components/configuration/configuration_store.h"

namespace wasmlet::components {

class MemoryConfiguration : public ConfigurationStoreComponent {
 public:
  Result<ConfigurationItems> Get(const std::vector<std::string>& keys) override EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    ConfigurationItems items;
    for (const std::string& key : keys) {
      if (auto it = items_.find(key); it != items_.end()) items.emplace_back(key, it->second);
    }
    return items;
  }
  Status Set(std::string_view key, std::string_view content) override EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    items_[std::string(key)] = std::string(content);
    return Status::Ok();
  }
  Status Delete(std::string_view key) override EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    items_.erase(std::string(key));
    return Status::Ok();
  }

 private:
  Mutex mutex_;
  std::map<std::string, std::string> items_ GUARDED_BY(mutex_);
};

}  // namespace wasmlet::components
