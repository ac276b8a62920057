#include "components/secret/secret_store.h"

#include <algorithm>

#include "components/secret/local_env/local_env_secrets.h"
#include "components/secret/local_file/local_file_secrets.h"

namespace wasmlet::components {

Result<std::unique_ptr<SecretStoreComponent>> CreateSecretStore(const StoreConfig& config) {
  if (config.type == "local.file" || config.type == "secretstores.local.file")
    return LocalFileSecrets(config);
  if (config.type == "local.env" || config.type == "secretstores.local.env") return LocalEnvSecrets(config);
  return InvalidArgument("config " + config.json_path + ".type: unknown secret store type \"" + config.type +
                         "\"; use \"local.file\" (metadata secretsFile) or \"local.env\"");
}

FixedSecrets::FixedSecrets(std::vector<std::pair<std::string, SecretData>> secrets)
    : secrets_(std::move(secrets)) {
  std::sort(secrets_.begin(), secrets_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
}

Result<std::optional<SecretData>> FixedSecrets::Get(std::string_view name) {
  auto it = std::lower_bound(secrets_.begin(), secrets_.end(), name,
                             [](const auto& secret, std::string_view n) { return secret.first < n; });
  if (it == secrets_.end() || it->first != name) return std::optional<SecretData>();
  return std::optional<SecretData>(it->second);
}

}  // namespace wasmlet::components
