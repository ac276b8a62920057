// One SQLite file opened for a component of the embedded kind (locks, sequencers): a single
// connection, used by one thread at a time, in WAL mode with a busy timeout so that `wasmlet`
// commands on the same file wait instead of failing. metadata: {"path": FILE} (default
// "wasmlet-state.db", the embedded state store's file).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/mutex.h"
#include "common/status.h"
#include "components/state/state_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace wasmlet::components {

class SqliteFile {
 public:
  // Opens (and creates) the file and runs `schema` on it. `who` names the component in
  // messages, e.g. "lock store 'locks'". Unchecked: it sets up db_ without the lock, before
  // the new file is anyone else's.
  static Result<std::unique_ptr<SqliteFile>> Open(const StoreConfig& config, std::string who,
                                                  const char* schema) NO_THREAD_SAFETY_ANALYSIS;
  ~SqliteFile();

  // Runs `work` inside one IMMEDIATE transaction (the write lock taken at its start), committed
  // when it returns OK and rolled back otherwise; one call at a time.
  Status Transaction(const std::function<Status(sqlite3* db)>& work) EXCLUDES(mutex_);
  // An Internal error naming the component, the file, `doing`, and SQLite's message.
  Status Error(sqlite3* db, const char* doing) const;

 private:
  SqliteFile() = default;
  std::string who_;
  std::string path_;
  Mutex mutex_;
  sqlite3* db_ GUARDED_BY(mutex_) = nullptr;
};

// A prepared statement, finalized when it goes.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const { return statement_ != nullptr; }
  sqlite3_stmt* get() const { return statement_; }

 private:
  sqlite3_stmt* statement_ = nullptr;
};

// Helpers for statements: text bound without a copy (it must outlive the step), a column as
// bytes, and the calendar time of `clock` in Unix milliseconds (the time columns of the embedded
// tables: they outlive the process, and other processes read them).
void BindText(sqlite3_stmt* statement, int index, std::string_view text);
std::string ColumnBytes(sqlite3_stmt* statement, int index);
int64_t UnixMillis(Clock& clock);

}  // namespace wasmlet::components
