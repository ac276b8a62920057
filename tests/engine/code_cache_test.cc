// The code cache: entries on disk (CodeCache alone), and the engine loading modules from them.
#include "engine/code_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/engine.h"
#include "test_support.h"

namespace wasmlet::engine {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::GuestBytes;

class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() / ("wasmlet_code_cache_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<CodeCache> OpenCache(const std::string& dir, uint64_t max_bytes = 1 << 20,
                                     const std::string& identity = "engine 1") {
  auto cache = CodeCache::Open(dir, max_bytes, identity);
  EXPECT_TRUE(cache.ok()) << cache.status().ToString();
  return cache.ok() ? std::move(*cache) : nullptr;
}

TEST(CodeCacheTest, StoresAndLoadsAnEntryUnderTheModulesKey) {
  TempDir dir("store");
  auto cache = OpenCache(dir.str());
  const auto key = cache->KeyOf(Bytes("module one"));
  EXPECT_NE(key, cache->KeyOf(Bytes("module two")));
  EXPECT_FALSE(cache->Load(key).has_value());
  ASSERT_TRUE(cache->Store(key, Bytes("machine code")).ok());
  auto loaded = cache->Load(key);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(*loaded, Bytes("machine code"));
  const CodeCacheStats stats = cache->stats();
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.written, 1u);
  // Only the entry is left: the temporary file was renamed onto it.
  EXPECT_EQ(Entries(dir.str()).size(), 1u);
  EXPECT_EQ(fs::status(dir.str()).permissions() & fs::perms::all, fs::perms::owner_all);
}

TEST(CodeCacheTest, AnotherEngineBuildHasOtherKeysAndRefusesTheFirstOnesEntries) {
  TempDir dir("identity");
  auto old_build = OpenCache(dir.str(), 1 << 20, "v8 10.2 --flags");
  auto new_build = OpenCache(dir.str(), 1 << 20, "v8 10.3 --flags");
  const auto old_key = old_build->KeyOf(Bytes("module"));
  const auto new_key = new_build->KeyOf(Bytes("module"));
  EXPECT_NE(old_key, new_key);
  ASSERT_TRUE(old_build->Store(old_key, Bytes("old code")).ok());
  EXPECT_FALSE(new_build->Load(new_key).has_value());  // a miss: compiled again
  // An entry that reached the new key's name anyway (copied by hand, say) is foreign.
  fs::copy_file(old_build->PathOf(old_key), new_build->PathOf(new_key));
  EXPECT_FALSE(new_build->Load(new_key).has_value());
  EXPECT_EQ(new_build->stats().invalid, 1u);
  EXPECT_FALSE(fs::exists(new_build->PathOf(new_key)));  // removed, to be written again
}

TEST(CodeCacheTest, CorruptTruncatedOrMisplacedEntriesAreIgnoredAndRemoved) {
  TempDir dir("damage");
  auto cache = OpenCache(dir.str());
  const auto key = cache->KeyOf(Bytes("module"));
  const std::string path = cache->PathOf(key);
  const std::vector<uint8_t> payload(4096, 0x90);

  ASSERT_TRUE(cache->Store(key, payload).ok());
  auto bytes = ReadFile(path);
  bytes[bytes.size() - 100] ^= 0x01;  // one bit of the payload
  WriteFile(path, bytes);
  EXPECT_FALSE(cache->Load(key).has_value());
  EXPECT_FALSE(fs::exists(path));

  ASSERT_TRUE(cache->Store(key, payload).ok());
  bytes = ReadFile(path);
  bytes.resize(bytes.size() / 2);
  WriteFile(path, bytes);
  EXPECT_FALSE(cache->Load(key).has_value());

  WriteFile(path, Bytes("not an entry at all"));
  EXPECT_FALSE(cache->Load(key).has_value());

  // The entry of another module, under this module's name.
  const auto other = cache->KeyOf(Bytes("other module"));
  ASSERT_TRUE(cache->Store(other, payload).ok());
  fs::rename(cache->PathOf(other), path);
  EXPECT_FALSE(cache->Load(key).has_value());

  EXPECT_EQ(cache->stats().invalid, 4u);
  EXPECT_EQ(cache->stats().hits, 0u);
  ASSERT_TRUE(cache->Store(key, payload).ok());  // written again, and good again
  EXPECT_TRUE(cache->Load(key).has_value());
}

TEST(CodeCacheTest, TheLeastRecentlyUsedEntriesGoFirstPastTheBound) {
  TempDir dir("bound");
  // Room for three entries of this size (header included), not four.
  const std::vector<uint8_t> payload(1000, 7);
  auto cache = OpenCache(dir.str(), 3 * 1200);
  std::vector<CodeCache::Key> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(cache->KeyOf(Bytes("module " + std::to_string(i))));
  // File times are the order of use; set them apart explicitly rather than waiting.
  const auto base = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cache->Store(keys[i], payload).ok());
    fs::last_write_time(cache->PathOf(keys[i]), base + std::chrono::minutes(i));
  }
  ASSERT_TRUE(cache->Load(keys[0]).has_value());  // 0 is now the most recently used
  ASSERT_TRUE(cache->Store(keys[3], payload).ok());
  EXPECT_TRUE(fs::exists(cache->PathOf(keys[0])));
  EXPECT_FALSE(fs::exists(cache->PathOf(keys[1])));  // the least recently used
  EXPECT_TRUE(fs::exists(cache->PathOf(keys[2])));
  EXPECT_TRUE(fs::exists(cache->PathOf(keys[3])));
  EXPECT_EQ(cache->stats().evicted, 1u);
  EXPECT_LE(cache->stats().bytes, 3u * 1200);

  // An entry larger than the whole bound is not kept (and evicts nothing).
  const auto big = cache->KeyOf(Bytes("big"));
  ASSERT_TRUE(cache->Store(big, std::vector<uint8_t>(4000, 1)).ok());
  EXPECT_FALSE(fs::exists(cache->PathOf(big)));
  EXPECT_EQ(cache->stats().evicted, 1u);
}

TEST(CodeCacheTest, AnUnusableDirectoryIsAnErrorThatSaysWhatToDo) {
  TempDir dir("unusable");
  WriteFile(dir.str(), Bytes("a file, not a directory"));
  auto cache = CodeCache::Open(dir.str() + "/cache", 1 << 20, "engine");
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.status().message().find("code_cache_dir"), std::string::npos) << cache.status().message();
}

// --- the engine with a cache ---

std::unique_ptr<Engine> CachingEngine(const std::string& dir) {
  auto engine = CreateEngine("v8", SystemClock(), EngineOptions{.code_cache_dir = dir});
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return std::move(*engine);
}

// Compiles the guest in a fresh engine, waits for its entry and returns the entry's path.
std::string WriteEntryFor(const std::string& dir, const std::vector<uint8_t>& wasm) {
  auto engine = CachingEngine(dir);
  auto module = engine->Compile(wasm);
  EXPECT_TRUE(module.ok()) << module.status().ToString();
  EXPECT_FALSE((*module)->from_cache());
  EXPECT_TRUE(engine->FlushCodeCache(std::chrono::seconds(60)));
  EXPECT_EQ(engine->code_cache_stats().written, 1u);
  auto names = Entries(dir);
  EXPECT_EQ(names.size(), 1u);
  return names.empty() ? "" : dir + "/" + names[0];
}

// Instantiates `module` and calls its add export: the loaded code must run, not just load.
void ExpectRuns(Engine& engine, const std::shared_ptr<const Module>& module) {
  auto store = engine.NewStore();
  ASSERT_TRUE(store.ok());
  auto host = std::make_shared<HostFunctions>();
  const FunctionType i32i32_i32{{ValType::kI32, ValType::kI32}, {ValType::kI32}};
  host->Add("env", "host_add", i32i32_i32, [](Instance&, std::span<const Value> args, std::span<Value> results) {
    results[0].i32 = args[0].i32 + args[1].i32;
    return Status::Ok();
  });
  host->Add("env", "host_noop", {{}, {}}, [](Instance&, std::span<const Value>, std::span<Value>) {
    return Status::Ok();
  });
  host->Add("env", "host_fail", {{ValType::kI32}, {ValType::kI32}},
            [](Instance&, std::span<const Value>, std::span<Value>) { return Status::Ok(); });
  host->Add("env", "host_wide", {{ValType::kI64, ValType::kF64}, {ValType::kI64}},
            [](Instance&, std::span<const Value>, std::span<Value>) { return Status::Ok(); });
  auto instance = (*store)->Instantiate(module, host);
  ASSERT_TRUE(instance.ok()) << instance.status().ToString();
  std::vector<Value> args = {Value::I32(40), Value::I32(2)};
  auto result = (*instance)->Call("add", args);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ((*result)[0].i32, 42);
}

// A fresh engine compiles `wasm` although `dir` has an entry for it, which it counts as invalid;
// the compiled module runs. Both are returned: the entry is rewritten only while the module lives.
struct Compiled {
  std::unique_ptr<Engine> engine;
  std::shared_ptr<const Module> module;
};
Compiled CompileIgnoringTheEntry(const std::string& dir, const std::vector<uint8_t>& wasm) {
  Compiled compiled{CachingEngine(dir), nullptr};
  auto module = compiled.engine->Compile(wasm);
  EXPECT_TRUE(module.ok()) << module.status().ToString();
  if (!module.ok()) return compiled;
  compiled.module = *module;
  EXPECT_FALSE(compiled.module->from_cache());
  EXPECT_EQ(compiled.engine->code_cache_stats().invalid, 1u);
  ExpectRuns(*compiled.engine, compiled.module);
  return compiled;
}

TEST(EngineCodeCacheTest, AModuleCompiledOnceIsLoadedWithoutCompilingByTheNextEngine) {
  TempDir dir("hit");
  const auto wasm = GuestBytes("engine_basics");
  WriteEntryFor(dir.str(), wasm);

  // How the test knows nothing was compiled: from_cache() is true only when V8 built the
  // module inside WasmStreaming::Finish from the stored code. Compiling from the bytes (its
  // fallback when stored code does not deserialise) settles the compile later, from tasks, and
  // the engine counts that as a refused entry instead.
  auto engine = CachingEngine(dir.str());
  auto module = engine->Compile(wasm);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  EXPECT_TRUE((*module)->from_cache());
  EXPECT_EQ(engine->code_cache_stats().hits, 1u);
  EXPECT_EQ(engine->code_cache_stats().misses, 0u);
  ExpectRuns(*engine, *module);
  // Nothing to write: the entry is there.
  EXPECT_TRUE(engine->FlushCodeCache(milliseconds(0)));
  EXPECT_EQ(engine->code_cache_stats().written, 0u);

  // Another memory cap is another module (the cap is written into the bytes V8 compiles).
  auto capped = engine->Compile(wasm, CompileOptions{.max_memory_bytes = 16 << 20});
  ASSERT_TRUE(capped.ok());
  EXPECT_FALSE((*capped)->from_cache());
}

TEST(EngineCodeCacheTest, ACorruptEntryIsCompiledAgainAndRewritten) {
  TempDir dir("corrupt");
  const auto wasm = GuestBytes("engine_basics");
  const std::string path = WriteEntryFor(dir.str(), wasm);
  auto bytes = ReadFile(path);
  bytes[bytes.size() / 2] ^= 0xff;  // in V8's machine code: run as is, it could do anything
  WriteFile(path, bytes);

  auto [engine, module] = CompileIgnoringTheEntry(dir.str(), wasm);
  ASSERT_TRUE(engine->FlushCodeCache(std::chrono::seconds(60)));
  EXPECT_EQ(engine->code_cache_stats().written, 1u);
  auto again = CachingEngine(dir.str())->Compile(wasm);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->from_cache());
}

TEST(EngineCodeCacheTest, CodeV8DoesNotRecogniseIsRefusedAndCompiledAgain) {
  TempDir dir("foreign");
  const auto wasm = GuestBytes("engine_basics");
  const std::string path = WriteEntryFor(dir.str(), wasm);
  // A well-formed entry (right identity, key and checksum) whose payload is not V8's: what an
  // entry made by a V8 with another version hash or for another CPU looks like to this one.
  auto bytes = ReadFile(path);
  const uint32_t identity_size = bytes[16] | bytes[17] << 8 | bytes[18] << 16 | bytes[19] << 24;
  const std::string identity(bytes.begin() + 20, bytes.begin() + 20 + identity_size);
  CodeCache::Key key;
  std::copy(bytes.begin() + 20 + identity_size, bytes.begin() + 20 + identity_size + 32, key.begin());
  fs::remove(path);
  ASSERT_TRUE(OpenCache(dir.str(), 1 << 20, identity)->Store(key, std::vector<uint8_t>(512, 0xAB)).ok());
  ASSERT_TRUE(fs::exists(path));

  auto compiled = CompileIgnoringTheEntry(dir.str(), wasm);
  EXPECT_EQ(compiled.engine->code_cache_stats().hits, 0u);
}

TEST(EngineCodeCacheTest, WithoutADirectoryNothingIsWrittenAndEveryModuleCompiles) {
  auto engine = CreateEngine("v8");
  ASSERT_TRUE(engine.ok());
  auto module = (*engine)->Compile(GuestBytes("engine_basics"));
  ASSERT_TRUE(module.ok());
  EXPECT_FALSE((*module)->from_cache());
  EXPECT_TRUE((*engine)->FlushCodeCache(milliseconds(0)));
  EXPECT_EQ((*engine)->code_cache_stats().written, 0u);
}

}  // namespace
}  // namespace wasmlet::engine
