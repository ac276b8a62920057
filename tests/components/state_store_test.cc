// The state API of every store type (in-memory, embedded SQLite, a real redis-server): items
// and their ETags, conditional writes, first-write, TTLs, bulk reads and transactions that
// apply all or nothing, and ETag-guarded updates from several threads that lose none.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <thread>
#include <vector>

#include "components/state/state_store.h"
#include "e2e/harness.h"

namespace wasmlet::components {
namespace {

using Kind = StateOperation::Kind;

StateOperation Save(std::string key, std::string value, std::optional<std::string> etag = std::nullopt) {
  StateOperation op;
  op.key = std::move(key);
  op.value = std::move(value);
  op.etag = std::move(etag);
  return op;
}

StateOperation Delete(std::string key, std::optional<std::string> etag = std::nullopt) {
  StateOperation op;
  op.kind = Kind::kDelete;
  op.key = std::move(key);
  op.etag = std::move(etag);
  return op;
}

// One store of each type under test; Redis runs as a real server of the fixture's own.
class StateStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    StoreConfig config;
    config.name = "orders";
    config.type = GetParam();
    config.json_path = "grpc_config.state.orders";
    config.clock = &clock_;
    if (config.type == "embedded") config.metadata["path"] = dir_.File("state.db");
    if (config.type == "redis") {
      redis_ = std::make_unique<testing::Redis>(dir_);
      config.metadata["redisHost"] = "127.0.0.1:" + std::to_string(redis_->port());
    }
    auto store = CreateStateStore(config);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(*store);
  }

  StateItem MustGet(const std::string& key) {
    auto item = store_->GetItem(key);
    EXPECT_TRUE(item.ok()) << item.status().message();
    EXPECT_TRUE(item.ok() && item->has_value()) << "no item at " << key;
    return item.ok() && *item ? **item : StateItem{};
  }
  bool Absent(const std::string& key) {
    auto item = store_->GetItem(key);
    EXPECT_TRUE(item.ok()) << item.status().message();
    return item.ok() && !item->has_value();
  }

  ManualClock clock_;  // the memory and embedded stores' TTLs; Redis expires items on its own clock
  testing::TempDir dir_;
  std::unique_ptr<testing::Redis> redis_;
  std::unique_ptr<StateStoreComponent> store_;
};

TEST_P(StateStoreTest, ASaveGivesAnItemWhoseETagChangesWithEveryWrite) {
  EXPECT_TRUE(Absent("order-1"));
  ASSERT_TRUE(store_->Apply({Save("order-1", "pending")}).ok());
  const StateItem first = MustGet("order-1");
  EXPECT_EQ(first.value, "pending");
  EXPECT_FALSE(first.etag.empty());
  ASSERT_TRUE(store_->Apply({Save("order-1", "paid")}).ok());
  const StateItem second = MustGet("order-1");
  EXPECT_EQ(second.value, "paid");
  EXPECT_NE(second.etag, first.etag);
  // Values are bytes, not text.
  const std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(store_->Apply({Save("blob", binary)}).ok());
  EXPECT_EQ(MustGet("blob").value, binary);
}

TEST_P(StateStoreTest, AWriteNamingAnOldETagIsRefusedAndChangesNothing) {
  ASSERT_TRUE(store_->Apply({Save("order-1", "pending")}).ok());
  const std::string old_etag = MustGet("order-1").etag;
  ASSERT_TRUE(store_->Apply({Save("order-1", "paid", old_etag)}).ok());  // the current one: applied
  Status stale = store_->Apply({Save("order-1", "cancelled", old_etag)});
  EXPECT_EQ(stale.code(), StatusCode::kFailedPrecondition) << stale.message();
  EXPECT_NE(stale.message().find("order-1"), std::string::npos) << stale.message();
  EXPECT_EQ(MustGet("order-1").value, "paid");
  Status deleted = store_->Apply({Delete("order-1", old_etag)});
  EXPECT_EQ(deleted.code(), StatusCode::kFailedPrecondition) << deleted.message();
  EXPECT_EQ(MustGet("order-1").value, "paid");
  // An ETag for an item that does not exist never matches.
  EXPECT_EQ(store_->Apply({Save("order-2", "x", "1")}).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Absent("order-2"));
}

TEST_P(StateStoreTest, DeleteWithTheCurrentETagOrNoneRemovesTheItem) {
  ASSERT_TRUE(store_->Apply({Save("a", "1"), Save("b", "2")}).ok());
  ASSERT_TRUE(store_->Apply({Delete("a", MustGet("a").etag)}).ok());
  EXPECT_TRUE(Absent("a"));
  ASSERT_TRUE(store_->Apply({Delete("b")}).ok());
  EXPECT_TRUE(Absent("b"));
  EXPECT_TRUE(store_->Apply({Delete("never-there")}).ok());
}

TEST_P(StateStoreTest, FirstWriteWithoutAnETagOnlyCreates) {
  StateOperation create = Save("seat-12", "alice");
  create.concurrency = Concurrency::kFirstWrite;
  ASSERT_TRUE(store_->Apply({create}).ok());
  StateOperation second = Save("seat-12", "bob");
  second.concurrency = Concurrency::kFirstWrite;
  Status taken = store_->Apply({second});
  EXPECT_EQ(taken.code(), StatusCode::kFailedPrecondition) << taken.message();
  EXPECT_EQ(MustGet("seat-12").value, "alice");
  // With the ETag it read, the holder may update it.
  second.etag = MustGet("seat-12").etag;
  second.value = "alice, row 2";
  EXPECT_TRUE(store_->Apply({second}).ok());
  EXPECT_EQ(MustGet("seat-12").value, "alice, row 2");
}

TEST_P(StateStoreTest, AnItemWithATtlExpiresAndASaveWithoutOneKeepsItForever) {
  StateOperation brief = Save("session", "token");
  brief.ttl = std::chrono::seconds(1);
  StateOperation kept = brief;
  kept.key = "kept";
  ASSERT_TRUE(store_->Apply({brief, kept}).ok());
  EXPECT_EQ(MustGet("session").value, "token");
  ASSERT_TRUE(store_->Apply({Save("kept", "token")}).ok());  // no TTL: the expiry goes
  if (GetParam() != "redis") {
    clock_.Advance(std::chrono::milliseconds(999));
    EXPECT_FALSE(Absent("session")) << "expired before its TTL";
    clock_.Advance(std::chrono::milliseconds(1));
    EXPECT_TRUE(Absent("session")) << "outlived its 1 s TTL";
    clock_.Advance(std::chrono::hours(24));  // and the one without a TTL is still there a day on
  } else {
    // Redis expires the key on its own clock: look until it has.
    EXPECT_TRUE(testing::Eventually([&] { return Absent("session"); })) << "the 1 s TTL never expired it";
  }
  EXPECT_EQ(MustGet("kept").value, "token");
}

TEST_P(StateStoreTest, BulkGetAnswersInTheOrderAsked) {
  ASSERT_TRUE(store_->Apply({Save("k1", "v1"), Save("k3", "v3")}).ok());
  auto items = store_->BulkGet({"k3", "k2", "k1"});
  ASSERT_TRUE(items.ok()) << items.status().message();
  ASSERT_EQ(items->size(), 3u);
  ASSERT_TRUE((*items)[0].has_value());
  EXPECT_EQ((*items)[0]->value, "v3");
  EXPECT_FALSE((*items)[1].has_value());
  ASSERT_TRUE((*items)[2].has_value());
  EXPECT_EQ((*items)[2]->value, "v1");
  EXPECT_EQ((*items)[2]->etag, MustGet("k1").etag);
}

// A transaction whose middle operation fails its condition applies none of them.
TEST_P(StateStoreTest, ATransactionAppliesAllOperationsOrNone) {
  ASSERT_TRUE(store_->Apply({Save("stock", "10"), Save("order", "new"), Save("log", "x")}).ok());
  const std::string stock_etag = MustGet("stock").etag;
  const std::string log_etag = MustGet("log").etag;
  Status refused = store_->Apply({Save("stock", "9", stock_etag), Save("order", "paid", "no-such-etag"),
                                  Delete("log"), Save("receipt", "r1")});
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.message();
  EXPECT_NE(refused.message().find("'order'"), std::string::npos) << refused.message();
  EXPECT_EQ(MustGet("stock").value, "10");
  EXPECT_EQ(MustGet("stock").etag, stock_etag);
  EXPECT_EQ(MustGet("order").value, "new");
  EXPECT_EQ(MustGet("log").etag, log_etag);
  EXPECT_TRUE(Absent("receipt"));

  ASSERT_TRUE(store_
                  ->Apply({Save("stock", "9", stock_etag), Save("order", "paid", MustGet("order").etag),
                           Delete("log"), Save("receipt", "r1")})
                  .ok());
  EXPECT_EQ(MustGet("stock").value, "9");
  EXPECT_EQ(MustGet("order").value, "paid");
  EXPECT_TRUE(Absent("log"));
  EXPECT_EQ(MustGet("receipt").value, "r1");
}

// Read, add one, write back with the ETag read, again on a conflict: four threads at once
// lose no increment, which only holds if a stale ETag is always refused.
TEST_P(StateStoreTest, ETagGuardedIncrementsFromFourThreadsLoseNone) {
  ASSERT_TRUE(store_->Apply({Save("counter", "0")}).ok());
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  std::atomic<int> errors{0};
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kEach;) {
        auto item = store_->GetItem("counter");
        if (!item.ok() || !*item) {
          ++errors;
          return;
        }
        const int next = std::stoi((*item)->value) + 1;
        Status wrote = store_->Apply({Save("counter", std::to_string(next), (*item)->etag)});
        if (wrote.ok()) {
          ++done;
        } else if (wrote.code() == StatusCode::kFailedPrecondition) {
          ++conflicts;
        } else {
          ++errors;
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(MustGet("counter").value, std::to_string(kThreads * kEach));
}

INSTANTIATE_TEST_SUITE_P(Stores, StateStoreTest, ::testing::Values("in-memory", "embedded", "redis"),
                         [](const auto& info) {
                           return info.param == "in-memory" ? std::string("memory") : info.param;
                         });

// What people seed with `SET book1 100` reads as an item at ETag "0", and the first write
// through the store, conditioned on that ETag, turns it into the hash Layotto's store uses.
TEST(RedisStateStoreTest, APlainStringIsAnItemAtETagZeroAndBecomesAHashWhenWritten) {
  testing::TempDir dir;
  testing::Redis redis(dir);
  ASSERT_NE(redis.Cli("SET book1 100").find("OK"), std::string::npos);
  StoreConfig config{
      "books", "redis", {{"redisHost", "127.0.0.1:" + std::to_string(redis.port())}}, "state.books"};
  auto store = CreateStateStore(config);
  ASSERT_TRUE(store.ok());
  auto item = (*store)->GetItem("book1");
  ASSERT_TRUE(item.ok() && *item);
  EXPECT_EQ((*item)->value, "100");
  EXPECT_EQ((*item)->etag, "0");
  ASSERT_TRUE((*store)->Apply({Save("book1", "99", "0")}).ok());
  EXPECT_EQ(redis.Cli("HGET book1 data"), "99\n");
  EXPECT_EQ(redis.Cli("HGET book1 version"), "1\n");
  // A key holding another Redis type is not a state item: a write to it is refused, untouched.
  redis.Cli("RPUSH queue a");
  Status refused = (*store)->Apply({Save("queue", "x")});
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.message();
  EXPECT_EQ(redis.Cli("LLEN queue"), "1\n");
  // Redis forgets scripts when flushed; the store loads its write script again.
  redis.Cli("SCRIPT FLUSH");
  EXPECT_TRUE((*store)->Apply({Save("book2", "5")}).ok());
}

// Numbers in a Redis store's metadata are read whole: std::stoi took "12abc" as 12 and " 7" as 7.
TEST(RedisStateStoreTest, MetadataNumbersWithAnythingButDigitsAreRefusedNamingTheKey) {
  struct Case {
    std::string key, value, message;
  };
  const std::vector<Case> cases = {
      {"redisDB", "12abc",
       "metadata.redisDB: \"12abc\" is not a whole number; give a whole number of at least 0"},
      {"redisDB", " 7", "metadata.redisDB: \" 7\" is not a whole number"},
      {"redisDB", "-1", "metadata.redisDB: \"-1\" is too small"},
      {"timeoutMs", "100ms", "metadata.timeoutMs: \"100ms\" is not a whole number"},
      {"timeoutMs", "0", "metadata.timeoutMs: \"0\" is too small; give a whole number of at least 1"},
      {"timeoutMs", "99999999999", "metadata.timeoutMs: \"99999999999\" is out of range"},
  };
  for (const Case& c : cases) {
    StoreConfig config{"books", "redis", {{"redisHost", "127.0.0.1:6379"}, {c.key, c.value}}, "state.books"};
    auto store = CreateStateStore(config);
    ASSERT_FALSE(store.ok()) << c.key << "=" << c.value << " was taken";
    EXPECT_EQ(store.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(store.status().message().find("config state.books." + c.message), std::string::npos)
        << store.status().message();
  }
  StoreConfig good{"books", "redis", {{"redisDB", "3"}, {"timeoutMs", "250"}}, "state.books"};
  EXPECT_TRUE(CreateStateStore(good).ok());
}

TEST(RedisStateStoreTest, AStoreThatIsDownIsUnavailableNamingItsAddress) {
  const uint16_t port = testing::FreePort();
  StoreConfig config{"books", "redis", {{"redisHost", "127.0.0.1:" + std::to_string(port)}}, "state.books"};
  auto store = CreateStateStore(config);
  ASSERT_TRUE(store.ok());
  auto item = (*store)->GetItem("k");
  ASSERT_FALSE(item.ok());
  EXPECT_EQ(item.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(item.status().message().find(std::to_string(port)), std::string::npos) << item.status().message();
  Status wrote = (*store)->Apply({Save("k", "v")});
  EXPECT_EQ(wrote.code(), StatusCode::kUnavailable) << wrote.message();
}

// A state file written before items had versions still opens, and its items read at ETag 1.
TEST(EmbeddedStateStoreTest, AFileFromBeforeETagsOpensAndItsItemsCanBeUpdated) {
  testing::TempDir dir;
  const std::string path = dir.File("old.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE state (store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
                         " PRIMARY KEY (store, key)); INSERT INTO state VALUES ('books', 'book1', '100');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  StoreConfig config{"books", "embedded", {{"path", path}}, "state.books"};
  auto store = CreateStateStore(config);
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto item = (*store)->GetItem("book1");
  ASSERT_TRUE(item.ok() && *item) << (item.ok() ? "absent" : item.status().message());
  EXPECT_EQ((*item)->value, "100");
  EXPECT_EQ((*item)->etag, "1");
  ASSERT_TRUE((*store)->Apply({Save("book1", "99", "1")}).ok());
  auto read = (*store)->Get("book1");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "99");
}

}  // namespace
}  // namespace wasmlet::components
