#include "server/services/host_services.h"

#include <spdlog/spdlog.h>

#include "common/text.h"
#include "components/configuration/configuration_store.h"
#include "components/lock/lock_store.h"
#include "components/secret/secret_store.h"
#include "components/sequencer/sequencer.h"
#include "server/functions/function_pool.h"

namespace wasmlet::server {
namespace {

// The component of the config called `name`; NotFound naming the ones there are otherwise.
template <typename Component>
Result<typename std::map<std::string, std::shared_ptr<Component>>::const_iterator> FindNamed(
    const std::map<std::string, std::shared_ptr<Component>>& components, std::string_view name,
    const char* kind, Metrics& metrics) {
  auto it = components.find(std::string(name));
  if (it != components.end()) return it;
  metrics.CountStateStoreError(Metrics::kUnknownId);  // a guest's store names are not labels
  std::string names;
  for (const auto& [n, c] : components) names += (names.empty() ? "" : ", ") + n;
  return NotFound("no " + std::string(kind) + " named '" + Printable(name, 64) +
                  "' (the config has: " + (names.empty() ? "none" : names) + ")");
}

// The state API of functions (proxy_get_state and wasmlet's state calls): the stores of the
// config, by name.
class ConfiguredStores : public abi::StateStore {
 public:
  // `configs` give each store's keyPrefix; `app_id` is the app's (grpc_config.app.app_id).
  ConfiguredStores(std::map<std::string, std::shared_ptr<components::StateStoreComponent>> stores,
                   std::map<std::string, StoreConfig> configs, std::string app_id, Metrics& metrics)
      : stores_(std::move(stores)), configs_(std::move(configs)), app_id_(std::move(app_id)), metrics_(metrics) {}
  Result<std::string> GetState(std::string_view store, std::string_view key) override {
    auto found = Find(store);
    if (!found.ok()) return found.status();
    auto stored = StoredKey((*found)->first, key);
    if (!stored.ok()) return stored.status();
    Result<std::string> value = [&] {
      BlockingCall blocked;  // a network round trip: the function counts as slow if it adds up
      return (*found)->second->Get(*stored);
    }();
    if (!value.ok()) metrics_.CountStateStoreError((*found)->first);
    return value;
  }

  Result<std::vector<std::optional<Item>>> GetItems(std::string_view store,
                                                    const std::vector<std::string>& keys) override {
    auto found = Find(store);
    if (!found.ok()) return found.status();
    std::vector<std::string> stored_keys;
    stored_keys.reserve(keys.size());
    for (const std::string& key : keys) {
      auto stored = StoredKey((*found)->first, key);
      if (!stored.ok()) return stored.status();
      stored_keys.push_back(std::move(*stored));
    }
    auto items = [&] {
      BlockingCall blocked;
      return (*found)->second->BulkGet(stored_keys);
    }();
    if (!items.ok()) {
      metrics_.CountStateStoreError((*found)->first);
      return items.status();
    }
    std::vector<std::optional<Item>> out;
    out.reserve(items->size());
    for (auto& item : *items) {
      if (item) {
        out.push_back(Item{std::move(item->value), std::move(item->etag)});
      } else {
        out.emplace_back();
      }
    }
    return out;
  }

  Status Apply(std::string_view store, const std::vector<Write>& writes) override {
    auto found = Find(store);
    if (!found.ok()) return found.status();
    std::vector<components::StateOperation> operations;
    operations.reserve(writes.size());
    for (const Write& write : writes) {
      components::StateOperation op;
      op.kind =
          write.remove ? components::StateOperation::Kind::kDelete : components::StateOperation::Kind::kSave;
      auto stored = StoredKey((*found)->first, write.key);
      if (!stored.ok()) return stored.status();
      op.key = std::move(*stored);
      op.value = write.value;
      op.etag = write.etag;
      op.concurrency =
          write.first_write ? components::Concurrency::kFirstWrite : components::Concurrency::kLastWrite;
      op.ttl = write.ttl;
      operations.push_back(std::move(op));
    }
    Status status = [&] {
      BlockingCall blocked;
      return (*found)->second->Apply(operations);
    }();
    // A refused condition is the store working as asked, not a failure of it.
    if (!status.ok() && status.code() != StatusCode::kFailedPrecondition)
      metrics_.CountStateStoreError((*found)->first);
    return status;
  }

 private:
  using Stores = std::map<std::string, std::shared_ptr<components::StateStoreComponent>>;
  Result<Stores::const_iterator> Find(std::string_view store) {
    return FindNamed(stores_, store, "state store", metrics_);
  }
  // The key the store holds for `key` (its keyPrefix rule). Stores made without a config (tests)
  // hold keys as they are.
  Result<std::string> StoredKey(const std::string& store, std::string_view key) const {
    auto config = configs_.find(store);
    if (config == configs_.end()) return std::string(key);
    return components::StoredKey(config->second, app_id_, key);
  }

  Stores stores_;
  std::map<std::string, StoreConfig> configs_;
  std::string app_id_;
  Metrics& metrics_;
};

// The components of one kind in the config, by name: finds the one a guest names (NotFound
// listing the others), and runs a call on it as a blocking call of its loop, counting its
// errors in the metrics.
template <typename Component>
class NamedComponents {
 public:
  using Map = std::map<std::string, std::shared_ptr<Component>>;
  NamedComponents(Map components, const char* kind, Metrics& metrics)
      : components_(std::move(components)), kind_(kind), metrics_(metrics) {}

  auto Find(std::string_view name) { return FindNamed(components_, name, kind_, metrics_); }

  template <typename Fn>
  auto Call(std::string_view name, Fn fn) -> decltype(fn(std::declval<Component&>())) {
    auto found = Find(name);
    if (!found.ok()) return found.status();
    BlockingCall blocked;
    auto result = fn(*(*found)->second);
    if (!result.ok()) metrics_.CountStateStoreError((*found)->first);
    return result;
  }

 private:
  Map components_;
  const char* kind_;
  Metrics& metrics_;
};

// Layotto's lock API for wasmlet's lock calls: the lock stores of the config, by name.
class ConfiguredLocks : public abi::Locks {
 public:
  ConfiguredLocks(NamedComponents<components::LockStoreComponent>::Map stores, Metrics& metrics)
      : stores_(std::move(stores), "lock store", metrics) {}
  Result<bool> TryLock(std::string_view store, std::string_view resource, std::string_view owner,
                       std::chrono::seconds expire) override {
    return stores_.Call(store, [&](auto& lock) { return lock.TryLock(resource, owner, expire); });
  }
  Result<Unlocked> Unlock(std::string_view store, std::string_view resource,
                          std::string_view owner) override {
    auto result = stores_.Call(store, [&](auto& lock) { return lock.Unlock(resource, owner); });
    if (!result.ok()) return result.status();
    return static_cast<Unlocked>(*result);
  }
  Result<Unlocked> KeepAlive(std::string_view store, std::string_view resource, std::string_view owner,
                             std::chrono::seconds expire) override {
    auto result = stores_.Call(store, [&](auto& lock) { return lock.Extend(resource, owner, expire); });
    if (!result.ok()) return result.status();
    return static_cast<Unlocked>(*result);
  }

 private:
  NamedComponents<components::LockStoreComponent> stores_;
};

// Layotto's sequencer API for proxy_get_next_id: the sequencers of the config, by name.
class ConfiguredSequencers : public abi::Sequencers {
 public:
  ConfiguredSequencers(NamedComponents<components::SequencerComponent>::Map stores, Metrics& metrics)
      : stores_(std::move(stores), "sequencer", metrics) {}
  Result<uint64_t> NextId(std::string_view store, std::string_view key) override {
    return stores_.Call(store, [&](auto& sequencer) { return sequencer.NextId(key); });
  }

 private:
  NamedComponents<components::SequencerComponent> stores_;
};

// Layotto's secret API for proxy_get_secret and proxy_get_bulk_secret: the secret stores of the
// config, by name. They are local (a file or the environment, read at start): nothing blocks.
class ConfiguredSecrets : public abi::Secrets {
 public:
  ConfiguredSecrets(NamedComponents<components::SecretStoreComponent>::Map stores, Metrics& metrics)
      : stores_(std::move(stores), "secret store", metrics) {}
  Result<abi::HeaderList> Get(std::string_view store, std::string_view name) override {
    auto found = stores_.Find(store);
    if (!found.ok()) return found.status();
    auto data = (*found)->second->Get(name);
    if (!data.ok()) return data.status();
    if (!*data)
      return NotFound("secret store '" + (*found)->first + "' has no secret '" + Printable(name, 64) + "'");
    return std::move(**data);
  }
  Result<std::vector<std::pair<std::string, abi::HeaderList>>> GetAll(std::string_view store) override {
    auto found = stores_.Find(store);
    if (!found.ok()) return found.status();
    return (*found)->second->GetAll();
  }

 private:
  NamedComponents<components::SecretStoreComponent> stores_;
};

// Layotto's configuration API for proxy_get_configuration_items: the configuration stores of the
// config, by name.
class ConfiguredConfiguration : public abi::Configuration {
 public:
  ConfiguredConfiguration(NamedComponents<components::ConfigurationStoreComponent>::Map stores,
                          Metrics& metrics)
      : stores_(std::move(stores), "configuration store", metrics) {}
  Result<abi::HeaderList> Get(std::string_view store, const std::vector<std::string>& keys) override {
    return stores_.Call(store, [&](auto& configuration) { return configuration.Get(keys); });
  }
  Status Save(std::string_view store, const abi::HeaderList& items) override {
    return stores_.Call(store, [&](auto& configuration) {
      for (const auto& [key, content] : items) {
        WASMLET_RETURN_IF_ERROR(content.empty() ? configuration.Delete(key) : configuration.Set(key, content));
      }
      return Status::Ok();
    });
  }
  Status Delete(std::string_view store, const std::vector<std::string>& keys) override {
    return stores_.Call(store, [&](auto& configuration) {
      for (const std::string& key : keys) WASMLET_RETURN_IF_ERROR(configuration.Delete(key));
      return Status::Ok();
    });
  }

 private:
  NamedComponents<components::ConfigurationStoreComponent> stores_;
};

// Layotto's pub/sub API for proxy_publish_event: the pub/subs of the config, by name.
class ConfiguredPublisher : public abi::Publisher {
 public:
  ConfiguredPublisher(NamedComponents<components::PubSubComponent>::Map pubsubs, Metrics& metrics)
      : pubsubs_(std::move(pubsubs), "pub/sub", metrics) {}
  Result<std::string> Publish(std::string_view pubsub, std::string_view topic, std::string_view data,
                              const abi::HeaderList& metadata) override {
    return pubsubs_.Call(pubsub, [&](auto& p) { return p.Publish(topic, data, metadata); });
  }

 private:
  NamedComponents<components::PubSubComponent> pubsubs_;
};

// One component of each name of `configs`, made by `create`; the first failure stops.
template <typename Component, typename Create>
Result<std::map<std::string, std::shared_ptr<Component>>> CreateNamed(
    const std::map<std::string, components::StoreConfig>& configs, Create create) {
  std::map<std::string, std::shared_ptr<Component>> made;
  for (const auto& [name, config] : configs) {
    auto component = create(config);
    if (!component.ok()) return component.status();
    made[name] = std::move(*component);
  }
  return made;
}

}  // namespace

Result<StateStores> CreateStores(const ServerConfig& config) {
  StateStores stores;
  for (const auto& [name, store_config] : config.stores) {
    WASMLET_RETURN_IF_ERROR(components::CheckKeyPrefix(store_config));
    auto store = components::CreateStateStore(store_config);
    if (!store.ok()) return store.status();
    stores[name] = std::move(*store);
  }
  return stores;
}

Result<ConfiguredServices> CreateHostServices(const ServerConfig& config, Metrics& metrics) {
  auto stores = CreateStores(config);
  if (!stores.ok()) return stores.status();
  ConfiguredServices made;
  abi::HostServices& services = made.services;
  services.shared = std::make_shared<abi::SharedState>(config.guest_limits);
  services.state = std::make_shared<ConfiguredStores>(std::move(*stores), config.stores, config.app.app_id, metrics);
  auto locks = CreateNamed<components::LockStoreComponent>(config.locks, components::CreateLockStore);
  if (!locks.ok()) return locks.status();
  services.locks = std::make_shared<ConfiguredLocks>(std::move(*locks), metrics);
  auto sequencers =
      CreateNamed<components::SequencerComponent>(config.sequencers, components::CreateSequencer);
  if (!sequencers.ok()) return sequencers.status();
  services.sequencers = std::make_shared<ConfiguredSequencers>(std::move(*sequencers), metrics);
  auto secrets =
      CreateNamed<components::SecretStoreComponent>(config.secret_stores, components::CreateSecretStore);
  if (!secrets.ok()) return secrets.status();
  services.secrets = std::make_shared<ConfiguredSecrets>(std::move(*secrets), metrics);
  auto configuration = CreateNamed<components::ConfigurationStoreComponent>(
      config.configuration_stores, components::CreateConfigurationStore);
  if (!configuration.ok()) return configuration.status();
  services.configuration = std::make_shared<ConfiguredConfiguration>(std::move(*configuration), metrics);
  auto pubsubs = CreateNamed<components::PubSubComponent>(config.pubsubs, components::CreatePubSub);
  if (!pubsubs.ok()) return pubsubs.status();
  services.publisher = std::make_shared<ConfiguredPublisher>(*pubsubs, metrics);
  made.pubsubs = std::move(*pubsubs);
  return made;
}

}  // namespace wasmlet::server
