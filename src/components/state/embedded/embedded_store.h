// The default state store: a SQLite database file, so a single node needs no server and keeps
// its state across restarts. metadata: {"path": "FILE"} (relative to the working directory;
// default "wasmlet-state.db"). One table holds every store, keyed by (store, key).
//
// Each thread that uses the store gets a connection of its own (opened at its first call; up to
// 64, then they share one), so the serving loops read at the same time instead of queueing on
// one connection: the file is in WAL mode, where readers wait neither for each other nor for a
// writer. Writes still go one at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "components/state/state_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace wasmlet::components {

class EmbeddedStore : public StateStoreComponent {
 public:
  static Result<std::unique_ptr<StateStoreComponent>> Create(const StoreConfig& config);
  ~EmbeddedStore() override;
  Result<std::string> Get(std::string_view key) override;
  Status Set(std::string_view key, std::string_view value) override;

 private:
  // One SQLite connection and its statements; used by one thread.
  struct Connection {
    ~Connection();
    sqlite3* db = nullptr;
    sqlite3_stmt* get = nullptr;
    sqlite3_stmt* set = nullptr;
  };

  EmbeddedStore(std::string store, std::string path);
  Result<std::unique_ptr<Connection>> Open(const std::string& json_path) const;
  // This thread's connection, opened on first use.
  Result<Connection*> ThisThreadsConnection();
  Status Error(const Connection& connection, const char* doing) const;

  std::string store_;
  std::string path_;
  const uint64_t id_;  // tells this store's connections apart in a thread's cache; never reused
  // Threads past this many share the first connection (threads that come and go must not
  // pile up open files).
  static constexpr size_t kMaxConnections = 65;
  std::mutex mutex_;                                      // guards connections_
  std::vector<std::unique_ptr<Connection>> connections_;  // [0] is the shared one
  Connection* shared_ = nullptr;                          // connections_[0], set once by Create
  std::mutex shared_mutex_;                               // one thread at a time on shared_
  std::mutex write_mutex_;                                // one Set at a time
};

}  // namespace wasmlet::components
