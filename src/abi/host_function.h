// Host functions registered with their C++ signature. The wasm type of the import is derived
// from the parameter types (uint32_t / int32_t -> i32, uint64_t / int64_t -> i64), so no arity
// is counted by hand and no argument is read by index; and one trampoline applies what every
// host call shares, for the proxy_* functions and WASI alike: it introduces the calling
// instance to its PluginVm, and it refuses calls made from inside the guest's allocator
// (ABI: only logging, clocks and poll_oneoff may run there).
//
//   Result<WasmResult> GetBufferBytes(PluginVm& vm, uint32_t type, uint32_t start, ...);
//   AddHostFunction<GetBufferBytes>(host, "env", "proxy_get_buffer_bytes");
//
// The first parameter says what the function needs:
// - PluginVm&: an instance the ABI layer drives; any other instance gets INTERNAL_FAILURE.
// - const HostCall&: the instance, and its PluginVm when there is one (WASI).
// The return type says what the guest gets: WasmResult or WasiErrno (one i32), or void. An
// error Status (a Result<...> holding one) ends the guest's call: it traps, or exits.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "abi/abi.h"
#include "abi/plugin_vm.h"
#include "engine/engine.h"

namespace wasmlet::abi {

// Whether a host function may run inside the guest's allocator.
enum class InAllocator { kRefuse, kAllow };

struct HostCall {
  engine::Instance& instance;
  PluginVm* vm;  // null for an instance the ABI layer does not drive
};

namespace host_function_detail {

template <typename T>
constexpr engine::ValType kWasmType =
    std::is_same_v<T, uint32_t> || std::is_same_v<T, int32_t> ? engine::ValType::kI32 : engine::ValType::kI64;

template <typename T>
constexpr bool kIsWasmInteger = std::is_same_v<T, uint32_t> || std::is_same_v<T, int32_t> ||
                                std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t>;

template <typename T>
T FromValue(const engine::Value& value) {
  if constexpr (kWasmType<T> == engine::ValType::kI32) {
    return static_cast<T>(value.i32);
  } else {
    return static_cast<T>(value.i64);
  }
}

// The i32 a guest receives for a host function's answer.
template <typename Answer>
int32_t ToI32(Answer answer) {
  return static_cast<int32_t>(answer);
}

template <typename R>
struct ReturnOf {
  using Answer = R;  // WasmResult, WasiErrno or void
};
template <typename A>
struct ReturnOf<Result<A>> {
  using Answer = A;
};
template <>
struct ReturnOf<Status> {  // always an error: the call ends (proc_exit)
  using Answer = void;
};

template <typename F>
struct Signature;
template <typename R, typename Context, typename... Params>
struct Signature<R (*)(Context, Params...)> {
  static_assert((kIsWasmInteger<Params> && ...), "host function parameters are wasm integers");
  using Return = R;
  using Answer = typename ReturnOf<R>::Answer;
  static constexpr bool kNeedsVm = std::is_same_v<Context, PluginVm&>;
  static engine::FunctionType Type() {
    engine::FunctionType type;
    type.params = {kWasmType<Params>...};
    if constexpr (!std::is_void_v<Answer>) type.results = {engine::ValType::kI32};
    return type;
  }
  template <auto Fn, size_t... I>
  static R Call(const HostCall& call, std::span<const engine::Value> args, std::index_sequence<I...>) {
    if constexpr (kNeedsVm) {
      return Fn(*call.vm, FromValue<Params>(args[I])...);
    } else {
      return Fn(call, FromValue<Params>(args[I])...);
    }
  }
  static constexpr size_t kArity = sizeof...(Params);
};

// Runs one host call: the shared rules, then `Fn` with its arguments converted.
template <auto Fn>
Status Trampoline(const char* name, InAllocator in_allocator, engine::Instance& caller,
                  std::span<const engine::Value> args, std::span<engine::Value> results) {
  using S = Signature<decltype(Fn)>;
  auto* vm = static_cast<PluginVm*>(caller.host_data());
  if (vm != nullptr) {
    vm->AttachCaller(caller);
    if (vm->in_allocator() && in_allocator == InAllocator::kRefuse) {
      return Status(StatusCode::kTrap, std::string("the guest's allocator called ") + name +
                                           "; only logging, clocks and poll_oneoff may run inside it");
    }
  } else if constexpr (S::kNeedsVm) {
    // An instance wasmlet's ABI layer does not drive (an engine test, say): nothing to act on.
    if (!results.empty()) results[0].i32 = ToI32(WasmResult::kInternalFailure);
    return Status::Ok();
  }
  const HostCall call{caller, vm};
  using R = typename S::Return;
  if constexpr (std::is_void_v<R>) {
    S::template Call<Fn>(call, args, std::make_index_sequence<S::kArity>{});
    return Status::Ok();
  } else if constexpr (std::is_same_v<R, Status>) {
    return S::template Call<Fn>(call, args, std::make_index_sequence<S::kArity>{});
  } else if constexpr (std::is_same_v<R, typename S::Answer>) {
    results[0].i32 = ToI32(S::template Call<Fn>(call, args, std::make_index_sequence<S::kArity>{}));
    return Status::Ok();
  } else {
    R r = S::template Call<Fn>(call, args, std::make_index_sequence<S::kArity>{});
    if (!r.ok()) return r.status();
    if constexpr (!std::is_void_v<typename S::Answer>) results[0].i32 = ToI32(*r);
    return Status::Ok();
  }
}

}  // namespace host_function_detail

// Registers `Fn` as module.name with the wasm type its C++ signature gives.
template <auto Fn>
void AddHostFunction(engine::HostFunctions& host, const std::string& module, const char* name,
                     InAllocator in_allocator = InAllocator::kRefuse) {
  using S = host_function_detail::Signature<decltype(Fn)>;
  host.Add(module, name, S::Type(),
           [name, in_allocator](engine::Instance& caller, std::span<const engine::Value> args,
                                std::span<engine::Value> results) {
             return host_function_detail::Trampoline<Fn>(name, in_allocator, caller, args, results);
           });
}

}  // namespace wasmlet::abi
