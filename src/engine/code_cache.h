// Compiled code kept on disk between runs: one file per module, so that a start, a reload or an
// install of a module compiled before loads its machine code instead of compiling it again.
//
// An entry is keyed by a SHA-256 of the engine's identity (its version and the flags that change
// code) and the module's bytes, and carries a SHA-256 of its own payload: the engine runs that
// payload as machine code without checking it, so a file that is truncated, corrupt, from
// another engine or for another module is never handed over. Such a file is logged, removed and
// rewritten after the next compile. Entries are written to a temporary file and renamed, so a
// reader (another process too) sees a whole entry or none. The directory is bounded: past
// max_bytes the least recently used entries go first (a hit touches its file's time).
//
// The directory must be writable by wasmlet's user alone: whoever can write an entry chooses the
// machine code wasmlet runs. Open creates it with mode 0700. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace wasmlet::engine {

struct CodeCacheStats {
  uint64_t hits = 0;     // entries loaded and accepted by the engine
  uint64_t misses = 0;   // no entry: compiled
  uint64_t invalid = 0;  // entries ignored and removed (corrupt, truncated, foreign, refused)
  uint64_t written = 0;
  uint64_t evicted = 0;  // removed to stay under the size bound
  uint64_t bytes = 0;    // the entries' size on disk, as of the last write
};

class CodeCache {
 public:
  using Key = std::array<uint8_t, 32>;

  // `identity` names the engine build and its code-changing flags ("v8 10.2.154.26 ..."); an
  // entry made under another identity is foreign. Creates `dir` (and its parents) if needed.
  static Result<std::unique_ptr<CodeCache>> Open(std::string dir, uint64_t max_bytes, std::string identity);

  Key KeyOf(std::span<const uint8_t> module_bytes) const;

  // The payload stored for `key`, or nothing (a miss). An entry that fails a check is logged
  // with the reason, removed and counted as invalid.
  std::optional<std::vector<uint8_t>> Load(const Key& key) EXCLUDES(mutex_);
  // The engine refused a payload that passed the checks (built for another CPU, say): removed.
  void Reject(const Key& key, std::string_view why) EXCLUDES(mutex_);
  // Writes the entry (atomically), then removes the least recently used past the bound. A
  // payload larger than the bound is not kept.
  Status Store(const Key& key, std::span<const uint8_t> payload) EXCLUDES(mutex_);

  void CountMiss() { misses_++; }
  CodeCacheStats stats() const EXCLUDES(mutex_);
  const std::string& dir() const { return dir_; }
  std::string PathOf(const Key& key) const;

 private:
  CodeCache(std::string dir, uint64_t max_bytes, std::string identity)
      : dir_(std::move(dir)), max_bytes_(max_bytes), identity_(std::move(identity)) {}
  void Discard(const std::string& path, std::string_view why);
  void EvictLocked() REQUIRES(mutex_);

  const std::string dir_;
  const uint64_t max_bytes_;
  const std::string identity_;
  std::atomic<uint64_t> hits_{0}, misses_{0}, invalid_{0}, written_{0};
  std::atomic<uint64_t> temp_counter_{0};
  mutable Mutex mutex_;  // one eviction pass at a time
  uint64_t evicted_ GUARDED_BY(mutex_) = 0;
  uint64_t bytes_ GUARDED_BY(mutex_) = 0;
};

}  // namespace wasmlet::engine
