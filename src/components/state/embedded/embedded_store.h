// The default state store: a SQLite database file, so a single node needs no server and keeps
// its state across restarts. metadata: {"path": "FILE"} (relative to the working directory;
// default "wasmlet-state.db"). One table holds every store, keyed by (store, key).
#pragma once

#include <mutex>

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
  EmbeddedStore(std::string store, std::string path) : store_(std::move(store)), path_(std::move(path)) {}
  Status Error(const char* doing) const;

  std::string store_;
  std::string path_;
  std::mutex mutex_;  // one connection, one statement at a time
  sqlite3* db_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
  sqlite3_stmt* set_ = nullptr;
};

}  // namespace wasmlet::components
