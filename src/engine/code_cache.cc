#include "engine/code_cache.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/text.h"

namespace wasmlet::engine {
namespace {

namespace fs = std::filesystem;

// Entry layout, little-endian:
//   magic "wasmlet-code" | u32 format | u32 identity length | identity | key (32)
//   | u64 payload length | SHA-256 of the payload (32) | payload
constexpr std::string_view kMagic = "wasmlet-code";
constexpr uint32_t kFormat = 1;
constexpr std::string_view kSuffix = ".code";
// A writer that died between write and rename leaves its temporary file: removed once this old.
constexpr auto kStaleTemp = std::chrono::hours(1);

using Digest = std::array<uint8_t, 32>;

Digest Sha256(std::initializer_list<std::span<const uint8_t>> parts) {
  Digest digest{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (auto part : parts) EVP_DigestUpdate(ctx, part.data(), part.size());
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx, digest.data(), &size);
  EVP_MD_CTX_free(ctx);
  return digest;
}

std::span<const uint8_t> Bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// Reads the fields of an entry in order; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}
  bool Take(size_t n, std::span<const uint8_t>* out) {
    if (data_.size() - pos_ < n) return false;
    *out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool U32(uint32_t* v) {
    std::span<const uint8_t> b;
    if (!Take(4, &b)) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= uint32_t{b[i]} << (8 * i);
    return true;
  }
  bool U64(uint64_t* v) {
    std::span<const uint8_t> b;
    if (!Take(8, &b)) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= uint64_t{b[i]} << (8 * i);
    return true;
  }
  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

bool Equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

Result<std::unique_ptr<CodeCache>> CodeCache::Open(std::string dir, uint64_t max_bytes, std::string identity) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return FailedPrecondition("cannot create the code cache directory " + dir + ": " + error.message() +
                              "; set wasmlet.code_cache_dir to a writable directory, or code_cache to false");
  }
  ::chmod(dir.c_str(), 0700);  // see the header: an entry is code wasmlet runs
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return FailedPrecondition("the code cache directory " + dir + " is not writable: " + std::strerror(errno) +
                              "; set wasmlet.code_cache_dir to a writable directory, or code_cache to false");
  }
  std::unique_ptr<CodeCache> cache(new CodeCache(std::move(dir), max_bytes, std::move(identity)));
  {
    MutexLock lock(cache->mutex_);
    cache->EvictLocked();  // also learns the size on disk
  }
  return cache;
}

CodeCache::Key CodeCache::KeyOf(std::span<const uint8_t> module_bytes) const {
  const uint8_t separator = 0;
  return Sha256({Bytes(identity_), {&separator, 1}, module_bytes});
}

std::string CodeCache::PathOf(const Key& key) const {
  return dir_ + "/" + HexEncode({key.data(), key.size()}) + std::string(kSuffix);
}

void CodeCache::Discard(const std::string& path, std::string_view why) {
  invalid_++;
  spdlog::warn("code cache: ignoring {}: {}; the module is compiled and the entry written again", path, why);
  std::error_code ignored;
  fs::remove(path, ignored);
}

std::optional<std::vector<uint8_t>> CodeCache::Load(const Key& key) {
  const std::string path = PathOf(key);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    misses_++;
    return std::nullopt;
  }
  std::vector<uint8_t> file(static_cast<size_t>(std::max<std::streamoff>(in.tellg(), 0)));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(file.data()), static_cast<std::streamsize>(file.size()));
  if (!in) {
    Discard(path, "cannot be read");
    return std::nullopt;
  }
  Reader reader(file);
  std::span<const uint8_t> magic, identity, stored_key, digest;
  uint32_t format = 0, identity_size = 0;
  uint64_t payload_size = 0;
  if (!reader.Take(kMagic.size(), &magic) || !Equal(magic, Bytes(kMagic))) {
    Discard(path, "not a wasmlet code cache entry");
    return std::nullopt;
  }
  if (!reader.U32(&format) || format != kFormat) {
    Discard(path, "written in format " + std::to_string(format) + ", this wasmlet reads format " +
                      std::to_string(kFormat));
    return std::nullopt;
  }
  if (!reader.U32(&identity_size) || !reader.Take(identity_size, &identity)) {
    Discard(path, "truncated (" + std::to_string(file.size()) + " bytes)");
    return std::nullopt;
  }
  if (!Equal(identity, Bytes(identity_))) {
    Discard(path, "made by '" + std::string(identity.begin(), identity.end()) + "', this is '" + identity_ + "'");
    return std::nullopt;
  }
  if (!reader.Take(key.size(), &stored_key) || !reader.U64(&payload_size) || !reader.Take(32, &digest)) {
    Discard(path, "truncated (" + std::to_string(file.size()) + " bytes)");
    return std::nullopt;
  }
  if (!Equal(stored_key, key)) {
    Discard(path, "it is the entry of another module");
    return std::nullopt;
  }
  if (payload_size != reader.remaining()) {
    Discard(path, "truncated or padded: the payload is " + std::to_string(reader.remaining()) + " bytes, " +
                      std::to_string(payload_size) + " expected");
    return std::nullopt;
  }
  std::span<const uint8_t> payload{file.data() + reader.position(), reader.remaining()};
  const Digest actual = Sha256({payload});
  if (!Equal(actual, digest)) {
    Discard(path, "corrupt (its checksum does not match)");
    return std::nullopt;
  }
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // most recently used now
  hits_++;
  return std::vector<uint8_t>(payload.begin(), payload.end());
}

void CodeCache::Reject(const Key& key, std::string_view why) {
  hits_--;  // Load counted it
  Discard(PathOf(key), why);
}

Status CodeCache::Store(const Key& key, std::span<const uint8_t> payload) {
  std::string header(kMagic);
  PutU32(header, kFormat);
  PutU32(header, static_cast<uint32_t>(identity_.size()));
  header += identity_;
  header.append(reinterpret_cast<const char*>(key.data()), key.size());
  PutU64(header, payload.size());
  const Digest digest = Sha256({payload});
  header.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  if (header.size() + payload.size() > max_bytes_) {
    spdlog::debug("code cache: an entry of {} bytes is over code_cache_max_mb; not kept",
                  header.size() + payload.size());
    return Status::Ok();
  }

  const std::string path = PathOf(key);
  const std::string temp = dir_ + "/.tmp." + std::to_string(::getpid()) + "." + std::to_string(temp_counter_++);
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(payload.data()), static_cast<std::streamsize>(payload.size()));
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(temp, ignored);
      return Unavailable("cannot write the code cache entry " + temp + ": " + std::strerror(errno));
    }
  }
  std::error_code error;
  fs::rename(temp, path, error);
  if (error) {
    fs::remove(temp, error);
    return Unavailable("cannot write the code cache entry " + path + ": " + error.message());
  }
  written_++;
  MutexLock lock(mutex_);
  EvictLocked();
  return Status::Ok();
}

void CodeCache::EvictLocked() {
  struct Entry {
    fs::path path;
    uint64_t size;
    fs::file_time_type used;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  std::error_code error;
  const auto now = fs::file_time_type::clock::now();
  for (const auto& item : fs::directory_iterator(dir_, error)) {
    std::error_code item_error;
    const std::string name = item.path().filename().string();
    const auto used = item.last_write_time(item_error);
    if (item_error) continue;  // removed meanwhile (another process)
    if (name.rfind(".tmp.", 0) == 0) {
      if (now - used > kStaleTemp) fs::remove(item.path(), item_error);
      continue;
    }
    if (name.size() <= kSuffix.size() || name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0)
      continue;
    const uint64_t size = item.file_size(item_error);
    if (item_error) continue;
    entries.push_back({item.path(), size, used});
    total += size;
  }
  if (total > max_bytes_) {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.used < b.used; });
    for (const Entry& entry : entries) {
      if (total <= max_bytes_) break;
      std::error_code remove_error;
      if (fs::remove(entry.path, remove_error)) evicted_++;
      total -= entry.size;
    }
  }
  bytes_ = total;
}

CodeCacheStats CodeCache::stats() const {
  MutexLock lock(mutex_);
  return {.hits = hits_.load(),
          .misses = misses_.load(),
          .invalid = invalid_.load(),
          .written = written_.load(),
          .evicted = evicted_,
          .bytes = bytes_};
}

}  // namespace wasmlet::engine
