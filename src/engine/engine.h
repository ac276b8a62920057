// The WebAssembly engine behind one narrow interface.
//
//   Engine   process-wide; compiles modules. Thread-safe.
//   Module   a compiled module: immutable, shared by every thread and store.
//   Store    a sandbox of instances that run on one thread at a time (a V8 isolate).
//   Instance a module instantiated in a store, with its own linear memory.
//
// Host functions are linked by (module, name, signature). A guest that traps, runs past its
// deadline or grows memory past its cap never takes the host down: the call returns an
// error Status and the instance is marked failed (its state is undefined after a trap, so it
// refuses further calls; make a new one). Nothing above this header names an engine's types.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "engine/code_cache.h"
#include "wasm/module_info.h"

namespace wasmlet::engine {

using wasm::FunctionType;
using wasm::ValType;

// One wasm value. Only the numeric types cross the host boundary.
struct Value {
  ValType type = ValType::kI32;
  union {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
  };

  Value() : i64(0) {}
  static Value I32(int32_t v) {
    Value x;
    x.type = ValType::kI32;
    x.i32 = v;
    return x;
  }
  static Value I64(int64_t v) {
    Value x;
    x.type = ValType::kI64;
    x.i64 = v;
    return x;
  }
  static Value F32(float v) {
    Value x;
    x.type = ValType::kF32;
    x.f32 = v;
    return x;
  }
  static Value F64(double v) {
    Value x;
    x.type = ValType::kF64;
    x.f64 = v;
    return x;
  }
};

class Instance;

// A host function. `args` match the declared params; the callback fills `results` (already
// typed). Returning a non-OK Status aborts the guest call that made it: the guest cannot catch
// it, and the outer Call returns that same Status (kExit for proc_exit, kTrap for a fault).
using HostCallback =
    std::function<Status(Instance& caller, std::span<const Value> args, std::span<Value> results)>;

struct HostFunction {
  std::string module;
  std::string name;
  FunctionType type;
  HostCallback callback;
  // Every function of the same module and name, this one included (the ABI has names in two
  // shapes; a module may import both, and engines may hand either entry the call).
  std::vector<const HostFunction*> overloads;
};

// The set of host functions a module may import. Build it once, share it (read-only) across
// threads and stores.
class HostFunctions {
 public:
  // Several functions may share a name if their signatures differ (the ABI has such pairs).
  void Add(std::string module, std::string name, FunctionType type, HostCallback callback);
  const HostFunction* Find(std::string_view module, std::string_view name, const FunctionType& type) const;
  // Explains why an import cannot be linked: absent, or present with other signatures.
  std::string DescribeMissing(std::string_view module, std::string_view name, const FunctionType& type) const;
  size_t size() const { return functions_.size(); }

 private:
  std::vector<std::unique_ptr<HostFunction>> functions_;         // stable addresses
  std::unordered_multimap<std::string, HostFunction*> by_name_;  // "module\0name"
};

struct CompileOptions {
  // The most linear memory an instance of the module may have. Initial memory above it fails
  // the compile; memory.grow past it fails in the guest.
  uint64_t max_memory_bytes = uint64_t{1} << 30;
};

class Module {
 public:
  virtual ~Module() = default;
  const wasm::ModuleInfo& info() const { return info_; }
  uint64_t max_memory_bytes() const { return max_memory_bytes_; }
  // Loaded from the code cache: the engine took the machine code stored there and compiled
  // nothing.
  bool from_cache() const { return from_cache_; }

 protected:
  Module(wasm::ModuleInfo info, uint64_t max_memory_bytes, bool from_cache)
      : info_(std::move(info)), max_memory_bytes_(max_memory_bytes), from_cache_(from_cache) {}

 private:
  wasm::ModuleInfo info_;
  uint64_t max_memory_bytes_;
  bool from_cache_;
};

// A time of the engine's clock (Engine::clock()), at which a guest call is stopped.
using Deadline = Clock::TimePoint;
inline constexpr Deadline kNoDeadline = Deadline::max();

// An exported function, resolved once for repeated calls.
struct ExportedFunction {
  uint32_t slot = 0;  // engine-specific handle
  const FunctionType* type = nullptr;
};

class Store;

class Instance {
 public:
  virtual ~Instance() = default;

  const Module& module() const { return *module_; }
  virtual Store& store() = 0;

  std::optional<ExportedFunction> FindFunction(std::string_view name) const;

  // Calls an exported function. `args` must match its params and `results` its results in
  // number (their types are set here). The call is stopped at `deadline` (kDeadlineExceeded).
  // After an error other than a type mismatch the instance is failed().
  virtual Status Call(const ExportedFunction& function, std::span<const Value> args, std::span<Value> results,
                      Deadline deadline = kNoDeadline) = 0;
  // Convenience: look up by name and return the results.
  Result<std::vector<Value>> Call(std::string_view name, std::span<const Value> args,
                                  Deadline deadline = kNoDeadline);

  // Linear memory. A span is valid until the next call into the guest (which may grow and move
  // memory); never keep one across a call.
  virtual uint64_t MemorySize() = 0;
  Result<std::span<uint8_t>> Memory(uint64_t offset, uint64_t length);
  Status ReadMemory(uint64_t offset, std::span<uint8_t> out);
  Status WriteMemory(uint64_t offset, std::span<const uint8_t> data);
  Result<uint32_t> ReadU32(uint64_t offset);
  Status WriteU32(uint64_t offset, uint32_t value);
  Status WriteU64(uint64_t offset, uint64_t value);

  // True once a call has trapped, exited or been stopped; such an instance refuses calls.
  bool failed() const { return failed_; }

  // Data of the embedder, reachable from host callbacks through `caller`.
  void* host_data() const { return host_data_; }
  void set_host_data(void* data) { host_data_ = data; }

 protected:
  explicit Instance(std::shared_ptr<const Module> module) : module_(std::move(module)) {}
  // The memory of the instance as one span; re-read after every guest call.
  virtual std::span<uint8_t> MemoryBytes() = 0;

  std::shared_ptr<const Module> module_;
  bool failed_ = false;
  void* host_data_ = nullptr;
};

class Store {
 public:
  virtual ~Store() = default;
  // Creates an instance with its imports linked from `host`, sets its host data, then runs the
  // module's start function, if any, under `deadline`.
  virtual Result<std::unique_ptr<Instance>> Instantiate(std::shared_ptr<const Module> module,
                                                        std::shared_ptr<const HostFunctions> host,
                                                        Deadline deadline = kNoDeadline,
                                                        void* host_data = nullptr) = 0;
  // Frees now what destroyed instances left behind (their linear memory above all), instead of
  // whenever the engine would get to it. Costs milliseconds: call it after removing instances.
  virtual void CollectGarbage() = 0;
  // Tells the store that its thread will use no other store: the engine then stays entered
  // between calls instead of being entered and left around each one. Call at most once, on the
  // store's thread, right after it is created.
  virtual void PinToThread() {}
  // The engine's clock, which the deadlines of this store's calls are times of.
  virtual Clock& clock() = 0;
};

// How an engine is made. Fixed for its life.
struct EngineOptions {
  // Where compiled code is kept between runs (code_cache.h); empty: nowhere, every module is
  // compiled. A directory that cannot be used is logged and the engine runs without it.
  std::string code_cache_dir;
  uint64_t code_cache_max_bytes = uint64_t{256} << 20;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string_view name() const = 0;  // "v8 10.2.154.26"
  // Thread-safe.
  virtual Result<std::shared_ptr<const Module>> Compile(std::span<const uint8_t> wasm,
                                                        const CompileOptions& options = {}) = 0;
  // A new store, to be used by one thread at a time.
  virtual Result<std::unique_ptr<Store>> NewStore() = 0;
  // What its watchdog stops guest calls by: deadlines are times of this clock.
  virtual Clock& clock() = 0;
  // The code cache's counters; all zero without one.
  virtual CodeCacheStats code_cache_stats() const = 0;
  // Waits until the modules compiled so far are in the code cache (an entry is written once the
  // engine's optimised code for every function of the module is ready, in the background), at
  // most `timeout`. False if some are not.
  virtual bool FlushCodeCache(std::chrono::milliseconds timeout) = 0;
};

// The engine wasmlet runs on: "v8" (the default and, today, only backend), its deadlines on
// `clock`.
Result<std::unique_ptr<Engine>> CreateEngine(std::string_view name = "v8", Clock& clock = SystemClock(),
                                             const EngineOptions& options = {});

}  // namespace wasmlet::engine
