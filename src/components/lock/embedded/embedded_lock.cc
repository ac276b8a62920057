#include "components/lock/embedded/embedded_lock.h"

#include <sqlite3.h>

#include <optional>

namespace wasmlet::components {
Result<std::unique_ptr<LockStoreComponent>> EmbeddedLock::Create(const StoreConfig& config) {
  auto file =
      SqliteFile::Open(config, "lock store '" + config.name + "'",
                       "CREATE TABLE IF NOT EXISTS locks (store TEXT NOT NULL, resource TEXT NOT NULL,"
                       " owner TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (store, resource));");
  if (!file.ok()) return file.status();
  return std::unique_ptr<LockStoreComponent>(new EmbeddedLock(config.name, std::move(*file), *config.clock));
}

Result<bool> EmbeddedLock::TryLock(std::string_view resource, std::string_view owner,
                                   std::chrono::seconds expire) {
  bool taken = false;
  Status status = file_->Transaction([&](sqlite3* db) -> Status {
    const int64_t now = UnixMillis(clock_);
    // Take it unless a live holder has it: an expired row is replaced.
    Statement take(
        db,
        "INSERT INTO locks (store, resource, owner, expires) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (store, resource) DO UPDATE SET owner = excluded.owner, expires = excluded.expires"
        " WHERE locks.expires <= ?5");
    if (!take.ok()) return file_->Error(db, "preparing");
    BindText(take.get(), 1, store_);
    BindText(take.get(), 2, resource);
    BindText(take.get(), 3, owner);
    sqlite3_bind_int64(take.get(), 4, now + std::chrono::milliseconds(expire).count());
    sqlite3_bind_int64(take.get(), 5, now);
    if (sqlite3_step(take.get()) != SQLITE_DONE) return file_->Error(db, "taking a lock");
    taken = sqlite3_changes(db) == 1;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return taken;
}

Result<UnlockResult> EmbeddedLock::Unlock(std::string_view resource, std::string_view owner) {
  return ChangeHeld(resource, owner, std::nullopt);
}

Result<UnlockResult> EmbeddedLock::Extend(std::string_view resource, std::string_view owner,
                                          std::chrono::seconds expire) {
  return ChangeHeld(resource, owner, expire);
}

Result<UnlockResult> EmbeddedLock::ChangeHeld(std::string_view resource, std::string_view owner,
                                              std::optional<std::chrono::seconds> renew) {
  UnlockResult result = UnlockResult::kSuccess;
  Status status = file_->Transaction([&](sqlite3* db) -> Status {
    const int64_t now = UnixMillis(clock_);
    Statement find(db, "SELECT owner FROM locks WHERE store = ?1 AND resource = ?2 AND expires > ?3");
    if (!find.ok()) return file_->Error(db, "preparing");
    BindText(find.get(), 1, store_);
    BindText(find.get(), 2, resource);
    sqlite3_bind_int64(find.get(), 3, now);
    const int rc = sqlite3_step(find.get());
    if (rc == SQLITE_DONE) {
      result = UnlockResult::kLockDoesNotExist;
      return Status::Ok();
    }
    if (rc != SQLITE_ROW) return file_->Error(db, "reading a lock");
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(find.get(), 0));
    const std::string holder(text ? text : "", static_cast<size_t>(sqlite3_column_bytes(find.get(), 0)));
    if (holder != owner) {
      result = UnlockResult::kLockBelongsToOthers;
      return Status::Ok();
    }
    Statement change(db, renew ? "UPDATE locks SET expires = ?3 WHERE store = ?1 AND resource = ?2"
                               : "DELETE FROM locks WHERE store = ?1 AND resource = ?2");
    if (!change.ok()) return file_->Error(db, "preparing");
    BindText(change.get(), 1, store_);
    BindText(change.get(), 2, resource);
    if (renew) sqlite3_bind_int64(change.get(), 3, now + std::chrono::milliseconds(*renew).count());
    if (sqlite3_step(change.get()) != SQLITE_DONE)
      return file_->Error(db, renew ? "renewing a lock" : "releasing a lock");
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return result;
}

}  // namespace wasmlet::components
