// Distributed locks (Layotto's lock API): a resource is held by one owner at a time, until the
// owner unlocks it or its expiry passes. Each type lives in its own folder and is created by
// its config "type" name (CreateLockStore). Every call is thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "common/status.h"
#include "components/state/state_store.h"

namespace wasmlet::components {

// What Unlock found, as Layotto's UnlockResponse says it.
enum class UnlockResult : uint32_t { kSuccess = 0, kLockDoesNotExist = 1, kLockBelongsToOthers = 2 };

class LockStoreComponent {
 public:
  virtual ~LockStoreComponent() = default;
  // Takes `resource` for `owner` for `expire` when nobody holds it (or its holder's expiry has
  // passed): true when taken. A lock is not re-entrant: its own holder gets false too.
  // Errors: Unavailable when the store cannot be reached, Internal otherwise.
  virtual Result<bool> TryLock(std::string_view resource, std::string_view owner,
                               std::chrono::seconds expire) = 0;
  // Releases `resource` if `owner` holds it; only the holder can.
  virtual Result<UnlockResult> Unlock(std::string_view resource, std::string_view owner) = 0;
  // Renews the lease: `resource` stays `owner`'s for `expire` from now, if `owner` holds it.
  // What it found, as Unlock says it (kSuccess: renewed).
  virtual Result<UnlockResult> Extend(std::string_view resource, std::string_view owner,
                                      std::chrono::seconds expire) = 0;
};

// "redis", "embedded" (SQLite) or "in-memory"; metadata as the state store of that type.
Result<std::unique_ptr<LockStoreComponent>> CreateLockStore(const StoreConfig& config);

}  // namespace wasmlet::components
