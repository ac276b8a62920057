// The embedded (SQLite) state store, two handles on one file as `wasmlet start` and
// `wasmlet state set` have.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "components/state/state_store.h"
#include "e2e/harness.h"

namespace wasmlet::components {
namespace {

std::unique_ptr<StateStoreComponent> Open(const std::string& path) {
  StoreConfig config;
  config.name = "books";
  config.type = "embedded";
  config.metadata["path"] = path;
  config.json_path = "state.books";
  auto store = CreateStateStore(config);
  EXPECT_TRUE(store.ok()) << store.status().message();
  return store.ok() ? std::move(*store) : nullptr;
}

TEST(EmbeddedStoreTest, TwoHandlesOnOneFileSeeEachOthersWritesAndTheLogStaysBounded) {
  testing::TempDir dir;
  const std::string path = dir.File("state.db");
  auto server = Open(path);
  auto writer = Open(path);
  ASSERT_TRUE(server && writer);
  ASSERT_TRUE(writer->Set("book1", "100").ok());
  auto read = server->Get("book1");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "100");
  // 3000 writes from the other handle while the server's handle has read: the write-ahead log
  // is checkpointed and reused (it would be about 12 MiB otherwise), and the server sees them.
  const std::string value(1024, 'v');
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(writer->Set("book" + std::to_string(i % 50), value).ok());
  const auto wal = std::filesystem::file_size(path + "-wal");
  EXPECT_LT(wal, uint64_t{6} << 20) << "the write-ahead log grew past its checkpoint size";
  auto again = server->Get("book1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, value);
  auto missing = server->Get("no such book");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, "");
}

// The serving loops each read through a connection of their own; more threads than the store
// opens connections for share one. Every thread sees every other thread's writes.
TEST(EmbeddedStoreTest, ManyThreadsReadAndWriteThroughOneStoreAndSeeEachOthersWrites) {
  testing::TempDir dir;
  auto store = Open(dir.File("state.db"));
  ASSERT_TRUE(store);
  constexpr int kThreads = 80;  // past the store's 64 connections of their own
  std::atomic<int> failures{0};
  std::atomic<int> written{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = "book" + std::to_string(t);
      for (int i = 0; i < 20; ++i) {
        if (!store->Set(key, std::to_string(i)).ok()) ++failures;
        auto read = store->Get(key);
        if (!read.ok() || *read != std::to_string(i)) ++failures;
      }
      ++written;
      // Each thread also reads what the others wrote.
      for (int other = 0; other < kThreads; other += 7) {
        auto read = store->Get("book" + std::to_string(other));
        if (!read.ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(written.load(), kThreads);
  for (int t = 0; t < kThreads; ++t) {
    auto read = store->Get("book" + std::to_string(t));
    ASSERT_TRUE(read.ok()) << read.status().message();
    EXPECT_EQ(*read, "19") << t;
  }
}

}  // namespace
}  // namespace wasmlet::components
