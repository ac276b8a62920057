// A number no other object of the process has had or will have: what a per-thread cache keys an
// object by. Its address would not do: a new object may be made where a destroyed one was, and
// the cache would hand it the dead one's entry.
#pragma once

#include <atomic>
#include <cstdint>

namespace wasmlet::server {

class UniqueId {
 public:
  UniqueId() : value_(next_.fetch_add(1, std::memory_order_relaxed)) {}
  // A copy is another object, with a number of its own.
  UniqueId(const UniqueId&) : UniqueId() {}
  UniqueId& operator=(const UniqueId&) { return *this; }

  // Never 0, so that 0 can mean "no object" in a cache.
  uint64_t value() const { return value_; }

 private:
  const uint64_t value_;
  static inline std::atomic<uint64_t> next_{1};
};

}  // namespace wasmlet::server
