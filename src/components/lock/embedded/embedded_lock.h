// Locks in the embedded SQLite file (table `locks`), shared by every process that opens it.
#pragma once

#include <memory>
#include <optional>

#include "components/embedded/sqlite_file.h"
#include "components/lock/lock_store.h"

namespace wasmlet::components {

class EmbeddedLock : public LockStoreComponent {
 public:
  static Result<std::unique_ptr<LockStoreComponent>> Create(const StoreConfig& config);
  Result<bool> TryLock(std::string_view resource, std::string_view owner,
                       std::chrono::seconds expire) override;
  Result<UnlockResult> Unlock(std::string_view resource, std::string_view owner) override;
  Result<UnlockResult> Extend(std::string_view resource, std::string_view owner,
                              std::chrono::seconds expire) override;

 private:
  // Unlock (`renew` unset: the row goes) and Extend (its expiry moves to now + `renew`).
  Result<UnlockResult> ChangeHeld(std::string_view resource, std::string_view owner,
                                  std::optional<std::chrono::seconds> renew);
  EmbeddedLock(std::string store, std::unique_ptr<SqliteFile> file, Clock& clock)
      : store_(std::move(store)), file_(std::move(file)), clock_(clock) {}
  std::string store_;
  std::unique_ptr<SqliteFile> file_;
  Clock& clock_;  // expiries
};

}  // namespace wasmlet::components
