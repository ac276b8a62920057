// State stores: where functions keep state (proxy_get_state and wasmlet's state calls) and
// `wasmlet state` reads and writes from a shell. Each type lives in its own folder and is
// created by its config "type" name (CreateStateStore).
//
// Every item has an ETag: a version the store gives it, which changes with every write. A
// write may name the ETag it expects (optimistic concurrency): it is applied only when the
// item is still at that version, and otherwise fails with FailedPrecondition, changing nothing.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace wasmlet::components {

// One store of the config: grpc_config.state.<name> {type, metadata}.
struct StoreConfig {
  std::string name;
  std::string type;
  std::map<std::string, std::string> metadata;
  std::string json_path;  // for messages
  // What the component reads time from for its expiries, leases and waits (tests: a
  // ManualClock). Stores whose times are kept by a server (Redis) keep those on its clock.
  Clock* clock = &SystemClock();
};

// An item as the store holds it.
struct StateItem {
  std::string value;
  std::string etag;  // never empty
};

// What a write does when it names no ETag: last-write replaces whatever is there; first-write
// only creates, and fails (FailedPrecondition) when the key exists.
enum class Concurrency { kLastWrite, kFirstWrite };

// One write: a save or a delete of one key.
struct StateOperation {
  enum class Kind { kSave, kDelete };
  Kind kind = Kind::kSave;
  std::string key;
  std::string value;                // a save's
  std::optional<std::string> etag;  // when set, the item must be at this version (and exist)
  Concurrency concurrency = Concurrency::kLastWrite;
  std::chrono::seconds ttl{0};  // a save's: the item expires after this long (0: never)
};

class StateStoreComponent {
 public:
  virtual ~StateStoreComponent() = default;
  // The item at `key`, or nullopt when there is none (or it expired). An error when the store
  // cannot answer: Unavailable when it cannot be reached, Internal otherwise; the message names
  // the store and the cause. Thread-safe, as is every call here.
  virtual Result<std::optional<StateItem>> GetItem(std::string_view key) = 0;
  // The items at `keys`, in their order.
  virtual Result<std::vector<std::optional<StateItem>>> BulkGet(const std::vector<std::string>& keys);
  // Applies every operation or none: when one's ETag or first-write condition fails,
  // FailedPrecondition names its key and nothing is changed. A delete of a key that is not
  // there succeeds (unless it names an ETag).
  virtual Status Apply(const std::vector<StateOperation>& operations) = 0;

  // The value at `key`, empty when there is none (proxy_get_state's reading).
  virtual Result<std::string> Get(std::string_view key);
  // Saves `value` at `key`, last-write, no TTL (`wasmlet state set`).
  Status Set(std::string_view key, std::string_view value);
};

// Whether `operation` may be applied to the item at its key, whose ETag is `current` (nullopt:
// there is no item): FailedPrecondition naming the store, the key and the reason when not.
Status CheckWriteCondition(std::string_view store, const StateOperation& operation,
                           const std::optional<std::string>& current);

// The key a store holds for the key `key` an app or function names, under the store's
// "keyPrefix" metadata (Layotto's and Dapr's rule): "appid" (the default) gives
// "<app_id>||key", or `key` itself when there is no app id; "name" gives "<store name>||key";
// "none" gives `key`; any other value is a fixed prefix, "<value>||key". Under a prefix, a key
// holding "||" is refused (InvalidArgument naming it), so that no two names meet in one key.
Result<std::string> StoredKey(const StoreConfig& store, std::string_view app_id, std::string_view key);
// The config's "keyPrefix" of `store` is valid: InvalidArgument naming it otherwise.
Status CheckKeyPrefix(const StoreConfig& store);

// Creates the store `config.type` names: "embedded" (SQLite file, the default choice),
// "redis", or "in-memory". Fails with the JSON path for an unknown type or bad metadata.
Result<std::unique_ptr<StateStoreComponent>> CreateStateStore(const StoreConfig& config);

}  // namespace wasmlet::components
