#include "components/secret/local_env/local_env_secrets.h"

#include <string_view>

extern char** environ;  // NOLINT: POSIX

namespace wasmlet::components {

Result<std::unique_ptr<SecretStoreComponent>> LocalEnvSecrets(const StoreConfig& config) {
  std::string prefix;
  if (auto it = config.metadata.find("prefix"); it != config.metadata.end()) prefix = it->second;
  std::vector<std::pair<std::string, SecretData>> secrets;
  for (char** variable = environ; variable != nullptr && *variable != nullptr; ++variable) {
    const std::string_view entry(*variable);
    const size_t equals = entry.find('=');
    if (equals == std::string_view::npos || !entry.starts_with(prefix)) continue;
    std::string name(entry.substr(prefix.size(), equals - prefix.size()));
    if (name.empty()) continue;
    std::string value(entry.substr(equals + 1));
    secrets.emplace_back(name, SecretData{{name, std::move(value)}});
  }
  return std::unique_ptr<SecretStoreComponent>(new FixedSecrets(std::move(secrets)));
}

}  // namespace wasmlet::components
