#include "components/state/embedded/embedded_store.h"

#include <sqlite3.h>

#include <filesystem>

namespace wasmlet::components {

Result<std::unique_ptr<StateStoreComponent>> EmbeddedStore::Create(const StoreConfig& config) {
  auto it = config.metadata.find("path");
  std::string path = it == config.metadata.end() || it->second.empty() ? "wasmlet-state.db" : it->second;
  std::unique_ptr<EmbeddedStore> store(new EmbeddedStore(config.name, path));
  // A node's first start finds no folder yet (e.g. /var/lib/wasmlet): make it.
  std::error_code ignored;
  const auto folder = std::filesystem::path(path).parent_path();
  if (!folder.empty()) std::filesystem::create_directories(folder, ignored);
  if (sqlite3_open_v2(path.c_str(), &store->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return Status(StatusCode::kFailedPrecondition,
                  "config " + config.json_path + ": cannot open the state file " + path + ": " +
                      sqlite3_errmsg(store->db_) + " (is its folder there and writable?)");
  }
  sqlite3_busy_timeout(store->db_, 2000);  // wasmlet start and `wasmlet state set` may share the file
  const char* schema =
      "PRAGMA journal_mode=WAL;"
      "CREATE TABLE IF NOT EXISTS state (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
      " PRIMARY KEY (store, key));";
  if (sqlite3_exec(store->db_, schema, nullptr, nullptr, nullptr) != SQLITE_OK)
    return store->Error("creating the table");
  if (sqlite3_prepare_v2(store->db_, "SELECT value FROM state WHERE store = ?1 AND key = ?2", -1,
                         &store->get_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(store->db_,
                         "INSERT INTO state (store, key, value) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                         -1, &store->set_, nullptr) != SQLITE_OK) {
    return store->Error("preparing statements");
  }
  return std::unique_ptr<StateStoreComponent>(std::move(store));
}

EmbeddedStore::~EmbeddedStore() {
  sqlite3_finalize(get_);
  sqlite3_finalize(set_);
  sqlite3_close(db_);
}

Status EmbeddedStore::Error(const char* doing) const {
  return Internal("state store '" + store_ + "' (" + path_ + "): " + doing + ": " + sqlite3_errmsg(db_));
}

Result<std::string> EmbeddedStore::Get(std::string_view key) {
  std::lock_guard lock(mutex_);
  sqlite3_reset(get_);
  sqlite3_bind_text(get_, 1, store_.data(), static_cast<int>(store_.size()), SQLITE_STATIC);
  sqlite3_bind_text(get_, 2, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  // Reset before returning, whatever happened: a statement left on a row keeps its read
  // transaction open, and writers (wasmlet state set) would wait on it.
  struct ResetAfter {
    sqlite3_stmt* statement;
    ~ResetAfter() {
      sqlite3_reset(statement);
      sqlite3_clear_bindings(statement);
    }
  } reset{get_};
  const int rc = sqlite3_step(get_);
  if (rc == SQLITE_DONE) return std::string();
  if (rc != SQLITE_ROW) return Error("reading");
  const void* data = sqlite3_column_blob(get_, 0);
  const int size = sqlite3_column_bytes(get_, 0);
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

Status EmbeddedStore::Set(std::string_view key, std::string_view value) {
  std::lock_guard lock(mutex_);
  sqlite3_reset(set_);
  sqlite3_bind_text(set_, 1, store_.data(), static_cast<int>(store_.size()), SQLITE_STATIC);
  sqlite3_bind_text(set_, 2, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  sqlite3_bind_blob(set_, 3, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(set_);
  Status status = rc == SQLITE_DONE ? Status::Ok() : Error("writing");
  sqlite3_reset(set_);
  sqlite3_clear_bindings(set_);
  return status;
}

}  // namespace wasmlet::components
