#include "components/embedded/sqlite_file.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>

namespace wasmlet::components {

Result<std::unique_ptr<SqliteFile>> SqliteFile::Open(const StoreConfig& config, std::string who,
                                                     const char* schema) {
  std::unique_ptr<SqliteFile> file(new SqliteFile());
  file->who_ = std::move(who);
  auto it = config.metadata.find("path");
  file->path_ = it == config.metadata.end() || it->second.empty() ? "wasmlet-state.db" : it->second;
  std::error_code ignored;
  const auto folder = std::filesystem::path(file->path_).parent_path();
  if (!folder.empty()) std::filesystem::create_directories(folder, ignored);
  if (sqlite3_open_v2(file->path_.c_str(), &file->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return Status(StatusCode::kFailedPrecondition, "config " + config.json_path + ": cannot open the file " +
                                                       file->path_ + ": " + sqlite3_errmsg(file->db_) +
                                                       " (is its folder there and writable?)");
  }
  sqlite3_busy_timeout(file->db_, 2000);
  const std::string setup = std::string("PRAGMA journal_mode=WAL;") + schema;
  if (sqlite3_exec(file->db_, setup.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
    return file->Error(file->db_, "creating the tables");
  return file;
}

SqliteFile::~SqliteFile() { sqlite3_close(db_); }

Status SqliteFile::Error(sqlite3* db, const char* doing) const {
  return Internal(who_ + " (" + path_ + "): " + doing + ": " + sqlite3_errmsg(db));
}

Status SqliteFile::Transaction(const std::function<Status(sqlite3* db)>& work) {
  MutexLock lock(mutex_);
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return Error(db_, "starting a transaction");
  Status status = work(db_);
  if (status.ok() && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
    status = Error(db_, "committing");
  if (!status.ok()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return status;
}

void BindText(sqlite3_stmt* statement, int index, std::string_view text) {
  sqlite3_bind_text(statement, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

std::string ColumnBytes(sqlite3_stmt* statement, int index) {
  const auto* bytes = static_cast<const char*>(sqlite3_column_blob(statement, index));
  return std::string(bytes ? bytes : "", static_cast<size_t>(sqlite3_column_bytes(statement, index)));
}

int64_t UnixMillis(Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.WallNow().time_since_epoch()).count();
}

Statement::Statement(sqlite3* db, const char* sql) {
  if (sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr) != SQLITE_OK) statement_ = nullptr;
}

Statement::~Statement() { sqlite3_finalize(statement_); }

}  // namespace wasmlet::components
