// The components only applications use: the "local" file store (names kept inside its root,
// links not followed, a put seen whole or not at all, listing in pages) and the "http" output
// binding (against a loopback HTTP server).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "common/text.h"
#include "components/binding/binding.h"
#include "components/file/file_store.h"
#include "e2e/harness.h"
#include "e2e/test_upstream.h"

namespace wasmlet::components {
namespace {

namespace fs = std::filesystem;

StoreConfig Config(const std::string& type, std::map<std::string, std::string> metadata) {
  StoreConfig config;
  config.name = "docs";
  config.type = type;
  config.json_path = "grpc_config.file.docs";
  config.metadata = std::move(metadata);
  return config;
}

// The whole of `name`, read in pieces of `chunk` bytes.
Result<std::string> ReadAll(FileStoreComponent& store, const std::string& name, size_t chunk, int* pieces = nullptr) {
  std::string all;
  int count = 0;
  Status read = store.Get(name, chunk, [&](std::string_view piece) {
    EXPECT_LE(piece.size(), chunk);
    all.append(piece);
    ++count;
    return true;
  });
  if (!read.ok()) return read;
  if (pieces) *pieces = count;
  return all;
}

Status PutAll(FileStoreComponent& store, const std::string& name, const std::string& data) {
  auto writer = store.Put(name);
  if (!writer.ok()) return writer.status();
  WASMLET_RETURN_IF_ERROR((*writer)->Append(data));
  return (*writer)->Commit();
}

// Every entry under `dir`, recursively, as paths relative to it.
std::vector<std::string> Tree(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    found.push_back(fs::relative(entry.path(), dir).string());
  std::sort(found.begin(), found.end());
  return found;
}

class LocalFileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path() / "root";
    outside_ = dir_.path() / "outside";
    fs::create_directories(outside_);
    std::ofstream(outside_ / "secret.txt") << "not for the app";
    auto made = CreateFileStore(Config("local", {{"root", root_.string()}}));
    ASSERT_TRUE(made.ok()) << made.status().message();
    store_ = std::move(*made);
  }

  testing::TempDir dir_;
  fs::path root_;
  fs::path outside_;
  std::unique_ptr<FileStoreComponent> store_;
};

TEST_F(LocalFileStoreTest, AFilePutInPiecesIsSeenOnlyOnceCommittedAndReadsBackInChunks) {
  auto writer = store_->Put("reports/2026/q4.csv");
  ASSERT_TRUE(writer.ok()) << writer.status().message();
  ASSERT_TRUE((*writer)->Append("month,total\n").ok());
  ASSERT_TRUE((*writer)->Append("oct,10\nnov,12\n").ok());
  EXPECT_EQ(store_->Stat("reports/2026/q4.csv").status().code(), StatusCode::kNotFound)
      << "a file being written is not seen under its name";
  ASSERT_TRUE((*writer)->Commit().ok());
  int pieces = 0;
  auto read = ReadAll(*store_, "reports/2026/q4.csv", 5, &pieces);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(*read, "month,total\noct,10\nnov,12\n");
  EXPECT_EQ(pieces, 6) << "26 bytes in pieces of 5";
  auto info = store_->Stat("reports/2026/q4.csv");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 26u);
  EXPECT_FALSE(info->directory);
  EXPECT_EQ(Tree(root_), (std::vector<std::string>{"reports", "reports/2026", "reports/2026/q4.csv"}))
      << "no temporary file is left beside it";

  // A second put replaces the file whole.
  ASSERT_TRUE(PutAll(*store_, "reports/2026/q4.csv", "replaced").ok());
  EXPECT_EQ(*ReadAll(*store_, "reports/2026/q4.csv", 64), "replaced");
}

TEST_F(LocalFileStoreTest, AWriterDroppedBeforeCommitLeavesNothingAndTheOldFileStays) {
  ASSERT_TRUE(PutAll(*store_, "a.txt", "old").ok());
  {
    auto writer = store_->Put("a.txt");
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append("new and cut off").ok());
  }
  EXPECT_EQ(*ReadAll(*store_, "a.txt", 64), "old");
  EXPECT_EQ(Tree(root_), (std::vector<std::string>{"a.txt"}));
}

TEST_F(LocalFileStoreTest, HostileNamesAreRefusedNamingTheProblemAndNothingIsWritten) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "empty"},
      {"/etc/passwd", "absolute"},
      {"../outside/secret.txt", "\"..\" part"},
      {"a/../../outside/x", "\"..\" part"},
      {"./a", "\".\" part"},
      {"a//b", "empty part"},
      {std::string("a\0b", 3), "NUL"},
      {std::string(1025, 'x'), "over the limit of 1024"},
      {".wasmlet-upload-1", "keeps for its uploads"},
  };
  for (const auto& [name, why] : cases) {
    SCOPED_TRACE(Printable(name, 40));
    auto put = store_->Put(name);
    ASSERT_FALSE(put.ok());
    EXPECT_EQ(put.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(put.status().message().find(why), std::string::npos) << put.status().message();
    EXPECT_EQ(store_->Get(name, 64, [](std::string_view) { return true; }).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Delete(name).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Stat(name).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(Tree(root_).empty());
  EXPECT_EQ(Tree(outside_), (std::vector<std::string>{"secret.txt"}));
}

TEST_F(LocalFileStoreTest, ALinkInsideTheRootIsNotFollowedOutOfIt) {
  fs::create_directory_symlink(outside_, root_ / "out");
  fs::create_symlink(outside_ / "secret.txt", root_ / "secret-link");
  auto through_dir = ReadAll(*store_, "out/secret.txt", 64);
  ASSERT_FALSE(through_dir.ok());
  EXPECT_EQ(through_dir.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(through_dir.status().message().find("'out', a symbolic link"), std::string::npos)
      << through_dir.status().message();
  auto through_file = ReadAll(*store_, "secret-link", 64);
  ASSERT_FALSE(through_file.ok());
  EXPECT_NE(through_file.status().message().find("symbolic link"), std::string::npos)
      << through_file.status().message();
  EXPECT_EQ(store_->Stat("secret-link").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Put("out/planted.txt").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Tree(outside_), (std::vector<std::string>{"secret.txt"})) << "nothing was written outside the root";
  auto listing = store_->List("", 10, "");
  ASSERT_TRUE(listing.ok());
  EXPECT_TRUE(listing->files.empty()) << "links are not served, so not listed";
}

TEST_F(LocalFileStoreTest, ListingGoesInNameOrderPageByPageAndMarksDirectories) {
  for (const char* name : {"e.txt", "b.txt", "d.txt", "a.txt"}) ASSERT_TRUE(PutAll(*store_, name, name).ok());
  ASSERT_TRUE(PutAll(*store_, "c/inner.txt", "x").ok());
  std::vector<std::string> seen;
  std::string marker;
  int pages = 0;
  for (;;) {
    auto page = store_->List("", 2, marker);
    ASSERT_TRUE(page.ok()) << page.status().message();
    ++pages;
    for (const FileInfo& file : page->files) seen.push_back(file.name + (file.directory ? "/" : ""));
    if (!page->truncated) {
      EXPECT_TRUE(page->marker.empty());
      break;
    }
    ASSERT_FALSE(page->marker.empty());
    marker = page->marker;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a.txt", "b.txt", "c/", "d.txt", "e.txt"}));
  EXPECT_EQ(pages, 3);
  auto inner = store_->List("c", 10, "");
  ASSERT_TRUE(inner.ok());
  ASSERT_EQ(inner->files.size(), 1u);
  EXPECT_EQ(inner->files[0].name, "inner.txt");
  EXPECT_EQ(inner->files[0].size, 1u);
  EXPECT_EQ(store_->List("missing", 10, "").status().code(), StatusCode::kNotFound);
}

TEST_F(LocalFileStoreTest, DeleteRemovesAFileAndThenItIsNotFound) {
  ASSERT_TRUE(PutAll(*store_, "dir/a.txt", "a").ok());
  ASSERT_TRUE(store_->Delete("dir/a.txt").ok());
  EXPECT_EQ(ReadAll(*store_, "dir/a.txt", 64).status().code(), StatusCode::kNotFound);
  Status again = store_->Delete("dir/a.txt");
  EXPECT_EQ(again.code(), StatusCode::kNotFound);
  EXPECT_NE(again.message().find("no file 'dir/a.txt' in file store 'docs'"), std::string::npos) << again.message();
  EXPECT_EQ(store_->Delete("dir").code(), StatusCode::kInvalidArgument) << "a directory is not deleted as a file";
}

TEST(LocalFileStoreLimitsTest, AFileOverMaxFileBytesIsRefusedAndNotKept) {
  testing::TempDir dir;
  auto store = CreateFileStore(Config("local", {{"root", dir.File("root")}, {"maxFileBytes", "10"}}));
  ASSERT_TRUE(store.ok());
  auto writer = (*store)->Put("big.bin");
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("123456").ok());
  Status over = (*writer)->Append("789012");
  EXPECT_EQ(over.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.message().find("maxFileBytes"), std::string::npos) << over.message();
  writer->reset();
  EXPECT_TRUE(Tree(dir.File("root")).empty());

  auto bad = CreateFileStore(Config("local", {{"root", dir.File("r2")}, {"maxFileBytes", "lots"}}));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto oss = CreateFileStore(Config("aliyun.oss", {}));
  EXPECT_EQ(oss.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(oss.status().message().find("\"aliyun.oss\""), std::string::npos) << oss.status().message();
}

// ---- the http binding

StoreConfig Binding(const std::string& url, std::map<std::string, std::string> more = {}) {
  StoreConfig config;
  config.name = "web";
  config.type = "http";
  config.json_path = "grpc_config.bindings.web";
  config.metadata = std::move(more);
  config.metadata["url"] = url;
  return config;
}

TEST(HttpBindingTest, AnInvokeIsOneRequestToTheUrlWithThePathAndTheMetadataAsHeaders) {
  testing::TestUpstream upstream("echo");
  auto binding = CreateBinding(Binding("http://" + upstream.address() + "/base"));
  ASSERT_TRUE(binding.ok()) << binding.status().message();
  auto answer = (*binding)->Invoke({.operation = "create",
                                    .data = R"({"order": 7})",
                                    .metadata = {{"path", "orders/7"}, {"X-Trace", "abc"}}});
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_NE(answer->data.find("POST /base/orders/7 HTTP/1.1"), std::string::npos) << answer->data;
  EXPECT_NE(answer->data.find("X-Trace: abc"), std::string::npos) << answer->data;
  EXPECT_NE(answer->data.find(R"({"order": 7})"), std::string::npos) << answer->data;
  EXPECT_EQ(answer->metadata["statusCode"], "200");
  EXPECT_EQ(upstream.requests(), 1);

  auto got = (*binding)->Invoke({.operation = "get", .data = "", .metadata = {{"path", "/q?x=1"}}});
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_NE(got->data.find("GET /base/q?x=1 HTTP/1.1"), std::string::npos) << got->data;
}

TEST(HttpBindingTest, APathCannotNameAnotherHost) {
  testing::TestUpstream upstream("echo");
  auto binding = CreateBinding(Binding("http://" + upstream.address()));
  ASSERT_TRUE(binding.ok());
  auto answer = (*binding)->Invoke({.operation = "get", .data = "", .metadata = {{"path", "@example.invalid/x"}}});
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_NE(answer->data.find("GET /@example.invalid/x HTTP/1.1"), std::string::npos) << answer->data;
}

TEST(HttpBindingTest, AnAnswerOutside2xxIsAnErrorUnlessAskedForAndBadRequestsAreNotSent) {
  testing::TestUpstream upstream("echo");
  auto strict = CreateBinding(Binding("http://" + upstream.address()));
  ASSERT_TRUE(strict.ok());
  auto denied = (*strict)->Invoke({.operation = "get", .data = "", .metadata = {{"path", "deny"}}});
  ASSERT_FALSE(denied.ok());
  EXPECT_NE(denied.status().message().find("answered 403: denied"), std::string::npos) << denied.status().message();
  auto lenient = CreateBinding(Binding("http://" + upstream.address(), {{"errorIfNot2XX", "false"}}));
  ASSERT_TRUE(lenient.ok());
  auto kept = (*lenient)->Invoke({.operation = "get", .data = "", .metadata = {{"path", "deny"}}});
  ASSERT_TRUE(kept.ok()) << kept.status().message();
  EXPECT_EQ(kept->metadata["statusCode"], "403");
  EXPECT_EQ(kept->data, "denied\n");
  const int sent = upstream.requests();

  auto unknown = (*strict)->Invoke({.operation = "explode", .data = "", .metadata = {}});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("it takes get, head, post"), std::string::npos)
      << unknown.status().message();
  auto injected = (*strict)->Invoke({.operation = "get", .data = "", .metadata = {{"X-A", "1\r\nX-B: 2"}}});
  EXPECT_EQ(injected.status().code(), StatusCode::kInvalidArgument);
  auto bad_name = (*strict)->Invoke({.operation = "get", .data = "", .metadata = {{"X A", "1"}}});
  EXPECT_EQ(bad_name.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(upstream.requests(), sent) << "a refused invoke sends nothing";
}

TEST(HttpBindingTest, NoAnswerWithinTheTimeoutIsDeadlineExceededNamingIt) {
  testing::TestUpstream upstream("echo");
  auto binding = CreateBinding(Binding("http://" + upstream.address(), {{"timeoutMs", "200"}}));
  ASSERT_TRUE(binding.ok());
  auto answer = (*binding)->Invoke({.operation = "get", .data = "", .metadata = {{"path", "slow"}}});
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(answer.status().message().find("within 200 ms"), std::string::npos) << answer.status().message();
}

TEST(HttpBindingTest, AConfigWithoutAUrlOrOfAnotherTypeIsRefusedNamingIt) {
  StoreConfig none = Binding("");
  auto missing = CreateBinding(none);
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("grpc_config.bindings.web.metadata.url: missing"), std::string::npos)
      << missing.status().message();
  auto ftp = CreateBinding(Binding("ftp://example.invalid/"));
  EXPECT_EQ(ftp.status().code(), StatusCode::kInvalidArgument);
  StoreConfig kafka = Binding("http://127.0.0.1:1");
  kafka.type = "kafka";
  auto other = CreateBinding(kafka);
  EXPECT_EQ(other.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(other.status().message().find("\"kafka\""), std::string::npos) << other.status().message();
}

}  // namespace
}  // namespace wasmlet::components
