// The embedded (SQLite) state store, two handles on one file as `wasmlet start` and
// `wasmlet state set` have.
#include <gtest/gtest.h>

#include <filesystem>

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

}  // namespace
}  // namespace wasmlet::components
