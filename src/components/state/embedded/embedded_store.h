// The default state store: a SQLite database file, so a single node needs no server and keeps
// its state across restarts. metadata: {"path": "FILE"} (relative to the working directory;
// default "wasmlet-state.db"). One table holds every store, keyed by (store, key), with each
// item's version (its ETag) and the time it expires (NULL: never). A file written by an older
// wasmlet, without those two columns, gets them at open. Expired rows are never read, and are
// deleted now and then by writes.
//
// Each thread that uses the store gets a connection of its own (opened at its first call; up to
// 64, then they share one), so the serving loops read at the same time instead of queueing on
// one connection: the file is in WAL mode, where readers wait neither for each other nor for a
// writer. Writes still go one at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/mutex.h"
#include "components/state/state_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace wasmlet::components {

class EmbeddedStore : public StateStoreComponent {
 public:
  static Result<std::unique_ptr<StateStoreComponent>> Create(const StoreConfig& config);
  ~EmbeddedStore() override;
  Result<std::optional<StateItem>> GetItem(std::string_view key) override EXCLUDES(shared_mutex_);
  Status Apply(const std::vector<StateOperation>& operations) override EXCLUDES(write_mutex_, shared_mutex_);

 private:
  // One SQLite connection and its statements; used by one thread.
  struct Connection {
    ~Connection();
    sqlite3* db = nullptr;
    sqlite3_stmt* get = nullptr;     // value, version of (store, key) unless expired
    sqlite3_stmt* save = nullptr;    // insert or replace, version + 1
    sqlite3_stmt* remove = nullptr;  // delete (store, key)
    sqlite3_stmt* purge = nullptr;   // delete the store's expired rows
  };

  EmbeddedStore(std::string store, std::string path);
  Result<std::unique_ptr<Connection>> Open(const std::string& json_path) const;
  // This thread's connection, opened on first use.
  Result<Connection*> ThisThreadsConnection() EXCLUDES(mutex_);
  Status Error(const Connection& connection, const char* doing) const;
  Status AddMissingColumns(Connection& connection) const;
  // The live item at `key` as of `now` (ms since the epoch), through `connection`.
  Result<std::optional<StateItem>> Read(Connection& connection, std::string_view key, int64_t now);
  // Apply's checks and writes, in one transaction on `connection` (holding shared_mutex_ too
  // when it is the shared one).
  Status Write(Connection& connection, const std::vector<StateOperation>& operations) REQUIRES(write_mutex_);
  static constexpr uint64_t kPurgeEvery = 1000;  // writes between two purges of expired rows

  // Now on the clock's calendar, in ms since the epoch: expiries are kept in the file.
  int64_t NowMs() const;

  std::string store_;
  std::string path_;
  // TTLs.
  Clock* clock_ = &SystemClock();
  const uint64_t id_;  // tells this store's connections apart in a thread's cache; never reused
  // Threads past this many share the first connection (threads that come and go must not
  // pile up open files).
  static constexpr size_t kMaxConnections = 65;
  Mutex mutex_;
  std::vector<std::unique_ptr<Connection>> connections_ GUARDED_BY(mutex_);  // [0] is the shared one
  Connection* shared_ = nullptr;  // connections_[0], set once by Create
  // One thread at a time on shared_. Not PT_GUARDED_BY: threads reach it through their cache.
  Mutex shared_mutex_;
  Mutex write_mutex_;                             // one Apply at a time
  uint64_t writes_ GUARDED_BY(write_mutex_) = 0;  // purge now and then
};

}  // namespace wasmlet::components
