#include "components/state/state_store.h"

#include "common/text.h"
#include "components/state/embedded/embedded_store.h"
#include "components/state/memory/memory_store.h"
#include "components/state/redis/redis_store.h"

namespace wasmlet::components {

Result<std::vector<std::optional<StateItem>>> StateStoreComponent::BulkGet(
    const std::vector<std::string>& keys) {
  std::vector<std::optional<StateItem>> items;
  items.reserve(keys.size());
  for (const std::string& key : keys) {
    auto item = GetItem(key);
    if (!item.ok()) return item.status();
    items.push_back(std::move(*item));
  }
  return items;
}

Result<std::string> StateStoreComponent::Get(std::string_view key) {
  auto item = GetItem(key);
  if (!item.ok()) return item.status();
  return *item ? std::move((*item)->value) : std::string();
}

Status StateStoreComponent::Set(std::string_view key, std::string_view value) {
  StateOperation save;
  save.key = key;
  save.value = value;
  return Apply({save});
}

Status CheckWriteCondition(std::string_view store, const StateOperation& operation,
                           const std::optional<std::string>& current) {
  auto refuse = [&](const std::string& why) {
    return FailedPrecondition("state store '" + std::string(store) + "': key '" +
                              Printable(operation.key, 128) + "': " + why);
  };
  if (operation.etag) {
    if (!current) return refuse("ETag '" + Printable(*operation.etag, 64) + "' given, but there is no item");
    if (*current != *operation.etag)
      return refuse("ETag '" + Printable(*operation.etag, 64) + "' given, but the item is at '" + *current +
                    "'");
    return Status::Ok();
  }
  if (operation.kind == StateOperation::Kind::kSave && operation.concurrency == Concurrency::kFirstWrite &&
      current)
    return refuse("first-write save without an ETag, but the item exists (at ETag '" + *current + "')");
  return Status::Ok();
}

namespace {

constexpr std::string_view kSeparator = "||";

std::string_view KeyPrefixStrategy(const StoreConfig& store) {
  auto it = store.metadata.find("keyPrefix");
  return it == store.metadata.end() || it->second.empty() ? std::string_view("appid") : std::string_view(it->second);
}

}  // namespace

Status CheckKeyPrefix(const StoreConfig& store) {
  const std::string_view strategy = KeyPrefixStrategy(store);
  if (strategy.find(kSeparator) != std::string_view::npos)
    return InvalidArgument("config " + store.json_path + ".metadata.keyPrefix: \"" + Printable(strategy, 64) +
                           "\" must not contain \"||\" (use appid, name, none or a plain prefix)");
  return Status::Ok();
}

Result<std::string> StoredKey(const StoreConfig& store, std::string_view app_id, std::string_view key) {
  const std::string_view strategy = KeyPrefixStrategy(store);
  std::string_view prefix;
  if (strategy == "none") return std::string(key);
  if (strategy == "appid") {
    if (app_id.empty()) return std::string(key);
    prefix = app_id;
  } else if (strategy == "name") {
    prefix = store.name;
  } else {
    prefix = strategy;
  }
  if (key.find(kSeparator) != std::string_view::npos)
    return InvalidArgument("state key \"" + Printable(key, 64) + "\" holds \"||\", which store '" + store.name +
                           "' uses to join its key prefix (keyPrefix " + std::string(strategy) +
                           "): choose a key without it");
  std::string stored;
  stored.reserve(prefix.size() + kSeparator.size() + key.size());
  stored.append(prefix).append(kSeparator).append(key);
  return stored;
}

Result<std::unique_ptr<StateStoreComponent>> CreateStateStore(const StoreConfig& config) {
  if (config.type == "in-memory" || config.type == "memory") return MemoryStore::Create(config);
  if (config.type == "embedded" || config.type == "sqlite") return EmbeddedStore::Create(config);
  if (config.type == "redis") return RedisStore::Create(config);
  return InvalidArgument("config " + config.json_path + ".type: unknown state store type \"" + config.type +
                         "\"; use \"embedded\", \"redis\" or \"in-memory\"");
}

}  // namespace wasmlet::components
