// WASI preview 1 (ABI §8): the whole function set, so that every SDK's module links.
// Real behaviour for what plugins use (stdout/stderr to the log, clocks, random, exit);
// a clean "no files, no sockets" answer for the rest.
#include "abi/wasi.h"

#include <sys/random.h>

#include <chrono>

#include "abi/plugin_vm.h"

namespace wasmlet::abi {
namespace {

using engine::FunctionType;
using engine::HostFunctions;
using engine::Instance;
using engine::ValType;
using engine::Value;
using E = WasiErrno;

constexpr ValType I32 = ValType::kI32;
constexpr ValType I64 = ValType::kI64;
constexpr uint32_t kMaxRandomBytes = 64 * 1024;
constexpr uint32_t kMaxIovecs = 1024;

struct Call {
  Instance& instance;
  PluginVm* vm;  // null for an instance the ABI layer does not drive
  std::span<const Value> args;
  uint32_t u(size_t i) const { return static_cast<uint32_t>(args[i].i32); }
  bool WriteU32(uint64_t ptr, uint32_t v) const { return instance.WriteU32(ptr, v).ok(); }
  bool WriteU64(uint64_t ptr, uint64_t v) const { return instance.WriteU64(ptr, v).ok(); }
};

using WasiFunction = E (*)(const Call& call);

bool IsStdio(uint32_t fd) { return fd == 1 || fd == 2; }

void Add(HostFunctions& host, const std::string& module, const char* name, std::vector<ValType> params,
         WasiFunction fn, bool allowed_in_allocator = false) {
  host.Add(module, name, FunctionType{std::move(params), {I32}},
           [fn, name, allowed_in_allocator](Instance& caller, std::span<const Value> args,
                                            std::span<Value> results) -> Status {
             auto* vm = static_cast<PluginVm*>(caller.host_data());
             if (vm) {
               vm->AttachCaller(caller);
               if (vm->in_allocator() && !allowed_in_allocator) {
                 return Status(StatusCode::kTrap,
                               std::string("the guest's allocator called WASI ") + name +
                                   "; only logging, clocks and poll_oneoff may run inside it");
               }
             }
             results[0].i32 = static_cast<int32_t>(fn(Call{caller, vm, args}));
             return Status::Ok();
           });
}

// Bytes written to fd 1 and 2 go to the log, one call a line, without its trailing newline.
E Write(const Call& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t written_out) {
  if (!IsStdio(fd)) return E::kBadf;
  if (iovs_len > kMaxIovecs) return E::kInval;
  std::string text;
  for (uint32_t i = 0; i < iovs_len; ++i) {
    auto buf = c.instance.ReadU32(uint64_t{iovs} + i * 8);
    auto len = c.instance.ReadU32(uint64_t{iovs} + i * 8 + 4);
    if (!buf.ok() || !len.ok()) return E::kFault;
    auto bytes = c.instance.Memory(*buf, *len);
    if (!bytes.ok()) return E::kFault;
    text.append(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  }
  if (!c.instance.Memory(written_out, 4).ok()) return E::kFault;
  const uint32_t total = static_cast<uint32_t>(text.size());
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (c.vm && !text.empty()) c.vm->Log(fd == 1 ? LogLevel::kInfo : LogLevel::kError, text);
  return c.WriteU32(written_out, total) ? E::kSuccess : E::kFault;
}

E FdWrite(const Call& c) { return Write(c, c.u(0), c.u(1), c.u(2), c.u(3)); }
E FdPwrite(const Call& c) { return Write(c, c.u(0), c.u(1), c.u(2), c.u(4)); }

E ClockTimeGet(const Call& c) {
  uint64_t ns = 0;
  switch (c.u(0)) {
    case 0:
      ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
      break;
    case 1:
      ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
               .count();
      break;
    default: return E::kNotsup;
  }
  return c.WriteU64(c.u(2), ns) ? E::kSuccess : E::kFault;
}

E ClockResGet(const Call& c) {
  if (c.u(0) > 1) return E::kNotsup;
  return c.WriteU64(c.u(1), 1) ? E::kSuccess : E::kFault;
}

E RandomGet(const Call& c) {
  if (c.u(1) > kMaxRandomBytes) return E::kInval;
  auto buffer = c.instance.Memory(c.u(0), c.u(1));
  if (!buffer.ok()) return E::kFault;
  for (size_t filled = 0; filled < buffer->size();) {
    ssize_t n = getrandom(buffer->data() + filled, buffer->size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return E::kNosys;
    }
    filled += static_cast<size_t>(n);
  }
  return E::kSuccess;
}

// No arguments and no environment: two zero counts.
E ZeroSizes(const Call& c) {
  return c.WriteU32(c.u(0), 0) && c.WriteU32(c.u(1), 0) ? E::kSuccess : E::kFault;
}
E Success(const Call&) { return E::kSuccess; }
E Nosys(const Call&) { return E::kNosys; }
E Notsup(const Call&) { return E::kNotsup; }
E Badf(const Call&) { return E::kBadf; }
E Noent(const Call&) { return E::kNoent; }
E Notdir(const Call&) { return E::kNotdir; }
E StdioSuccess(const Call& c) { return IsStdio(c.u(0)) ? E::kSuccess : E::kBadf; }

E FdSeek(const Call& c) {  // (fd, offset i64, whence, new_offset*)
  if (!c.instance.Memory(c.u(3), 8).ok()) return E::kFault;
  return c.WriteU64(c.u(3), 0) ? E::kSuccess : E::kFault;
}
E FdTell(const Call& c) { return c.WriteU64(c.u(1), 0) ? E::kSuccess : E::kFault; }

E FdFdstatGet(const Call& c) {
  if (!IsStdio(c.u(0))) return E::kBadf;
  auto stat = c.instance.Memory(c.u(1), 24);
  if (!stat.ok()) return E::kFault;
  std::fill(stat->begin(), stat->end(), 0);
  (*stat)[0] = 2;     // filetype: character device
  (*stat)[8] = 0x40;  // rights_base: FD_WRITE
  return E::kSuccess;
}

E FdFilestatGet(const Call& c) {
  if (!IsStdio(c.u(0))) return E::kBadf;
  auto stat = c.instance.Memory(c.u(1), 64);
  if (!stat.ok()) return E::kFault;
  std::fill(stat->begin(), stat->end(), 0);
  (*stat)[16] = 2;  // filetype: character device
  return E::kSuccess;
}

E PollOneoff(const Call& c) {
  // Succeeds with no events: the Go runtime aborts if this fails (ABI §8.3).
  return c.WriteU32(c.u(3), 0) ? E::kSuccess : E::kFault;
}

}  // namespace

void AddWasi(HostFunctions& h, const std::string& m) {
  const bool allow = true;
  Add(h, m, "args_get", {I32, I32}, Success);
  Add(h, m, "args_sizes_get", {I32, I32}, ZeroSizes);
  Add(h, m, "environ_get", {I32, I32}, Success);
  Add(h, m, "environ_sizes_get", {I32, I32}, ZeroSizes);
  Add(h, m, "clock_res_get", {I32, I32}, ClockResGet, allow);
  Add(h, m, "clock_time_get", {I32, I64, I32}, ClockTimeGet, allow);
  Add(h, m, "fd_advise", {I32, I64, I64, I32}, StdioSuccess);
  Add(h, m, "fd_allocate", {I32, I64, I64}, StdioSuccess);
  Add(h, m, "fd_close", {I32}, Success);
  Add(h, m, "fd_datasync", {I32}, StdioSuccess);
  Add(h, m, "fd_fdstat_get", {I32, I32}, FdFdstatGet);
  Add(h, m, "fd_fdstat_set_flags", {I32, I32}, Nosys);
  Add(h, m, "fd_fdstat_set_rights", {I32, I64, I64}, StdioSuccess);
  Add(h, m, "fd_filestat_get", {I32, I32}, FdFilestatGet);
  Add(h, m, "fd_filestat_set_size", {I32, I64}, StdioSuccess);
  Add(h, m, "fd_filestat_set_times", {I32, I64, I64, I32}, StdioSuccess);
  Add(h, m, "fd_pread", {I32, I32, I32, I64, I32}, Nosys);
  Add(h, m, "fd_prestat_get", {I32, I32}, Badf);  // no preopened directories
  Add(h, m, "fd_prestat_dir_name", {I32, I32, I32}, Nosys);
  Add(h, m, "fd_pwrite", {I32, I32, I32, I64, I32}, FdPwrite);
  Add(h, m, "fd_read", {I32, I32, I32, I32}, Nosys);
  Add(h, m, "fd_readdir", {I32, I32, I32, I64, I32}, Notdir);
  Add(h, m, "fd_renumber", {I32, I32}, Notsup);
  Add(h, m, "fd_seek", {I32, I64, I32, I32}, FdSeek);
  Add(h, m, "fd_sync", {I32}, StdioSuccess);
  Add(h, m, "fd_tell", {I32, I32}, FdTell);
  Add(h, m, "fd_write", {I32, I32, I32, I32}, FdWrite, allow);
  Add(h, m, "path_create_directory", {I32, I32, I32}, Notsup);
  Add(h, m, "path_filestat_get", {I32, I32, I32, I32, I32}, Notsup);
  Add(h, m, "path_filestat_set_times", {I32, I32, I32, I32, I64, I64, I32}, Notsup);
  Add(h, m, "path_link", {I32, I32, I32, I32, I32, I32, I32}, Notsup);
  Add(h, m, "path_open", {I32, I32, I32, I32, I32, I64, I64, I32, I32}, Noent);
  Add(h, m, "path_readlink", {I32, I32, I32, I32, I32, I32}, Notsup);
  Add(h, m, "path_remove_directory", {I32, I32, I32}, Notsup);
  Add(h, m, "path_rename", {I32, I32, I32, I32, I32, I32}, Notsup);
  Add(h, m, "path_symlink", {I32, I32, I32, I32, I32}, Notsup);
  Add(h, m, "path_unlink_file", {I32, I32, I32}, Notsup);
  Add(h, m, "poll_oneoff", {I32, I32, I32, I32}, PollOneoff, allow);
  Add(h, m, "proc_raise", {I32}, Nosys);
  Add(h, m, "sched_yield", {}, Success, allow);
  Add(h, m, "random_get", {I32, I32}, RandomGet);
  Add(h, m, "sock_accept", {I32, I32, I32}, Notsup);
  Add(h, m, "sock_recv", {I32, I32, I32, I32, I32, I32}, Notsup);
  Add(h, m, "sock_send", {I32, I32, I32, I32, I32}, Notsup);
  Add(h, m, "sock_shutdown", {I32, I32}, Notsup);
  // proc_exit never returns to the guest: it ends the current call (ABI §8.3).
  h.Add(m, "proc_exit", FunctionType{{I32}, {}},
        [](Instance& caller, std::span<const Value> args, std::span<Value>) -> Status {
          if (auto* vm = static_cast<PluginVm*>(caller.host_data())) vm->set_exit_code(args[0].i32);
          return Status(StatusCode::kExit, "the guest called proc_exit(" + std::to_string(args[0].i32) + ")");
        });
}

}  // namespace wasmlet::abi
