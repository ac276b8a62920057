#include "components/secret/local_file/local_file_secrets.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace wasmlet::components {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxFileBytes = 16 << 20;

std::string Meta(const StoreConfig& config, const std::string& key, std::string fallback) {
  auto it = config.metadata.find(key);
  return it == config.metadata.end() ? fallback : it->second;
}

// Every leaf under `value`, as (path joined with `separator`, text).
void Flatten(const json& value, const std::string& path, const std::string& separator, SecretData& out) {
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      Flatten(child, path.empty() ? key : path + separator + key, separator, out);
    }
    return;
  }
  out.emplace_back(path, value.is_string() ? value.get<std::string>() : value.dump());
}

}  // namespace

Result<std::unique_ptr<SecretStoreComponent>> LocalFileSecrets(const StoreConfig& config) {
  const std::string where = "config " + config.json_path + ".metadata";
  const std::string path = Meta(config, "secretsFile", "");
  if (path.empty()) return InvalidArgument(where + ": missing \"secretsFile\" (the JSON file of secrets)");
  const std::string separator = Meta(config, "nestedSeparator", ":");
  const std::string multi = Meta(config, "multiValued", "false");
  if (multi != "true" && multi != "false")
    return InvalidArgument(where + ".multiValued: \"" + multi + "\" is not \"true\" or \"false\"");

  std::ifstream file(path, std::ios::binary);
  if (!file) return InvalidArgument(where + ".secretsFile: cannot read '" + path + "'");
  std::ostringstream text;
  text << file.rdbuf();
  if (text.str().size() > kMaxFileBytes)
    return InvalidArgument(where + ".secretsFile: '" + path + "' is over 16 MiB");
  const json parsed = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object())
    return InvalidArgument(where + ".secretsFile: '" + path + "' is not a JSON object of secrets");

  std::vector<std::pair<std::string, SecretData>> secrets;
  if (multi == "true") {
    for (const auto& [name, value] : parsed.items()) {
      SecretData data;
      Flatten(value, value.is_object() ? "" : name, separator, data);
      secrets.emplace_back(name, std::move(data));
    }
  } else {
    SecretData leaves;
    Flatten(parsed, "", separator, leaves);
    for (auto& [name, value] : leaves) secrets.emplace_back(name, SecretData{{name, std::move(value)}});
  }
  return std::unique_ptr<SecretStoreComponent>(new FixedSecrets(std::move(secrets)));
}

}  // namespace wasmlet::components
