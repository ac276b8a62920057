// WASI preview 1 (ABI §8): the whole function set, so that every SDK's module links.
// Real behaviour for what plugins use (stdout/stderr to the log, clocks, random, exit);
// a clean "no files, no sockets" answer for the rest.
#include "abi/wasi.h"

#include <sys/random.h>

#include <chrono>

#include "abi/host_function.h"
#include "abi/plugin_vm.h"

namespace wasmlet::abi {
namespace {

using engine::HostFunctions;
using E = WasiErrno;

constexpr uint32_t kMaxRandomBytes = 64 * 1024;
constexpr uint32_t kMaxIovecs = 1024;

bool WriteU32(const HostCall& c, uint32_t ptr, uint32_t value) {
  return c.instance.WriteU32(ptr, value).ok();
}
bool WriteU64(const HostCall& c, uint32_t ptr, uint64_t value) {
  return c.instance.WriteU64(ptr, value).ok();
}

bool IsStdio(uint32_t fd) { return fd == 1 || fd == 2; }

// Bytes written to fd 1 and 2 go to the log, one call a line, without its trailing newline.
E Write(const HostCall& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t written_out) {
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
  return WriteU32(c, written_out, total) ? E::kSuccess : E::kFault;
}

E FdWrite(const HostCall& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t written_out) {
  return Write(c, fd, iovs, iovs_len, written_out);
}
E FdPwrite(const HostCall& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint64_t /*offset*/,
           uint32_t written_out) {
  return Write(c, fd, iovs, iovs_len, written_out);
}

E ClockTimeGet(const HostCall& c, uint32_t clock_id, uint64_t /*precision*/, uint32_t time_out) {
  uint64_t ns = 0;
  switch (clock_id) {
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
  return WriteU64(c, time_out, ns) ? E::kSuccess : E::kFault;
}

E ClockResGet(const HostCall& c, uint32_t clock_id, uint32_t resolution_out) {
  if (clock_id > 1) return E::kNotsup;
  return WriteU64(c, resolution_out, 1) ? E::kSuccess : E::kFault;
}

E RandomGet(const HostCall& c, uint32_t buffer_ptr, uint32_t size) {
  if (size > kMaxRandomBytes) return E::kInval;
  auto buffer = c.instance.Memory(buffer_ptr, size);
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
E ZeroSizes(const HostCall& c, uint32_t count_out, uint32_t size_out) {
  return WriteU32(c, count_out, 0) && WriteU32(c, size_out, 0) ? E::kSuccess : E::kFault;
}

// A fixed answer, whatever the arguments (their types give the import's signature).
template <E kAnswer, typename... Params>
E Answer(const HostCall&, Params...) {
  return kAnswer;
}

// What needs no work on stdout and stderr succeeds there; other descriptors do not exist.
template <typename... Rest>
E StdioSuccess(const HostCall&, uint32_t fd, Rest...) {
  return IsStdio(fd) ? E::kSuccess : E::kBadf;
}

E FdSeek(const HostCall& c, uint32_t /*fd*/, int64_t /*offset*/, uint32_t /*whence*/, uint32_t offset_out) {
  return WriteU64(c, offset_out, 0) ? E::kSuccess : E::kFault;
}
E FdTell(const HostCall& c, uint32_t /*fd*/, uint32_t offset_out) {
  return WriteU64(c, offset_out, 0) ? E::kSuccess : E::kFault;
}

E FdFdstatGet(const HostCall& c, uint32_t fd, uint32_t stat_out) {
  if (!IsStdio(fd)) return E::kBadf;
  auto stat = c.instance.Memory(stat_out, 24);
  if (!stat.ok()) return E::kFault;
  std::fill(stat->begin(), stat->end(), 0);
  (*stat)[0] = 2;     // filetype: character device
  (*stat)[8] = 0x40;  // rights_base: FD_WRITE
  return E::kSuccess;
}

E FdFilestatGet(const HostCall& c, uint32_t fd, uint32_t stat_out) {
  if (!IsStdio(fd)) return E::kBadf;
  auto stat = c.instance.Memory(stat_out, 64);
  if (!stat.ok()) return E::kFault;
  std::fill(stat->begin(), stat->end(), 0);
  (*stat)[16] = 2;  // filetype: character device
  return E::kSuccess;
}

E PollOneoff(const HostCall& c, uint32_t /*in*/, uint32_t /*out*/, uint32_t /*subscriptions*/,
             uint32_t events_out) {
  // Succeeds with no events: the Go runtime aborts if this fails (ABI §8.3).
  return WriteU32(c, events_out, 0) ? E::kSuccess : E::kFault;
}

// proc_exit never returns to the guest: it ends the current call (ABI §8.3).
Status ProcExit(const HostCall& c, int32_t code) {
  if (c.vm) c.vm->set_exit_code(code);
  return Status(StatusCode::kExit, "the guest called proc_exit(" + std::to_string(code) + ")");
}

}  // namespace

void AddWasi(HostFunctions& h, const std::string& m) {
  using u32 = uint32_t;
  using u64 = uint64_t;
  const auto allow = InAllocator::kAllow;
  AddHostFunction<Answer<E::kSuccess, u32, u32>>(h, m, "args_get");
  AddHostFunction<ZeroSizes>(h, m, "args_sizes_get");
  AddHostFunction<Answer<E::kSuccess, u32, u32>>(h, m, "environ_get");
  AddHostFunction<ZeroSizes>(h, m, "environ_sizes_get");
  AddHostFunction<ClockResGet>(h, m, "clock_res_get", allow);
  AddHostFunction<ClockTimeGet>(h, m, "clock_time_get", allow);
  AddHostFunction<StdioSuccess<u64, u64, u32>>(h, m, "fd_advise");
  AddHostFunction<StdioSuccess<u64, u64>>(h, m, "fd_allocate");
  AddHostFunction<Answer<E::kSuccess, u32>>(h, m, "fd_close");
  AddHostFunction<StdioSuccess<>>(h, m, "fd_datasync");
  AddHostFunction<FdFdstatGet>(h, m, "fd_fdstat_get");
  AddHostFunction<Answer<E::kNosys, u32, u32>>(h, m, "fd_fdstat_set_flags");
  AddHostFunction<StdioSuccess<u64, u64>>(h, m, "fd_fdstat_set_rights");
  AddHostFunction<FdFilestatGet>(h, m, "fd_filestat_get");
  AddHostFunction<StdioSuccess<u64>>(h, m, "fd_filestat_set_size");
  AddHostFunction<StdioSuccess<u64, u64, u32>>(h, m, "fd_filestat_set_times");
  AddHostFunction<Answer<E::kNosys, u32, u32, u32, u64, u32>>(h, m, "fd_pread");
  AddHostFunction<Answer<E::kBadf, u32, u32>>(h, m, "fd_prestat_get");  // no preopened directories
  AddHostFunction<Answer<E::kNosys, u32, u32, u32>>(h, m, "fd_prestat_dir_name");
  AddHostFunction<FdPwrite>(h, m, "fd_pwrite");
  AddHostFunction<Answer<E::kNosys, u32, u32, u32, u32>>(h, m, "fd_read");
  AddHostFunction<Answer<E::kNotdir, u32, u32, u32, u64, u32>>(h, m, "fd_readdir");
  AddHostFunction<Answer<E::kNotsup, u32, u32>>(h, m, "fd_renumber");
  AddHostFunction<FdSeek>(h, m, "fd_seek");
  AddHostFunction<StdioSuccess<>>(h, m, "fd_sync");
  AddHostFunction<FdTell>(h, m, "fd_tell");
  AddHostFunction<FdWrite>(h, m, "fd_write", allow);
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32>>(h, m, "path_create_directory");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32, u32, u32>>(h, m, "path_filestat_get");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32, u32, u64, u64, u32>>(h, m, "path_filestat_set_times");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32, u32, u32, u32, u32>>(h, m, "path_link");
  AddHostFunction<Answer<E::kNoent, u32, u32, u32, u32, u32, u64, u64, u32, u32>>(h, m, "path_open");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32, u32, u32, u32>>(h, m, "path_readlink");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32>>(h, m, "path_remove_directory");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32, u32, u32, u32>>(h, m, "path_rename");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32, u32, u32>>(h, m, "path_symlink");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32>>(h, m, "path_unlink_file");
  AddHostFunction<PollOneoff>(h, m, "poll_oneoff", allow);
  AddHostFunction<Answer<E::kNosys, u32>>(h, m, "proc_raise");
  AddHostFunction<Answer<E::kSuccess>>(h, m, "sched_yield", allow);
  AddHostFunction<RandomGet>(h, m, "random_get");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32>>(h, m, "sock_accept");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32, u32, u32, u32>>(h, m, "sock_recv");
  AddHostFunction<Answer<E::kNotsup, u32, u32, u32, u32, u32>>(h, m, "sock_send");
  AddHostFunction<Answer<E::kNotsup, u32, u32>>(h, m, "sock_shutdown");
  AddHostFunction<ProcExit>(h, m, "proc_exit");
}

}  // namespace wasmlet::abi
