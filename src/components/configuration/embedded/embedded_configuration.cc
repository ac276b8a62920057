#include "components/configuration/embedded/embedded_configuration.h"

#include <sqlite3.h>

namespace wasmlet::components {

Result<std::unique_ptr<ConfigurationStoreComponent>> EmbeddedConfiguration::Create(
    const StoreConfig& config) {
  auto file = SqliteFile::Open(config, "configuration store '" + config.name + "'",
                               "CREATE TABLE IF NOT EXISTS configuration (store TEXT NOT NULL,"
                               " key TEXT NOT NULL, content BLOB NOT NULL, PRIMARY KEY (store, key));");
  if (!file.ok()) return file.status();
  return std::unique_ptr<ConfigurationStoreComponent>(
      new EmbeddedConfiguration(config.name, std::move(*file)));
}

Result<ConfigurationItems> EmbeddedConfiguration::Get(const std::vector<std::string>& keys) {
  ConfigurationItems items;
  Status status = file_->Transaction([&](sqlite3* db) -> Status {
    Statement get(db, "SELECT content FROM configuration WHERE store = ?1 AND key = ?2");
    if (!get.ok()) return file_->Error(db, "preparing");
    for (const std::string& key : keys) {
      sqlite3_reset(get.get());
      BindText(get.get(), 1, store_);
      BindText(get.get(), 2, key);
      const int step = sqlite3_step(get.get());
      if (step == SQLITE_DONE) continue;
      if (step != SQLITE_ROW) return file_->Error(db, "reading");
      items.emplace_back(key, ColumnBytes(get.get(), 0));
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return items;
}

Status EmbeddedConfiguration::Set(std::string_view key, std::string_view content) {
  return file_->Transaction([&](sqlite3* db) -> Status {
    Statement set(db,
                  "INSERT INTO configuration (store, key, content) VALUES (?1, ?2, ?3)"
                  " ON CONFLICT (store, key) DO UPDATE SET content = excluded.content");
    if (!set.ok()) return file_->Error(db, "preparing");
    BindText(set.get(), 1, store_);
    BindText(set.get(), 2, key);
    sqlite3_bind_blob(set.get(), 3, content.data(), static_cast<int>(content.size()), SQLITE_STATIC);
    if (sqlite3_step(set.get()) != SQLITE_DONE) return file_->Error(db, "writing");
    return Status::Ok();
  });
}

Status EmbeddedConfiguration::Delete(std::string_view key) {
  return file_->Transaction([&](sqlite3* db) -> Status {
    Statement remove(db, "DELETE FROM configuration WHERE store = ?1 AND key = ?2");
    if (!remove.ok()) return file_->Error(db, "preparing");
    BindText(remove.get(), 1, store_);
    BindText(remove.get(), 2, key);
    if (sqlite3_step(remove.get()) != SQLITE_DONE) return file_->Error(db, "deleting");
    return Status::Ok();
  });
}

}  // namespace wasmlet::components
