// Status and Result: how errors travel across wasmlet's module boundaries.
//
// A Status is a code plus a message written for the person who has to act on it
// ("module imports env.foo (i32) -> i32, which the host does not provide").
// Result<T> holds either a value or a non-OK Status. Neither throws.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace wasmlet {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is malformed (bad wasm, bad config)
  kNotFound,            // a named thing does not exist
  kOutOfRange,          // an offset or length falls outside its bounds
  kFailedPrecondition,  // the object is in a state that forbids the call
  kResourceExhausted,   // a limit was hit (memory cap, queue full)
  kDeadlineExceeded,    // a guest call ran past its deadline and was stopped
  kTrap,                // the guest trapped (unreachable, division by zero, ...)
  kExit,                // the guest asked to exit (WASI proc_exit)
  kUnimplemented,
  kInternal,
  kAlreadyExists,  // something with that name exists already
  kUnavailable,    // a service the call needs does not answer (try again later)
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "Trap: integer divide by zero"; "OK" for success.
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : state_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(state_).ok() && "a Result holding a Status must hold an error");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(state_);
  }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace wasmlet

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define WASMLET_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::wasmlet::Status wasmlet_status_ = (expr);        \
    if (!wasmlet_status_.ok()) return wasmlet_status_; \
  } while (0)
