#include "components/state/embedded/embedded_store.h"

#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <unordered_map>

namespace wasmlet::components {
namespace {

std::atomic<uint64_t> next_store_id{1};

}  // namespace

EmbeddedStore::EmbeddedStore(std::string store, std::string path)
    : store_(std::move(store)), path_(std::move(path)), id_(next_store_id.fetch_add(1)) {}

EmbeddedStore::Connection::~Connection() {
  sqlite3_finalize(get);
  sqlite3_finalize(set);
  sqlite3_close(db);
}

Result<std::unique_ptr<StateStoreComponent>> EmbeddedStore::Create(const StoreConfig& config) {
  auto it = config.metadata.find("path");
  std::string path = it == config.metadata.end() || it->second.empty() ? "wasmlet-state.db" : it->second;
  std::unique_ptr<EmbeddedStore> store(new EmbeddedStore(config.name, path));
  // A node's first start finds no folder yet (e.g. /var/lib/wasmlet): make it.
  std::error_code ignored;
  const auto folder = std::filesystem::path(path).parent_path();
  if (!folder.empty()) std::filesystem::create_directories(folder, ignored);
  // The first connection makes the file and its table, and tells a bad path now, not at the
  // first request. It stays as the one threads past kMaxConnections share.
  auto first = store->Open(config.json_path);
  if (!first.ok()) return first.status();
  store->shared_ = first->get();
  store->connections_.push_back(std::move(*first));
  return std::unique_ptr<StateStoreComponent>(std::move(store));
}

Result<std::unique_ptr<EmbeddedStore::Connection>> EmbeddedStore::Open(const std::string& json_path) const {
  auto connection = std::make_unique<Connection>();
  if (sqlite3_open_v2(path_.c_str(), &connection->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return Status(StatusCode::kFailedPrecondition,
                  (json_path.empty() ? "" : "config " + json_path + ": ") + "cannot open the state file " +
                      path_ + ": " + sqlite3_errmsg(connection->db) + " (is its folder there and writable?)");
  }
  sqlite3_busy_timeout(connection->db, 2000);  // wasmlet start and `wasmlet state set` may share the file
  const char* schema =
      "PRAGMA journal_mode=WAL;"
      "CREATE TABLE IF NOT EXISTS state (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
      " PRIMARY KEY (store, key));";
  if (sqlite3_exec(connection->db, schema, nullptr, nullptr, nullptr) != SQLITE_OK)
    return Error(*connection, "creating the table");
  if (sqlite3_prepare_v2(connection->db, "SELECT value FROM state WHERE store = ?1 AND key = ?2", -1,
                         &connection->get, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(connection->db,
                         "INSERT INTO state (store, key, value) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                         -1, &connection->set, nullptr) != SQLITE_OK) {
    return Error(*connection, "preparing statements");
  }
  return connection;
}

EmbeddedStore::~EmbeddedStore() = default;

Result<EmbeddedStore::Connection*> EmbeddedStore::ThisThreadsConnection() {
  // Store ids are never reused, so an entry of a store that is gone is never found again.
  thread_local std::unordered_map<uint64_t, Connection*> mine;
  if (auto found = mine.find(id_); found != mine.end()) return found->second;
  std::lock_guard lock(mutex_);
  Connection* connection = nullptr;
  if (connections_.size() >= kMaxConnections) {
    connection = shared_;
  } else {
    auto opened = Open("");
    if (!opened.ok()) return opened.status();
    connections_.push_back(std::move(*opened));
    connection = connections_.back().get();
  }
  mine[id_] = connection;
  return connection;
}

Status EmbeddedStore::Error(const Connection& connection, const char* doing) const {
  return Internal("state store '" + store_ + "' (" + path_ + "): " + doing + ": " +
                  sqlite3_errmsg(connection.db));
}

Result<std::string> EmbeddedStore::Get(std::string_view key) {
  auto connection = ThisThreadsConnection();
  if (!connection.ok()) return connection.status();
  std::unique_lock shared(shared_mutex_, std::defer_lock);
  if (*connection == shared_) shared.lock();
  sqlite3_stmt* get = (*connection)->get;
  sqlite3_bind_text(get, 1, store_.data(), static_cast<int>(store_.size()), SQLITE_STATIC);
  sqlite3_bind_text(get, 2, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  // Reset before returning, whatever happened: a statement left on a row keeps its read
  // transaction open, and writers (wasmlet state set) would wait on it.
  struct ResetAfter {
    sqlite3_stmt* statement;
    ~ResetAfter() {
      sqlite3_reset(statement);
      sqlite3_clear_bindings(statement);
    }
  } reset{get};
  const int rc = sqlite3_step(get);
  if (rc == SQLITE_DONE) return std::string();
  if (rc != SQLITE_ROW) return Error(**connection, "reading");
  const void* data = sqlite3_column_blob(get, 0);
  const int size = sqlite3_column_bytes(get, 0);
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

Status EmbeddedStore::Set(std::string_view key, std::string_view value) {
  auto connection = ThisThreadsConnection();
  if (!connection.ok()) return connection.status();
  // Writes of this process go one at a time, in the order they came, as with one connection:
  // left to SQLite's lock, writers poll it (busy_timeout) and one can lose every round.
  std::lock_guard writing(write_mutex_);
  std::unique_lock shared(shared_mutex_, std::defer_lock);
  if (*connection == shared_) shared.lock();
  sqlite3_stmt* set = (*connection)->set;
  sqlite3_bind_text(set, 1, store_.data(), static_cast<int>(store_.size()), SQLITE_STATIC);
  sqlite3_bind_text(set, 2, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  sqlite3_bind_blob(set, 3, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  const int rc = sqlite3_step(set);
  Status status = rc == SQLITE_DONE ? Status::Ok() : Error(**connection, "writing");
  sqlite3_reset(set);
  sqlite3_clear_bindings(set);
  return status;
}

}  // namespace wasmlet::components
