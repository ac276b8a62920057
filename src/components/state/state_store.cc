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

Result<std::unique_ptr<StateStoreComponent>> CreateStateStore(const StoreConfig& config) {
  if (config.type == "in-memory" || config.type == "memory") return MemoryStore::Create(config);
  if (config.type == "embedded" || config.type == "sqlite") return EmbeddedStore::Create(config);
  if (config.type == "redis") return RedisStore::Create(config);
  return InvalidArgument("config " + config.json_path + ".type: unknown state store type \"" + config.type +
                         "\"; use \"embedded\", \"redis\" or \"in-memory\"");
}

}  // namespace wasmlet::components
