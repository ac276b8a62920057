#include "components/sequencer/embedded/embedded_sequencer.h"

#include <sqlite3.h>

namespace wasmlet::components {

Result<std::unique_ptr<SequencerComponent>> EmbeddedSequencer::Create(const StoreConfig& config) {
  auto file = SqliteFile::Open(config, "sequencer '" + config.name + "'",
                               "CREATE TABLE IF NOT EXISTS sequences (store TEXT NOT NULL, key TEXT NOT NULL,"
                               " last INTEGER NOT NULL, PRIMARY KEY (store, key));");
  if (!file.ok()) return file.status();
  return std::unique_ptr<SequencerComponent>(new EmbeddedSequencer(config.name, std::move(*file)));
}

Result<uint64_t> EmbeddedSequencer::NextId(std::string_view key) {
  uint64_t id = 0;
  Status status = file_->Transaction([&](sqlite3* db) -> Status {
    Statement next(db,
                   "INSERT INTO sequences (store, key, last) VALUES (?1, ?2, 1)"
                   " ON CONFLICT (store, key) DO UPDATE SET last = last + 1 RETURNING last");
    if (!next.ok()) return file_->Error(db, "preparing");
    BindText(next.get(), 1, store_);
    BindText(next.get(), 2, key);
    if (sqlite3_step(next.get()) != SQLITE_ROW) return file_->Error(db, "taking the next id");
    id = static_cast<uint64_t>(sqlite3_column_int64(next.get(), 0));
    // RETURNING hands the row before the statement is done: finish it inside the transaction.
    if (sqlite3_step(next.get()) != SQLITE_DONE) return file_->Error(db, "taking the next id");
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return id;
}

}  // namespace wasmlet::components
