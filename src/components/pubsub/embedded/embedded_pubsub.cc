#include "components/pubsub/embedded/embedded_pubsub.h"

#include <sqlite3.h>

namespace wasmlet::components {
namespace {

std::optional<int64_t> SeqOf(std::string_view id) {
  int64_t seq = 0;
  if (id.empty() || id.size() > 18) return std::nullopt;
  for (char c : id) {
    if (c < '0' || c > '9') return std::nullopt;
    seq = seq * 10 + (c - '0');
  }
  return seq;
}

// Parameters ?1, ?2, ?3 of the statements about one group: the store, the topic, the group.
void BindGroup(sqlite3_stmt* statement, std::string_view store, std::string_view topic,
               std::string_view group) {
  BindText(statement, 1, store);
  BindText(statement, 2, topic);
  BindText(statement, 3, group);
}

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS pubsub_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, store TEXT NOT NULL,"
    " topic TEXT NOT NULL, data BLOB NOT NULL, metadata TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS pubsub_messages_topic ON pubsub_messages (store, topic, seq);"
    "CREATE TABLE IF NOT EXISTS pubsub_groups (store TEXT NOT NULL, topic TEXT NOT NULL, grp TEXT NOT NULL,"
    " cursor INTEGER NOT NULL, PRIMARY KEY (store, topic, grp));"
    "CREATE TABLE IF NOT EXISTS pubsub_pending (store TEXT NOT NULL, topic TEXT NOT NULL, grp TEXT NOT NULL,"
    " seq INTEGER NOT NULL, deliveries INTEGER NOT NULL, due INTEGER NOT NULL,"
    " PRIMARY KEY (store, topic, grp, seq));";

}  // namespace

Result<std::unique_ptr<PubSubComponent>> EmbeddedPubSub::Create(const StoreConfig& config) {
  auto limits = ReadPubSubLimits(config);
  if (!limits.ok()) return limits.status();
  auto file = SqliteFile::Open(config, "pub/sub '" + config.name + "'", kSchema);
  if (!file.ok()) return file.status();
  return std::unique_ptr<PubSubComponent>(
      new EmbeddedPubSub(config.name, std::move(*file), *limits, *config.clock));
}

Result<std::string> EmbeddedPubSub::Publish(std::string_view topic, std::string_view data,
                                            const PubSubMetadata& metadata) {
  const std::string encoded = EncodePubSubMetadata(metadata);
  int64_t seq = 0;
  Status status = file_->Transaction([&](sqlite3* db) -> Status {
    Statement insert(db,
                     "INSERT INTO pubsub_messages (store, topic, data, metadata) VALUES (?1, ?2, ?3, ?4)");
    if (!insert.ok()) return file_->Error(db, "preparing");
    BindText(insert.get(), 1, store_);
    BindText(insert.get(), 2, topic);
    sqlite3_bind_blob(insert.get(), 3, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
    BindText(insert.get(), 4, encoded);
    if (sqlite3_step(insert.get()) != SQLITE_DONE) return file_->Error(db, "publishing");
    seq = sqlite3_last_insert_rowid(db);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  {
    MutexLock lock(wake_mutex_);
    ++publications_;
  }
  published_.NotifyAll();
  return std::to_string(seq);
}

Result<std::vector<PubSubMessage>> EmbeddedPubSub::TakeSome(std::string_view topic, std::string_view group,
                                                            size_t max) {
  std::vector<PubSubMessage> out;
  const int64_t now = UnixMillis(clock_);
  const int64_t lease = now + limits_.processing_timeout.count();
  Status status = file_->Transaction([&](sqlite3* db) -> Status {
    Statement join(
        db,
        "INSERT OR IGNORE INTO pubsub_groups (store, topic, grp, cursor) SELECT ?1, ?2, ?3,"
        " COALESCE((SELECT MIN(seq) - 1 FROM pubsub_messages WHERE store = ?1 AND topic = ?2), 0)");
    if (!join.ok()) return file_->Error(db, "preparing");
    BindGroup(join.get(), store_, topic, group);
    if (sqlite3_step(join.get()) != SQLITE_DONE) return file_->Error(db, "joining the group");

    // Due again first: their leases ran out, or a retry's time came.
    Statement due(
        db,
        "SELECT p.seq, p.deliveries, m.data, m.metadata FROM pubsub_pending p LEFT JOIN pubsub_messages m"
        " ON m.seq = p.seq WHERE p.store = ?1 AND p.topic = ?2 AND p.grp = ?3 AND p.due <= ?4"
        " ORDER BY p.seq LIMIT ?5");
    Statement lease_again(db,
                          "UPDATE pubsub_pending SET deliveries = deliveries + 1, due = ?5"
                          " WHERE store = ?1 AND topic = ?2 AND grp = ?3 AND seq = ?4");
    Statement forget(db,
                     "DELETE FROM pubsub_pending WHERE store = ?1 AND topic = ?2 AND grp = ?3 AND seq = ?4");
    if (!due.ok() || !lease_again.ok() || !forget.ok()) return file_->Error(db, "preparing");
    BindGroup(due.get(), store_, topic, group);
    sqlite3_bind_int64(due.get(), 4, now);
    sqlite3_bind_int64(due.get(), 5, static_cast<int64_t>(max));
    std::vector<std::pair<int64_t, bool>> touched;  // seq, still there
    int step;
    while ((step = sqlite3_step(due.get())) == SQLITE_ROW) {
      const int64_t seq = sqlite3_column_int64(due.get(), 0);
      const bool there = sqlite3_column_type(due.get(), 2) != SQLITE_NULL;
      touched.emplace_back(seq, there);
      if (!there) continue;  // trimmed while pending
      out.push_back(PubSubMessage{std::to_string(seq), ColumnBytes(due.get(), 2),
                                  DecodePubSubMetadata(ColumnBytes(due.get(), 3)),
                                  static_cast<uint32_t>(sqlite3_column_int64(due.get(), 1)) + 1});
    }
    if (step != SQLITE_DONE) return file_->Error(db, "reading what is due");
    for (const auto& [seq, there] : touched) {
      sqlite3_stmt* s = there ? lease_again.get() : forget.get();
      sqlite3_reset(s);
      BindGroup(s, store_, topic, group);
      sqlite3_bind_int64(s, 4, seq);
      if (there) sqlite3_bind_int64(s, 5, lease);
      if (sqlite3_step(s) != SQLITE_DONE) return file_->Error(db, "leasing");
    }
    if (out.size() >= max) return Status::Ok();

    // Then new ones, past the group's cursor.
    Statement fresh(
        db,
        "SELECT seq, data, metadata FROM pubsub_messages WHERE store = ?1 AND topic = ?2 AND seq >"
        " (SELECT cursor FROM pubsub_groups WHERE store = ?1 AND topic = ?2 AND grp = ?3)"
        " ORDER BY seq LIMIT ?4");
    Statement hold(db,
                   "INSERT OR REPLACE INTO pubsub_pending (store, topic, grp, seq, deliveries, due)"
                   " VALUES (?1, ?2, ?3, ?4, 1, ?5)");
    Statement advance(db,
                      "UPDATE pubsub_groups SET cursor = ?4 WHERE store = ?1 AND topic = ?2 AND grp = ?3");
    if (!fresh.ok() || !hold.ok() || !advance.ok()) return file_->Error(db, "preparing");
    BindGroup(fresh.get(), store_, topic, group);
    sqlite3_bind_int64(fresh.get(), 4, static_cast<int64_t>(max - out.size()));
    int64_t last = -1;
    std::vector<int64_t> taken;
    while ((step = sqlite3_step(fresh.get())) == SQLITE_ROW) {
      last = sqlite3_column_int64(fresh.get(), 0);
      taken.push_back(last);
      out.push_back(PubSubMessage{std::to_string(last), ColumnBytes(fresh.get(), 1),
                                  DecodePubSubMetadata(ColumnBytes(fresh.get(), 2)), 1});
    }
    if (step != SQLITE_DONE) return file_->Error(db, "reading new messages");
    for (int64_t seq : taken) {
      sqlite3_reset(hold.get());
      BindGroup(hold.get(), store_, topic, group);
      sqlite3_bind_int64(hold.get(), 4, seq);
      sqlite3_bind_int64(hold.get(), 5, lease);
      if (sqlite3_step(hold.get()) != SQLITE_DONE) return file_->Error(db, "leasing");
    }
    if (last >= 0) {
      BindGroup(advance.get(), store_, topic, group);
      sqlite3_bind_int64(advance.get(), 4, last);
      if (sqlite3_step(advance.get()) != SQLITE_DONE) return file_->Error(db, "moving the cursor");
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return out;
}

Result<std::vector<PubSubMessage>> EmbeddedPubSub::Fetch(std::string_view topic, std::string_view group,
                                                         size_t max, std::chrono::milliseconds wait) {
  const auto until = clock_.Now() + wait;
  for (;;) {
    uint64_t seen;
    {
      MutexLock lock(wake_mutex_);
      seen = publications_;
    }
    auto some = TakeSome(topic, group, max);
    if (!some.ok() || !some->empty() || clock_.Now() >= until) return some;
    // Woken by a publication here, or every 50 ms for other processes and retries coming due.
    const auto look_again = std::min(until, clock_.Now() + std::chrono::milliseconds(50));
    MutexLock lock(wake_mutex_);
    while (publications_ == seen && clock_.WaitUntil(wake_mutex_, published_, look_again)) {
    }
  }
}

Status EmbeddedPubSub::Ack(std::string_view topic, std::string_view group, std::string_view id) {
  const auto seq = SeqOf(id);
  if (!seq) return InvalidArgument("pub/sub '" + store_ + "': '" + std::string(id) + "' is not a message id");
  Status status = file_->Transaction([&](sqlite3* db) -> Status {
    Statement done(db,
                   "DELETE FROM pubsub_pending WHERE store = ?1 AND topic = ?2 AND grp = ?3 AND seq = ?4");
    if (!done.ok()) return file_->Error(db, "preparing");
    BindGroup(done.get(), store_, topic, group);
    sqlite3_bind_int64(done.get(), 4, *seq);
    if (sqlite3_step(done.get()) != SQLITE_DONE) return file_->Error(db, "acknowledging");
    return Status::Ok();
  });
  if (!status.ok()) return status;
  bool trim;
  {
    MutexLock lock(wake_mutex_);
    trim = ++acks_ % 256 == 0;
  }
  return trim ? Trim(topic) : Status::Ok();
}

Status EmbeddedPubSub::Trim(std::string_view topic) {
  return file_->Transaction([&](sqlite3* db) -> Status {
    // What every group has moved past and acknowledged, and what is over maxLen.
    Statement trim(db,
                   "DELETE FROM pubsub_messages WHERE store = ?1 AND topic = ?2 AND ("
                   " (seq <= (SELECT MIN(cursor) FROM pubsub_groups WHERE store = ?1 AND topic = ?2)"
                   "  AND seq NOT IN (SELECT seq FROM pubsub_pending WHERE store = ?1 AND topic = ?2))"
                   " OR seq <= (SELECT MAX(seq) FROM pubsub_messages WHERE store = ?1 AND topic = ?2) - ?3)");
    if (!trim.ok()) return file_->Error(db, "preparing");
    BindText(trim.get(), 1, store_);
    BindText(trim.get(), 2, topic);
    sqlite3_bind_int64(trim.get(), 3, static_cast<int64_t>(limits_.max_len));
    if (sqlite3_step(trim.get()) != SQLITE_DONE) return file_->Error(db, "trimming");
    return Status::Ok();
  });
}

Status EmbeddedPubSub::Retry(std::string_view topic, std::string_view group, std::string_view id,
                             std::chrono::milliseconds after) {
  const auto seq = SeqOf(id);
  if (!seq) return InvalidArgument("pub/sub '" + store_ + "': '" + std::string(id) + "' is not a message id");
  return file_->Transaction([&](sqlite3* db) -> Status {
    Statement later(
        db, "UPDATE pubsub_pending SET due = ?5 WHERE store = ?1 AND topic = ?2 AND grp = ?3 AND seq = ?4");
    if (!later.ok()) return file_->Error(db, "preparing");
    BindGroup(later.get(), store_, topic, group);
    sqlite3_bind_int64(later.get(), 4, *seq);
    sqlite3_bind_int64(later.get(), 5, UnixMillis(clock_) + after.count());
    if (sqlite3_step(later.get()) != SQLITE_DONE) return file_->Error(db, "scheduling a retry");
    return Status::Ok();
  });
}

}  // namespace wasmlet::components
