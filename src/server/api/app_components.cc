#include "server/api/app_components.h"

#include <spdlog/spdlog.h>

#include "common/text.h"

namespace wasmlet::server {

template <typename Component>
Result<Component*> AppComponentSet<Component>::Find(const std::string& name, const char* kind,
                                                    const char* field) const {
  if (auto it = ready.find(name); it != ready.end()) return it->second.get();
  if (auto it = unimplemented.find(name); it != unimplemented.end()) return it->second;
  std::string names;
  for (const auto& [known, component] : ready) names += (names.empty() ? "" : ", ") + known;
  for (const auto& [known, why] : unimplemented) names += (names.empty() ? "" : ", ") + known;
  if (names.empty()) names = "none";
  if (name.empty())
    return InvalidArgument(std::string(field) + " is empty: name a " + kind + " of the config (it has: " + names + ")");
  return InvalidArgument("no " + std::string(kind) + " named '" + Printable(name, 64) + "' (the config has: " + names +
                         ")");
}

template class AppComponentSet<components::FileStoreComponent>;
template class AppComponentSet<components::BindingComponent>;

namespace {

template <typename Component, typename Create>
Status Fill(const std::map<std::string, StoreConfig>& configs, Create create, AppComponentSet<Component>& into) {
  for (const auto& [name, config] : configs) {
    auto made = create(config);
    if (made.ok()) {
      into.ready[name] = std::shared_ptr<Component>(std::move(*made));
      continue;
    }
    if (made.status().code() != StatusCode::kUnimplemented) return made.status();
    spdlog::warn("config {}: {}; its calls will answer Unimplemented", config.json_path, made.status().message());
    into.unimplemented[name] = made.status();
  }
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<const AppComponents>> CreateAppComponents(
    const ServerConfig& config, std::map<std::string, std::shared_ptr<components::PubSubComponent>> pubsubs) {
  auto made = std::make_shared<AppComponents>();
  made->pubsubs = std::move(pubsubs);
  WASMLET_RETURN_IF_ERROR(Fill(config.files, components::CreateFileStore, made->files));
  WASMLET_RETURN_IF_ERROR(Fill(config.bindings, components::CreateBinding, made->bindings));
  return std::shared_ptr<const AppComponents>(std::move(made));
}

}  // namespace wasmlet::server
