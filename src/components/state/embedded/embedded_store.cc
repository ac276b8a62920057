#include "components/state/embedded/embedded_store.h"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <unordered_map>

namespace wasmlet::components {
namespace {

std::atomic<uint64_t> next_store_id{1};

}  // namespace

EmbeddedStore::EmbeddedStore(std::string store, std::string path)
    : store_(std::move(store)), path_(std::move(path)), id_(next_store_id.fetch_add(1)) {}

EmbeddedStore::Connection::~Connection() {
  for (sqlite3_stmt* statement : {get, save, remove, purge}) sqlite3_finalize(statement);
  sqlite3_close(db);
}

Result<std::unique_ptr<StateStoreComponent>> EmbeddedStore::Create(const StoreConfig& config) {
  auto it = config.metadata.find("path");
  std::string path = it == config.metadata.end() || it->second.empty() ? "wasmlet-state.db" : it->second;
  std::unique_ptr<EmbeddedStore> store(new EmbeddedStore(config.name, path));
  store->clock_ = config.clock;
  // A node's first start finds no folder yet (e.g. /var/lib/wasmlet): make it.
  std::error_code ignored;
  const auto folder = std::filesystem::path(path).parent_path();
  if (!folder.empty()) std::filesystem::create_directories(folder, ignored);
  // The first connection makes the file and its table, and tells a bad path now, not at the
  // first request. It stays as the one threads past kMaxConnections share.
  auto first = store->Open(config.json_path);
  if (!first.ok()) return first.status();
  store->shared_ = first->get();
  MutexLock lock(store->mutex_);  // not shared yet, but the analysis checks every access
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
      " version INTEGER NOT NULL DEFAULT 1, expires INTEGER, PRIMARY KEY (store, key));";
  if (sqlite3_exec(connection->db, schema, nullptr, nullptr, nullptr) != SQLITE_OK)
    return Error(*connection, "creating the table");
  if (Status migrated = AddMissingColumns(*connection); !migrated.ok()) return migrated;
  struct {
    sqlite3_stmt** statement;
    const char* sql;
  } statements[] = {
      {&connection->get,
       "SELECT value, version FROM state WHERE store = ?1 AND key = ?2 AND (expires IS NULL OR expires > "
       "?3)"},
      // An expired row is replaced as if it were not there: its version starts again at 1.
      {&connection->save,
       "INSERT INTO state (store, key, value, version, expires) VALUES (?1, ?2, ?3, 1, ?4)"
       " ON CONFLICT (store, key) DO UPDATE SET value = excluded.value, expires = excluded.expires,"
       " version = CASE WHEN state.expires IS NOT NULL AND state.expires <= ?5 THEN 1 ELSE state.version + 1 "
       "END"},
      {&connection->remove, "DELETE FROM state WHERE store = ?1 AND key = ?2"},
      {&connection->purge, "DELETE FROM state WHERE store = ?1 AND expires IS NOT NULL AND expires <= ?2"},
  };
  for (const auto& [statement, sql] : statements) {
    if (sqlite3_prepare_v2(connection->db, sql, -1, statement, nullptr) != SQLITE_OK)
      return Error(*connection, "preparing statements");
  }
  return connection;
}

EmbeddedStore::~EmbeddedStore() = default;

// A file made before items had versions and expiry times has neither column: add them. Two
// processes opening such a file at once may both try; the loser finds the column there.
Status EmbeddedStore::AddMissingColumns(Connection& connection) const {
  for (const char* sql : {"ALTER TABLE state ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
                          "ALTER TABLE state ADD COLUMN expires INTEGER"}) {
    if (sqlite3_exec(connection.db, sql, nullptr, nullptr, nullptr) == SQLITE_OK) continue;
    if (std::string_view(sqlite3_errmsg(connection.db)).find("duplicate column") == std::string_view::npos)
      return Error(connection, "adding the version and expiry columns to an older state file");
  }
  return Status::Ok();
}

Result<EmbeddedStore::Connection*> EmbeddedStore::ThisThreadsConnection() {
  // Store ids are never reused, so an entry of a store that is gone is never found again.
  thread_local std::unordered_map<uint64_t, Connection*> mine;
  if (auto found = mine.find(id_); found != mine.end()) return found->second;
  MutexLock lock(mutex_);
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

namespace {

// Resets a statement when leaving the scope, whatever happened: a statement left on a row
// keeps its read transaction open, and writers (wasmlet state set) would wait on it.
struct ResetAfter {
  sqlite3_stmt* statement;
  ~ResetAfter() {
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
  }
};

}  // namespace

Result<std::optional<StateItem>> EmbeddedStore::Read(Connection& connection, std::string_view key,
                                                     int64_t now) {
  sqlite3_stmt* get = connection.get;
  ResetAfter reset{get};
  sqlite3_bind_text(get, 1, store_.data(), static_cast<int>(store_.size()), SQLITE_STATIC);
  sqlite3_bind_text(get, 2, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  sqlite3_bind_int64(get, 3, now);
  const int rc = sqlite3_step(get);
  if (rc == SQLITE_DONE) return std::optional<StateItem>();
  if (rc != SQLITE_ROW) return Error(connection, "reading");
  const void* data = sqlite3_column_blob(get, 0);
  const int size = sqlite3_column_bytes(get, 0);
  StateItem item;
  item.value.assign(static_cast<const char*>(data), static_cast<size_t>(size));
  item.etag = std::to_string(sqlite3_column_int64(get, 1));
  return std::optional<StateItem>(std::move(item));
}

int64_t EmbeddedStore::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->WallNow().time_since_epoch()).count();
}

Result<std::optional<StateItem>> EmbeddedStore::GetItem(std::string_view key) {
  auto connection = ThisThreadsConnection();
  if (!connection.ok()) return connection.status();
  if (*connection != shared_) return Read(**connection, key, NowMs());
  MutexLock shared(shared_mutex_);
  return Read(**connection, key, NowMs());
}

Status EmbeddedStore::Apply(const std::vector<StateOperation>& operations) {
  if (operations.empty()) return Status::Ok();
  auto found = ThisThreadsConnection();
  if (!found.ok()) return found.status();
  // Writes of this process go one at a time, in the order they came, as with one connection:
  // left to SQLite's lock, writers poll it (busy_timeout) and one can lose every round.
  MutexLock writing(write_mutex_);
  if (*found != shared_) return Write(**found, operations);
  MutexLock shared(shared_mutex_);
  return Write(**found, operations);
}

Status EmbeddedStore::Write(Connection& connection, const std::vector<StateOperation>& operations) {
  // IMMEDIATE: the write lock is taken now, so no other process writes between the checks
  // and the writes.
  if (sqlite3_exec(connection.db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return Error(connection, "starting a transaction");
  auto rollback = [&](Status status) {
    sqlite3_exec(connection.db, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  };
  const int64_t now = NowMs();
  for (const StateOperation& op : operations) {
    auto item = Read(connection, op.key, now);
    if (!item.ok()) return rollback(item.status());
    std::optional<std::string> current;
    if (*item) current = std::move((*item)->etag);
    if (Status refused = CheckWriteCondition(store_, op, current); !refused.ok()) return rollback(refused);
  }
  for (const StateOperation& op : operations) {
    const bool save = op.kind == StateOperation::Kind::kSave;
    sqlite3_stmt* statement = save ? connection.save : connection.remove;
    ResetAfter reset{statement};
    sqlite3_bind_text(statement, 1, store_.data(), static_cast<int>(store_.size()), SQLITE_STATIC);
    sqlite3_bind_text(statement, 2, op.key.data(), static_cast<int>(op.key.size()), SQLITE_STATIC);
    if (save) {
      sqlite3_bind_blob(statement, 3, op.value.data(), static_cast<int>(op.value.size()), SQLITE_STATIC);
      if (op.ttl.count() > 0) {
        sqlite3_bind_int64(statement, 4, now + std::chrono::milliseconds(op.ttl).count());
      } else {
        sqlite3_bind_null(statement, 4);
      }
      sqlite3_bind_int64(statement, 5, now);
    }
    if (sqlite3_step(statement) != SQLITE_DONE) return rollback(Error(connection, "writing"));
  }
  if (++writes_ % kPurgeEvery == 0) {
    ResetAfter reset{connection.purge};
    sqlite3_bind_text(connection.purge, 1, store_.data(), static_cast<int>(store_.size()), SQLITE_STATIC);
    sqlite3_bind_int64(connection.purge, 2, now);
    if (sqlite3_step(connection.purge) != SQLITE_DONE)
      return rollback(Error(connection, "deleting expired items"));
  }
  if (sqlite3_exec(connection.db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
    return rollback(Error(connection, "committing"));
  return Status::Ok();
}

}  // namespace wasmlet::components
