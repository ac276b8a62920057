// V8 backend: one isolate per Store, compiled code shared through CompiledWasmModule.
//
// How a guest call is stopped: the watchdog (deadline) or a host function that fails
// (proc_exit, a fault) records why in the store and calls Isolate::TerminateExecution, which the
// guest cannot catch. The Call that owns the reason cancels the termination and returns it; an
// inner Call whose outer call was stopped leaves the termination in place so it unwinds further.
#include "engine/v8/v8_engine.h"

#include <libplatform/libplatform.h>
#include <spdlog/spdlog.h>
#include <v8.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <optional>
#include <thread>
#include <unordered_map>

#include "common/mutex.h"
#include "engine/v8/code_cache_writer.h"
#include "engine/watchdog.h"
#include "wasm/prepare.h"

namespace wasmlet::engine::v8backend {
namespace {

// The V8 flags wasmlet runs with; part of the code cache's key, since they change the code.
// Every function is compiled twice: at once by the baseline compiler (Liftoff), then by the
// optimising one (TurboFan) in the background. V8's default, dynamic tiering, optimises only the
// functions that turn out hot, and V8 10.2 can serialise a module only once all of its code is
// optimised, so with the default nothing would ever reach the code cache.
constexpr char kV8Flags[] = "--no-wasm-dynamic-tiering";

v8::Platform* Platform() {
  static std::unique_ptr<v8::Platform> platform = [] {
    v8::V8::SetFlagsFromString(kV8Flags);
    auto p = v8::platform::NewDefaultPlatform();
    v8::V8::InitializePlatform(p.get());
    v8::V8::Initialize();
    return p;
  }();
  return platform.get();
}

v8::Local<v8::String> V8String(v8::Isolate* isolate, std::string_view s) {
  return v8::String::NewFromUtf8(isolate, s.data(), v8::NewStringType::kNormal, static_cast<int>(s.size()))
      .ToLocalChecked();
}

// The message of the exception a TryCatch caught, e.g. "RuntimeError: unreachable".
std::string ExceptionMessage(v8::Isolate* isolate, const v8::TryCatch& try_catch) {
  if (!try_catch.HasCaught()) return "unknown error";
  v8::Local<v8::Message> message = try_catch.Message();
  if (!message.IsEmpty()) {
    v8::String::Utf8Value text(isolate, message->Get());
    if (*text != nullptr) return *text;
  }
  v8::String::Utf8Value text(isolate, try_catch.Exception());
  return *text != nullptr ? *text : "unknown error";
}

// "Uncaught RuntimeError: unreachable" -> "unreachable" (V8 prefixes its own words).
std::string TrapText(std::string message) {
  for (std::string_view prefix : {"Uncaught ", "RuntimeError: ", "CompileError: ", "LinkError: ",
                                  "WebAssembly.Module(): ", "WebAssembly.Instance(): "}) {
    if (message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
  }
  return message;
}

Value FromV8(v8::Local<v8::Context> context, v8::Local<v8::Value> v, ValType type) {
  switch (type) {
    case ValType::kI32:
      return Value::I32(v->IsInt32() ? v.As<v8::Int32>()->Value() : v->Int32Value(context).FromMaybe(0));
    case ValType::kI64: return Value::I64(v->IsBigInt() ? v.As<v8::BigInt>()->Int64Value() : 0);
    case ValType::kF32: return Value::F32(static_cast<float>(v->NumberValue(context).FromMaybe(0)));
    case ValType::kF64: return Value::F64(v->NumberValue(context).FromMaybe(0));
    default: return Value{};
  }
}

v8::Local<v8::Value> ToV8(v8::Isolate* isolate, const Value& v) {
  switch (v.type) {
    case ValType::kI32: return v8::Integer::New(isolate, v.i32);
    case ValType::kI64: return v8::BigInt::New(isolate, v.i64);
    case ValType::kF32: return v8::Number::New(isolate, v.f32);
    case ValType::kF64: return v8::Number::New(isolate, v.f64);
    default: return v8::Undefined(isolate);
  }
}

bool IsNumeric(ValType t) {
  return t == ValType::kI32 || t == ValType::kI64 || t == ValType::kF32 || t == ValType::kF64;
}

// Arguments and results are converted through fixed arrays; no ABI function has more.
constexpr size_t kMaxValues = 16;

class V8Module final : public Module {
 public:
  V8Module(wasm::ModuleInfo info, wasm::PreparedModule prepared, v8::CompiledWasmModule compiled, uint64_t id,
           bool from_cache)
      : Module(std::move(info), prepared.max_memory_pages * wasm::kPageSize, from_cache),
        compiled(std::move(compiled)),
        memory_export(std::move(prepared.memory_export)),
        start_export(std::move(prepared.start_export)),
        id(id) {}

  // The start function, called through the export PrepareModule added for it. Its slot is one
  // past the module's own exports, so it never shadows one of them.
  ExportedFunction start_function() const {
    return {static_cast<uint32_t>(info().exports.size()), info().FunctionTypeAt(*info().start_function)};
  }
  const std::string& ExportName(uint32_t slot) const {
    return slot < info().exports.size() ? info().exports[slot].name : start_export;
  }

  v8::CompiledWasmModule compiled;
  std::string memory_export;
  std::string start_export;
  uint64_t id;
};

class V8Store;

class V8Instance final : public Instance {
 public:
  V8Instance(V8Store& store, std::shared_ptr<const Module> module);
  ~V8Instance() override;

  Store& store() override;
  Status Call(const ExportedFunction& function, std::span<const Value> args, std::span<Value> results,
              Deadline deadline) override;
  uint64_t MemorySize() override { return MemoryBytes().size(); }

  const V8Module& v8_module() const { return static_cast<const V8Module&>(*module_); }
  void InvalidateMemory() { memory_valid_ = false; }
  void MarkFailed() { failed_ = true; }
  v8::Local<v8::Function> ExportFunction(v8::Isolate* isolate, v8::Local<v8::Context> context, uint32_t slot);

  v8::Global<v8::Object> exports;
  v8::Global<v8::WasmMemoryObject> memory;

 protected:
  std::span<uint8_t> MemoryBytes() override;

 private:
  V8Store& store_;
  std::vector<v8::Global<v8::Function>> functions_;  // by export slot, filled on first use
  std::span<uint8_t> memory_view_;
  bool memory_valid_ = false;
};

class V8Engine;

class V8Store final : public Store {
 public:
  V8Store(V8Engine& engine, v8::ArrayBuffer::Allocator* allocator);
  ~V8Store() override;

  Result<std::unique_ptr<Instance>> Instantiate(std::shared_ptr<const Module> module,
                                                std::shared_ptr<const HostFunctions> host, Deadline deadline,
                                                void* host_data) override;

  void CollectGarbage() override {
    if (!CheckThread().ok()) return;
    v8::Isolate::Scope isolate_scope(isolate_);
    isolate_->LowMemoryNotification();
  }

  void PinToThread() override {
    if (pinned_ || !CheckThread().ok()) return;
    // The isolate and its context stay entered for the thread's life, so that a call enters
    // neither again; and a handle scope stays open under the calls' own, so that each call's
    // scope finds a block of handles ready instead of allocating one and freeing it after.
    isolate_->Enter();
    pinned_scope_.emplace(isolate_);
    pinned_context_ = context_.Get(isolate_);
    pinned_context_->Enter();
    pinned_ = true;
  }
  Clock& clock() override;

  Status Invoke(V8Instance& instance, const ExportedFunction& function, std::span<const Value> args,
                std::span<Value> results, Deadline deadline);

  v8::Isolate* isolate() const { return isolate_; }
  // A store belongs to the thread that created it (V8 would otherwise need a Locker, which
  // costs more than the call itself).
  Status CheckThread() const {
    if (std::this_thread::get_id() == owner_) return Status::Ok();
    return FailedPrecondition("a Store and its instances must be used on the thread that created the Store");
  }
  uint64_t calls_since_pump = 0;
  V8Instance* current_instance() const { return call_stack_.empty() ? nullptr : call_stack_.back(); }
  // A host function failed: stop the innermost guest call with `status`.
  void AbortFromHost(Status status);

  std::atomic<int> live_instances{0};

 private:
  struct ModuleEntry {
    std::weak_ptr<const Module> module;
    v8::Global<v8::WasmModuleObject> object;
    std::unordered_map<const HostFunctions*, v8::Global<v8::Object>> imports;
  };

  Result<v8::Local<v8::Object>> ImportsFor(v8::Local<v8::Context> context, ModuleEntry& entry,
                                           const V8Module& module, const HostFunctions& host);
  v8::Local<v8::Function> HostFunctionObject(v8::Local<v8::Context> context, const HostFunction& fn);
  void Terminate(size_t depth, Status status) REQUIRES(interrupt_mutex_);
  void DropExpiredModules();

  V8Engine& engine_;
  const std::thread::id owner_ = std::this_thread::get_id();
  v8::Isolate* isolate_;
  v8::Global<v8::Context> context_;
  v8::Global<v8::Function> instance_constructor_;
  std::unordered_map<uint64_t, ModuleEntry> modules_;
  std::unordered_map<const HostFunction*, v8::Global<v8::Function>> host_functions_;
  std::vector<std::shared_ptr<const HostFunctions>> linked_hosts_;  // keeps cache keys alive
  std::vector<V8Instance*> call_stack_;                             // innermost last

  // Why execution is being terminated, and which call depth owns it (1 = outermost).
  Mutex interrupt_mutex_;
  size_t terminate_depth_ GUARDED_BY(interrupt_mutex_) = 0;  // 0: no termination pending
  Status terminate_status_ GUARDED_BY(interrupt_mutex_);
  bool terminate_from_host_ GUARDED_BY(interrupt_mutex_) = false;  // a failed host call, not a deadline

  // The deadline of outermost calls stays armed across the calls that share it (the callbacks
  // of one request all do), so that a request arms the process-wide watchdog once, not once
  // per callback. lazy_* are used on the store's thread only.
  Watchdog::Ticket lazy_ticket_ = 0;
  Deadline lazy_deadline_ = kNoDeadline;
  // The deadline of the outermost call in progress, kNoDeadline between calls.
  Deadline running_deadline_ GUARDED_BY(interrupt_mutex_) = kNoDeadline;
  // running_deadline_ read on the store's thread, its only writer, which needs no lock for it.
  Deadline OwnRunningDeadline() const NO_THREAD_SAFETY_ANALYSIS { return running_deadline_; }
  // The last lazy deadline the watchdog reached.
  Deadline fired_deadline_ GUARDED_BY(interrupt_mutex_) = kNoDeadline;
  bool pinned_ = false;                          // entered for good by its thread (PinToThread)
  std::optional<v8::HandleScope> pinned_scope_;  // open while pinned; holds pinned_context_
  v8::Local<v8::Context> pinned_context_;
  void ArmOutermost(Deadline deadline);
};

class V8Engine final : public Engine {
 public:
  V8Engine(Clock& clock, const EngineOptions& options)
      : allocator_(v8::ArrayBuffer::Allocator::NewDefaultAllocator()),
        name_(std::string("v8 ") + v8::V8::GetVersion()),
        watchdog_(clock) {
    v8::Isolate::CreateParams params;
    params.array_buffer_allocator = allocator_.get();
    compile_isolate_ = v8::Isolate::New(params);
    compile_isolate_->SetData(0, this);
    // WebAssembly.compileStreaming, which exists only with a callback, is V8's one way to load
    // serialised code back (WasmStreaming::SetCompiledModuleBytes).
    compile_isolate_->SetWasmStreamingCallback(&V8Engine::StreamingCallback);
    compile_isolate_->SetMicrotasksPolicy(v8::MicrotasksPolicy::kExplicit);
    Platform()->GetForegroundTaskRunner(compile_isolate_);  // PumpMessageLoop needs its queue
    {
      v8::Locker locker(compile_isolate_);
      v8::Isolate::Scope isolate_scope(compile_isolate_);
      v8::HandleScope handles(compile_isolate_);
      compile_context_.Reset(compile_isolate_, v8::Context::New(compile_isolate_));
    }
    if (!options.code_cache_dir.empty()) {
      auto cache = CodeCache::Open(options.code_cache_dir, options.code_cache_max_bytes,
                                   name_ + " " + kV8Flags);
      if (cache.ok()) {
        cache_ = std::move(*cache);
        writer_ = std::make_unique<CodeCacheWriter>(*cache_);
      } else {
        spdlog::warn("{} (running without a code cache)", cache.status().message());
      }
    }
  }
  ~V8Engine() override {
    writer_.reset();  // its thread may still be serialising a module
    {
      v8::Locker locker(compile_isolate_);
      v8::Isolate::Scope isolate_scope(compile_isolate_);
      compile_context_.Reset();
    }
    compile_isolate_->Dispose();
  }

  std::string_view name() const override { return name_; }

  Result<std::shared_ptr<const Module>> Compile(std::span<const uint8_t> wasm,
                                                const CompileOptions& options) override {
    auto info = wasm::ParseModule(wasm);
    if (!info.ok()) return info.status();
    auto prepared = wasm::PrepareModule(wasm, *info, options.max_memory_bytes / wasm::kPageSize);
    if (!prepared.ok()) return prepared.status();
    const auto& bytes = prepared->bytes;
    // The key covers the prepared bytes, so the memory cap (which PrepareModule writes into the
    // module) is part of it.
    std::optional<CodeCache::Key> key;
    std::optional<std::vector<uint8_t>> stored;
    if (cache_) {
      key = cache_->KeyOf(bytes);
      stored = cache_->Load(*key);
    }

    MutexLock lock(compile_mutex_);
    v8::Locker locker(compile_isolate_);
    v8::Isolate::Scope isolate_scope(compile_isolate_);
    v8::HandleScope handles(compile_isolate_);
    v8::Local<v8::Context> context = compile_context_.Get(compile_isolate_);
    v8::Context::Scope context_scope(context);
    v8::TryCatch try_catch(compile_isolate_);
    v8::Local<v8::WasmModuleObject> object;
    bool from_cache = false;
    if (stored) {
      std::string why;
      from_cache = LoadCompiled(context, bytes, *stored, &object, &why);
      if (!from_cache) cache_->Reject(*key, why);
    }
    if (object.IsEmpty() &&
        !v8::WasmModuleObject::Compile(compile_isolate_, {bytes.data(), bytes.size()}).ToLocal(&object)) {
      return InvalidArgument("the module does not compile: " +
                             TrapText(ExceptionMessage(compile_isolate_, try_catch)));
    }
    auto module = std::make_shared<V8Module>(std::move(*info), std::move(*prepared), object->GetCompiledModule(),
                                             next_module_id_++, from_cache);
    if (writer_ && !from_cache) {
      writer_->Schedule(*key, [weak = std::weak_ptr<const V8Module>(module)]() -> std::optional<v8::OwnedBuffer> {
        std::shared_ptr<const V8Module> alive = weak.lock();
        if (alive == nullptr) return std::nullopt;
        v8::CompiledWasmModule compiled = alive->compiled;
        return compiled.Serialize();
      });
    }
    return std::shared_ptr<const Module>(std::move(module));
  }

  Result<std::unique_ptr<Store>> NewStore() override {
    return std::unique_ptr<Store>(std::make_unique<V8Store>(*this, allocator_.get()));
  }

  Watchdog& watchdog() { return watchdog_; }
  Clock& clock() override { return watchdog_.clock(); }

  CodeCacheStats code_cache_stats() const override { return cache_ ? cache_->stats() : CodeCacheStats{}; }

  bool FlushCodeCache(std::chrono::milliseconds timeout) override {
    return writer_ == nullptr || writer_->Flush(timeout);
  }

 private:
  // What the streaming callback is to load; set by LoadCompiled for the length of one load.
  struct Load {
    std::span<const uint8_t> wire;
    std::span<const uint8_t> code;
    v8::Local<v8::Promise> promise;
    bool accepted = false;      // V8 took the bytes as its own kind (version, flags, CPU)
    bool deserialized = false;  // ... and built the module from them, compiling nothing
  };

  // Runs inside LoadCompiled, whose caller holds compile_mutex_ (the analysis cannot follow V8).
  static void StreamingCallback(const v8::FunctionCallbackInfo<v8::Value>& info) NO_THREAD_SAFETY_ANALYSIS {
    auto* engine = static_cast<V8Engine*>(info.GetIsolate()->GetData(0));
    Load* load = engine->load_;
    std::shared_ptr<v8::WasmStreaming> streaming = v8::WasmStreaming::Unpack(info.GetIsolate(), info.Data());
    if (load == nullptr) {  // a script of ours never calls compileStreaming otherwise
      streaming->Abort(v8::Exception::Error(V8String(info.GetIsolate(), "no module to load")));
      return;
    }
    load->accepted = streaming->SetCompiledModuleBytes(load->code.data(), load->code.size());
    if (!load->accepted) {
      streaming->Abort({});
      return;
    }
    streaming->OnBytesReceived(load->wire.data(), load->wire.size());
    streaming->Finish(true);
    // Deserialising settles the promise inside Finish; a compile (V8's fallback when the
    // bytes do not deserialise) settles it later, from tasks.
    load->deserialized = load->promise->State() == v8::Promise::kFulfilled;
  }

  // Builds the module from `code` (an entry of the cache) and the module's own bytes. False
  // with the reason when V8 did not take the entry; `object` may then still hold the module,
  // compiled by V8 instead.
  bool LoadCompiled(v8::Local<v8::Context> context, std::span<const uint8_t> wire,
                    std::span<const uint8_t> code, v8::Local<v8::WasmModuleObject>* object, std::string* why)
      REQUIRES(compile_mutex_) {
    v8::Isolate* isolate = compile_isolate_;
    v8::Local<v8::Object> webassembly =
        context->Global()->Get(context, V8String(isolate, "WebAssembly")).ToLocalChecked().As<v8::Object>();
    v8::Local<v8::Value> compile_streaming;
    if (!webassembly->Get(context, V8String(isolate, "compileStreaming")).ToLocal(&compile_streaming) ||
        !compile_streaming->IsFunction()) {
      *why = "this V8 has no WebAssembly.compileStreaming to load it with";
      return false;
    }
    // V8 keeps what a streaming load buffered (a copy of the module's bytes among it) until a
    // garbage collection finalises its WasmStreaming object, and this isolate allocates too
    // little to ever collect on its own: without a collection every cached load (each hot
    // reload) kept about the module's size for good. A collection costs 5-10 ms, so the loads of
    // a burst (a start) go without one unless they add up to kCollectAfterStreamedBytes; a load
    // after a pause (a reload, an install) first collects what the ones before it left.
    if (streamed_since_gc_ > 0 &&
        (streamed_since_gc_ >= kCollectAfterStreamedBytes ||
         std::chrono::steady_clock::now() - last_streamed_ > kStreamingBurst)) {
      streamed_since_gc_ = 0;
      isolate->LowMemoryNotification();
    }
    Load load{.wire = wire, .code = code, .promise = {}};
    v8::Local<v8::Value> argument = v8::Undefined(isolate);
    v8::Local<v8::Value> promise;
    if (!compile_streaming.As<v8::Function>()->Call(context, webassembly, 1, &argument).ToLocal(&promise) ||
        !promise->IsPromise()) {
      *why = "V8 did not start loading it";
      return false;
    }
    load.promise = promise.As<v8::Promise>();
    load_ = &load;
    isolate->PerformMicrotaskCheckpoint();  // runs StreamingCallback
    // V8's own compile of the module when the entry did not deserialise: wait for it.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (load.accepted && load.promise->State() == v8::Promise::kPending &&
           std::chrono::steady_clock::now() < give_up) {
      if (!v8::platform::PumpMessageLoop(Platform(), isolate)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      isolate->PerformMicrotaskCheckpoint();
    }
    load_ = nullptr;
    streamed_since_gc_ += wire.size() + code.size();
    last_streamed_ = std::chrono::steady_clock::now();
    if (load.promise->State() == v8::Promise::kFulfilled) *object = load.promise->Result().As<v8::WasmModuleObject>();
    if (load.deserialized) return true;
    *why = load.accepted ? "V8 could not deserialise it" : "V8 refused it (made by another V8 build, with other flags "
                                                           "or for another CPU)";
    return false;
  }

  std::unique_ptr<v8::ArrayBuffer::Allocator> allocator_;
  std::string name_;
  Mutex compile_mutex_;
  v8::Isolate* compile_isolate_ PT_GUARDED_BY(compile_mutex_);
  v8::Global<v8::Context> compile_context_;
  Load* load_ GUARDED_BY(compile_mutex_) = nullptr;
  // Bytes handed to streaming loads since the compile isolate last collected its garbage.
  static constexpr size_t kCollectAfterStreamedBytes = 32 << 20;
  static constexpr auto kStreamingBurst = std::chrono::milliseconds(500);
  size_t streamed_since_gc_ GUARDED_BY(compile_mutex_) = 0;
  std::chrono::steady_clock::time_point last_streamed_ GUARDED_BY(compile_mutex_);
  std::atomic<uint64_t> next_module_id_{1};
  Watchdog watchdog_;

  std::unique_ptr<CodeCache> cache_;
  std::unique_ptr<CodeCacheWriter> writer_;  // after cache_, which it writes to
};

Clock& V8Store::clock() { return engine_.clock(); }

// ---------------------------------------------------------------------------------------------
// Host function trampoline: V8 calls this for every guest->host call.

void HostTrampoline(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  auto* fn = static_cast<const HostFunction*>(info.Data().As<v8::External>()->Value());
  // An imports object holds one function per name: when a module imports a name in two shapes,
  // both reach this entry, and the argument count picks the overload.
  if (fn->type.params.size() != static_cast<size_t>(info.Length())) {
    for (const HostFunction* overload : fn->overloads) {
      if (overload->type.params.size() == static_cast<size_t>(info.Length())) fn = overload;
    }
  }
  auto* store = static_cast<V8Store*>(isolate->GetData(0));
  V8Instance* caller = store->current_instance();
  if (caller == nullptr) {
    isolate->ThrowException(
        v8::Exception::Error(V8String(isolate, "host function called outside a guest call")));
    return;
  }
  caller->InvalidateMemory();  // the guest may have grown its memory since the last look

  const auto& params = fn->type.params;
  const auto& result_types = fn->type.results;
  std::array<Value, kMaxValues> args;
  std::array<Value, kMaxValues> results;
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  for (size_t i = 0; i < params.size(); ++i) args[i] = FromV8(context, info[static_cast<int>(i)], params[i]);
  for (size_t i = 0; i < result_types.size(); ++i) results[i].type = result_types[i];

  Status status = fn->callback(*caller, {args.data(), params.size()}, {results.data(), result_types.size()});
  if (!status.ok()) {
    store->AbortFromHost(std::move(status));
    return;
  }
  if (result_types.size() == 1) {
    const Value& r = results[0];
    if (r.type == ValType::kI32) {
      info.GetReturnValue().Set(r.i32);
    } else {
      info.GetReturnValue().Set(ToV8(isolate, r));
    }
  } else if (result_types.size() > 1) {
    std::array<v8::Local<v8::Value>, kMaxValues> values;
    for (size_t i = 0; i < result_types.size(); ++i) values[i] = ToV8(isolate, results[i]);
    info.GetReturnValue().Set(v8::Array::New(isolate, values.data(), result_types.size()));
  }
}

// ---------------------------------------------------------------------------------------------
// V8Instance

V8Instance::V8Instance(V8Store& store, std::shared_ptr<const Module> module)
    : Instance(std::move(module)), store_(store), functions_(module_->info().exports.size() + 1) {
  store_.live_instances++;
}

V8Instance::~V8Instance() {
  assert(store_.CheckThread().ok() && "destroy an Instance on its Store's thread");
  v8::Isolate::Scope isolate_scope(store_.isolate());
  exports.Reset();
  memory.Reset();
  for (auto& f : functions_) f.Reset();
  store_.live_instances--;
}

Store& V8Instance::store() { return store_; }

v8::Local<v8::Function> V8Instance::ExportFunction(v8::Isolate* isolate, v8::Local<v8::Context> context,
                                                   uint32_t slot) {
  auto& cached = functions_[slot];
  if (!cached.IsEmpty()) return cached.Get(isolate);
  const std::string& name = v8_module().ExportName(slot);
  v8::Local<v8::Value> value = exports.Get(isolate)->Get(context, V8String(isolate, name)).ToLocalChecked();
  v8::Local<v8::Function> function = value.As<v8::Function>();
  cached.Reset(isolate, function);
  return function;
}

std::span<uint8_t> V8Instance::MemoryBytes() {
  if (memory_valid_) return memory_view_;
  if (memory.IsEmpty() || !store_.CheckThread().ok()) return {};
  v8::Isolate* isolate = store_.isolate();
  v8::Isolate::Scope isolate_scope(isolate);
  v8::HandleScope handles(isolate);
  v8::Local<v8::ArrayBuffer> buffer = memory.Get(isolate)->Buffer();
  memory_view_ = {static_cast<uint8_t*>(buffer->Data()), buffer->ByteLength()};
  memory_valid_ = true;
  return memory_view_;
}

Status V8Instance::Call(const ExportedFunction& function, std::span<const Value> args,
                        std::span<Value> results, Deadline deadline) {
  if (function.slot >= functions_.size() || function.type == nullptr) {
    return InvalidArgument("not a function of this instance's module");
  }
  const std::string& name = v8_module().ExportName(function.slot);
  if (failed_) {
    return FailedPrecondition("cannot call '" + name +
                              "': this instance failed earlier and its state is undefined; "
                              "create a new instance");
  }
  const FunctionType& type = *function.type;
  if (args.size() != type.params.size() || results.size() != type.results.size()) {
    return InvalidArgument("'" + name + "' has type " + type.ToString() + "; called with " +
                           std::to_string(args.size()) + " arguments and " + std::to_string(results.size()) +
                           " results");
  }
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].type != type.params[i]) {
      return InvalidArgument("argument " + std::to_string(i) + " of '" + name + "' must be " +
                             std::string(wasm::ValTypeName(type.params[i])));
    }
  }
  for (ValType t : type.params) {
    if (!IsNumeric(t))
      return InvalidArgument("'" + name +
                             "' takes reference arguments; only numbers cross the host boundary");
  }
  if (type.params.size() > kMaxValues || type.results.size() > kMaxValues) {
    return InvalidArgument("'" + name + "' has more than 16 parameters or results");
  }
  return store_.Invoke(*this, function, args, results, deadline);
}

// ---------------------------------------------------------------------------------------------
// V8Store

V8Store::V8Store(V8Engine& engine, v8::ArrayBuffer::Allocator* allocator) : engine_(engine) {
  v8::Isolate::CreateParams params;
  params.array_buffer_allocator = allocator;
  isolate_ = v8::Isolate::New(params);
  isolate_->SetData(0, this);
  // WebAssembly queues no microtasks: skip the checkpoint V8 would run after every call.
  isolate_->SetMicrotasksPolicy(v8::MicrotasksPolicy::kExplicit);
  v8::Isolate::Scope isolate_scope(isolate_);
  v8::HandleScope handles(isolate_);
  v8::Local<v8::Context> context = v8::Context::New(isolate_);
  context_.Reset(isolate_, context);
  v8::Context::Scope context_scope(context);
  v8::Local<v8::Object> webassembly =
      context->Global()->Get(context, V8String(isolate_, "WebAssembly")).ToLocalChecked().As<v8::Object>();
  instance_constructor_.Reset(
      isolate_,
      webassembly->Get(context, V8String(isolate_, "Instance")).ToLocalChecked().As<v8::Function>());
}

V8Store::~V8Store() {
  if (pinned_) {  // in the reverse order of PinToThread
    pinned_context_->Exit();
    pinned_context_.Clear();
    pinned_scope_.reset();
    isolate_->Exit();
  }
  if (lazy_ticket_ != 0) engine_.watchdog().Disarm(lazy_ticket_);  // its callback points here
  // Instances hold handles into this isolate: they must be gone first.
  assert(live_instances == 0 && "destroy every Instance before its Store");
  assert(CheckThread().ok() && "destroy a Store on the thread that created it");
  {
    v8::Isolate::Scope isolate_scope(isolate_);
    modules_.clear();
    host_functions_.clear();
    instance_constructor_.Reset();
    context_.Reset();
  }
  isolate_->Dispose();
}

void V8Store::Terminate(size_t depth, Status status) {
  // An outer call's stop takes precedence: it unwinds the inner calls too.
  if (terminate_depth_ != 0 && terminate_depth_ <= depth) return;
  terminate_depth_ = depth;
  terminate_status_ = std::move(status);
  isolate_->TerminateExecution();
}

void V8Store::AbortFromHost(Status status) {
  {
    MutexLock lock(interrupt_mutex_);
    Terminate(call_stack_.size(), std::move(status));
    terminate_from_host_ = true;
  }
  // Termination is only noticed at the guest's next loop or call; the exception unwinds it
  // right away, so no guest code runs after the failed host call.
  isolate_->ThrowException(v8::Exception::Error(V8String(isolate_, "wasmlet: host function failed")));
}

v8::Local<v8::Function> V8Store::HostFunctionObject(v8::Local<v8::Context> context, const HostFunction& fn) {
  auto it = host_functions_.find(&fn);
  if (it != host_functions_.end()) return it->second.Get(isolate_);
  v8::Local<v8::External> data = v8::External::New(isolate_, const_cast<HostFunction*>(&fn));
  v8::Local<v8::Function> function =
      v8::FunctionTemplate::New(isolate_, HostTrampoline, data)->GetFunction(context).ToLocalChecked();
  host_functions_[&fn].Reset(isolate_, function);
  return function;
}

Result<v8::Local<v8::Object>> V8Store::ImportsFor(v8::Local<v8::Context> context, ModuleEntry& entry,
                                                  const V8Module& module, const HostFunctions& host) {
  auto cached = entry.imports.find(&host);
  if (cached != entry.imports.end()) return cached->second.Get(isolate_);

  v8::Local<v8::Object> imports = v8::Object::New(isolate_);
  for (const wasm::Import& import : module.info().imports) {
    if (import.kind != wasm::ExternKind::kFunction) {
      return InvalidArgument("the module imports " + std::string(wasm::ExternKindName(import.kind)) + " " +
                             import.module + "." + import.name + ", which the host does not provide");
    }
    const FunctionType& type = *module.info().ImportType(import);
    const HostFunction* fn = host.Find(import.module, import.name, type);
    if (fn == nullptr) return InvalidArgument(host.DescribeMissing(import.module, import.name, type));
    if (type.params.size() > kMaxValues || type.results.size() > kMaxValues) {
      return InvalidArgument("host function " + import.name + " has more than 16 parameters or results");
    }
    v8::Local<v8::String> module_name = V8String(isolate_, import.module);
    v8::Local<v8::Value> namespace_value = imports->Get(context, module_name).ToLocalChecked();
    v8::Local<v8::Object> namespace_object;
    if (namespace_value->IsObject()) {
      namespace_object = namespace_value.As<v8::Object>();
    } else {
      namespace_object = v8::Object::New(isolate_);
      if (imports->Set(context, module_name, namespace_object).IsNothing())
        return Internal("could not build the imports object");
    }
    if (namespace_object->Set(context, V8String(isolate_, import.name), HostFunctionObject(context, *fn))
            .IsNothing()) {
      return Internal("could not build the imports object");
    }
  }
  entry.imports[&host].Reset(isolate_, imports);
  return imports;
}

void V8Store::DropExpiredModules() {
  for (auto it = modules_.begin(); it != modules_.end();) {
    it = it->second.module.expired() ? modules_.erase(it) : std::next(it);
  }
}

Result<std::unique_ptr<Instance>> V8Store::Instantiate(std::shared_ptr<const Module> module,
                                                       std::shared_ptr<const HostFunctions> host,
                                                       Deadline deadline, void* host_data) {
  const auto& v8_module = static_cast<const V8Module&>(*module);
  WASMLET_RETURN_IF_ERROR(CheckThread());
  v8::Isolate::Scope isolate_scope(isolate_);
  v8::HandleScope handles(isolate_);
  v8::Local<v8::Context> context = context_.Get(isolate_);
  v8::Context::Scope context_scope(context);
  v8::TryCatch try_catch(isolate_);

  auto found = modules_.find(v8_module.id);
  if (found == modules_.end()) {
    DropExpiredModules();
    v8::Local<v8::WasmModuleObject> object;
    if (!v8::WasmModuleObject::FromCompiledModule(isolate_, v8_module.compiled).ToLocal(&object)) {
      return Internal("V8 could not share the compiled module with this store: " +
                      ExceptionMessage(isolate_, try_catch));
    }
    found = modules_.emplace(v8_module.id, ModuleEntry{}).first;
    found->second.module = module;
    found->second.object.Reset(isolate_, object);
  }
  if (std::find(linked_hosts_.begin(), linked_hosts_.end(), host) == linked_hosts_.end()) {
    linked_hosts_.push_back(host);
  }
  auto imports = ImportsFor(context, found->second, v8_module, *host);
  if (!imports.ok()) return imports.status();

  std::array<v8::Local<v8::Value>, 2> argv = {found->second.object.Get(isolate_), *imports};
  v8::Local<v8::Object> instance_object;
  if (!instance_constructor_.Get(isolate_)->NewInstance(context, 2, argv.data()).ToLocal(&instance_object)) {
    return InvalidArgument("the module cannot be instantiated: " +
                           TrapText(ExceptionMessage(isolate_, try_catch)));
  }
  auto instance = std::make_unique<V8Instance>(*this, module);
  instance->set_host_data(host_data);
  v8::Local<v8::Object> exports =
      instance_object->Get(context, V8String(isolate_, "exports")).ToLocalChecked().As<v8::Object>();
  instance->exports.Reset(isolate_, exports);
  if (!v8_module.memory_export.empty()) {
    v8::Local<v8::Value> memory =
        exports->Get(context, V8String(isolate_, v8_module.memory_export)).ToLocalChecked();
    instance->memory.Reset(isolate_, memory.As<v8::WasmMemoryObject>());
  }
  if (!v8_module.start_export.empty()) {
    Status status = Invoke(*instance, v8_module.start_function(), {}, {}, deadline);
    if (!status.ok()) {
      return Status(status.code(), "the module's start function failed: " + status.message());
    }
  }
  return std::unique_ptr<Instance>(std::move(instance));
}

void V8Store::ArmOutermost(Deadline requested) {
  // Deadlines are rounded up to 10 ms, so that the requests of the next 10 ms share one armed
  // ticket: a request's budget may run up to 10 ms longer than asked.
  constexpr auto kGrain = std::chrono::milliseconds(10);
  const auto since_epoch = requested.time_since_epoch();
  const Deadline deadline(((since_epoch + kGrain - Deadline::duration(1)) / kGrain) * kGrain);
  {
    MutexLock lock(interrupt_mutex_);
    if (deadline == lazy_deadline_ && fired_deadline_ != deadline) {
      running_deadline_ = deadline;  // armed already, by an earlier call of the same request
      return;
    }
  }
  if (lazy_ticket_ != 0) engine_.watchdog().Disarm(lazy_ticket_);
  lazy_deadline_ = deadline;
  {
    MutexLock lock(interrupt_mutex_);
    running_deadline_ = deadline;
  }
  // A deadline already past fires at once: the call is stopped as soon as it starts.
  lazy_ticket_ = engine_.watchdog().Arm(deadline, [this, deadline] {
    MutexLock lock(interrupt_mutex_);
    fired_deadline_ = deadline;
    if (running_deadline_ != deadline) return;  // between calls: the next one re-arms
    Terminate(1, Status(StatusCode::kDeadlineExceeded, "the guest ran past its deadline and was stopped"));
  });
}

Status V8Store::Invoke(V8Instance& instance, const ExportedFunction& function, std::span<const Value> args,
                       std::span<Value> results, Deadline deadline) {
  WASMLET_RETURN_IF_ERROR(CheckThread());
  // A pinned store's thread has the isolate and context entered already (PinToThread).
  std::optional<v8::Isolate::Scope> isolate_scope;
  if (!pinned_) isolate_scope.emplace(isolate_);
  v8::HandleScope handles(isolate_);
  v8::Local<v8::Context> context = pinned_ ? pinned_context_ : context_.Get(isolate_);
  std::optional<v8::Context::Scope> context_scope;
  if (!pinned_) context_scope.emplace(context);

  v8::Local<v8::Function> callee = instance.ExportFunction(isolate_, context, function.slot);
  std::array<v8::Local<v8::Value>, kMaxValues> argv;
  for (size_t i = 0; i < args.size(); ++i) argv[i] = ToV8(isolate_, args[i]);

  call_stack_.push_back(&instance);
  const size_t depth = call_stack_.size();
  instance.InvalidateMemory();

  Watchdog::Ticket ticket = 0;  // a nested call's own deadline
  if (deadline != kNoDeadline && depth == 1) {
    ArmOutermost(deadline);
  } else if (deadline < OwnRunningDeadline()) {
    // A nested call needs its own ticket only if it must stop before the outermost call does
    // (the outermost call's stop unwinds the nested ones too).
    ticket = engine_.watchdog().Arm(deadline, [this, depth] {
      MutexLock lock(interrupt_mutex_);
      Terminate(depth,
                Status(StatusCode::kDeadlineExceeded, "the guest ran past its deadline and was stopped"));
    });
  }
  v8::TryCatch try_catch(isolate_);
  v8::MaybeLocal<v8::Value> returned =
      callee->Call(context, v8::Undefined(isolate_), static_cast<int>(args.size()), argv.data());
  if (ticket != 0) engine_.watchdog().Disarm(ticket);
  call_stack_.pop_back();
  instance.InvalidateMemory();

  // Was this call, or one around it, being stopped?
  Status stopped;
  bool stop_is_ours = false;
  bool from_host = false;
  {
    MutexLock lock(interrupt_mutex_);
    // From here the outermost deadline stops nothing: it stays armed for the next call.
    if (depth == 1) running_deadline_ = kNoDeadline;
    if (terminate_depth_ != 0 && terminate_depth_ >= depth) {
      // Ours (or a deeper call's that already returned): consume it.
      stopped = std::move(terminate_status_);
      from_host = terminate_from_host_;
      terminate_depth_ = 0;
      terminate_status_ = Status();
      terminate_from_host_ = false;
      isolate_->CancelTerminateExecution();
      stop_is_ours = true;
    } else if (terminate_depth_ != 0) {
      stopped = terminate_status_;  // an outer call's: leave it pending so it unwinds further
    }
  }

  v8::Local<v8::Value> value;
  if (stop_is_ours && !from_host && !returned.IsEmpty()) {
    // The deadline fired just as the guest returned: the answer is complete, keep it.
    stopped = Status();
  }
  if (!stopped.ok()) {
    // proc_exit leaves the instance consistent (it is how a WASI command ends _start); the
    // embedder decides whether to keep it. Anything else leaves it undefined.
    if (stopped.code() != StatusCode::kExit) instance.MarkFailed();
    return stopped;
  }
  if (!returned.ToLocal(&value)) {
    instance.MarkFailed();
    const std::string& name = instance.v8_module().ExportName(function.slot);
    return Status(StatusCode::kTrap,
                  "'" + name + "' trapped: " + TrapText(ExceptionMessage(isolate_, try_catch)));
  }

  const auto& types = function.type->results;
  if (types.size() == 1) {
    results[0] = FromV8(context, value, types[0]);
  } else if (types.size() > 1) {
    v8::Local<v8::Array> array = value.As<v8::Array>();
    for (size_t i = 0; i < types.size(); ++i) {
      results[i] = FromV8(context, array->Get(context, static_cast<uint32_t>(i)).ToLocalChecked(), types[i]);
    }
  }
  if (depth == 1 && ++calls_since_pump % 64 == 0) {
    // Run V8's own foreground tasks (GC, compilation) posted to this isolate. Not after every
    // call: looking takes a lock, and the tasks are not urgent.
    while (v8::platform::PumpMessageLoop(Platform(), isolate_)) {
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Engine>> CreateV8Engine(Clock& clock, const EngineOptions& options) {
  Platform();
  return std::unique_ptr<Engine>(std::make_unique<V8Engine>(clock, options));
}

}  // namespace wasmlet::engine::v8backend
