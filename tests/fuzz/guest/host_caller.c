// Guest of fuzz_guest: runs the request body as a program of host calls, so that libFuzzer
// chooses which proxy_* and WASI functions a guest calls, in what order and with what
// arguments. The host must survive any of it: a guest may trap or get an error status, the
// host process may not crash, leak or hit undefined behaviour.
//
// The program (the request body, at most 64 KiB) is a list of steps. A step is one byte that
// picks an operation (modulo their number: the special steps of Run, then the host calls of
// HostCall), then one encoded argument per parameter. An argument starts with a tag byte:
//   tag & 3 == 0   a raw u32: the next 4 bytes, little-endian (wild pointers and lengths)
//   tag & 3 == 1   the small number tag >> 2 (0..63)
//   tag & 3 == 2   a pointer into the program itself, at the offset given by the next 2 bytes
//                  (names, values and header maps come from the input this way)
//   tag & 3 == 3   slot (tag >> 3) of a 32 x 8-byte scratch area: its address when bit 2 is
//                  set (out-parameters land there), else the u32 stored in it (so a queue id
//                  or a token the host returned can be passed back)
// An i64 parameter takes two arguments, low half first. Missing bytes read as 0.
//
// The program starts in proxy_on_request_body; the step "yield" returns from the callback with
// a result of its choosing, and every later callback (trailers, response, done, log, delete,
// tick, queue ready) runs the steps that remain. Other special steps switch the allocator into
// answering wild addresses or calling host functions, grow memory, trap, or end the program
// (what follows is then only data).
#include <stddef.h>
#include <stdint.h>

#define ENV(name) __attribute__((import_module("env"), import_name(#name)))
#define WASI(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

typedef uint32_t u32;
typedef uint64_t u64;

// Every pointer and size is a u32 here: the host sees the same i32 signature, and the
// program's arguments need no casts.
ENV(proxy_done) u32 proxy_done(void);
ENV(proxy_set_effective_context) u32 proxy_set_effective_context(u32);
ENV(proxy_log) u32 proxy_log(u32, u32, u32);
ENV(proxy_get_log_level) u32 proxy_get_log_level(u32);
ENV(proxy_get_current_time_nanoseconds) u32 proxy_get_current_time_nanoseconds(u32);
ENV(proxy_set_tick_period_milliseconds) u32 proxy_set_tick_period_milliseconds(u32);
ENV(proxy_get_buffer_bytes) u32 proxy_get_buffer_bytes(u32, u32, u32, u32, u32);
ENV(proxy_set_buffer_bytes) u32 proxy_set_buffer_bytes(u32, u32, u32, u32, u32);
ENV(proxy_get_buffer_status) u32 proxy_get_buffer_status(u32, u32, u32);
ENV(proxy_get_header_map_size) u32 proxy_get_header_map_size(u32, u32);
ENV(proxy_get_header_map_pairs) u32 proxy_get_header_map_pairs(u32, u32, u32);
ENV(proxy_set_header_map_pairs) u32 proxy_set_header_map_pairs(u32, u32, u32);
ENV(proxy_get_header_map_value) u32 proxy_get_header_map_value(u32, u32, u32, u32, u32);
ENV(proxy_add_header_map_value) u32 proxy_add_header_map_value(u32, u32, u32, u32, u32);
ENV(proxy_replace_header_map_value) u32 proxy_replace_header_map_value(u32, u32, u32, u32, u32);
ENV(proxy_remove_header_map_value) u32 proxy_remove_header_map_value(u32, u32, u32);
ENV(proxy_continue_stream) u32 proxy_continue_stream(u32);
ENV(proxy_close_stream) u32 proxy_close_stream(u32);
ENV(proxy_get_status) u32 proxy_get_status(u32, u32, u32);
ENV(proxy_send_local_response) u32 proxy_send_local_response(u32, u32, u32, u32, u32, u32, u32, u32);
ENV(proxy_http_call) u32 proxy_http_call(u32, u32, u32, u32, u32, u32, u32, u32, u32, u32);
ENV(proxy_grpc_call) u32 proxy_grpc_call(u32, u32, u32, u32, u32, u32, u32, u32, u32, u32, u32, u32);
ENV(proxy_grpc_stream) u32 proxy_grpc_stream(u32, u32, u32, u32, u32, u32, u32, u32, u32);
ENV(proxy_grpc_send) u32 proxy_grpc_send(u32, u32, u32, u32);
ENV(proxy_grpc_cancel) u32 proxy_grpc_cancel(u32);
ENV(proxy_grpc_close) u32 proxy_grpc_close(u32);
ENV(proxy_set_shared_data) u32 proxy_set_shared_data(u32, u32, u32, u32, u32);
ENV(proxy_get_shared_data) u32 proxy_get_shared_data(u32, u32, u32, u32, u32);
ENV(proxy_register_shared_queue) u32 proxy_register_shared_queue(u32, u32, u32);
ENV(proxy_resolve_shared_queue) u32 proxy_resolve_shared_queue(u32, u32, u32, u32, u32);
ENV(proxy_enqueue_shared_queue) u32 proxy_enqueue_shared_queue(u32, u32, u32);
ENV(proxy_dequeue_shared_queue) u32 proxy_dequeue_shared_queue(u32, u32, u32);
ENV(proxy_define_metric) u32 proxy_define_metric(u32, u32, u32, u32);
ENV(proxy_record_metric) u32 proxy_record_metric(u32, u64);
ENV(proxy_increment_metric) u32 proxy_increment_metric(u32, u64);
ENV(proxy_get_metric) u32 proxy_get_metric(u32, u32);
ENV(proxy_get_property) u32 proxy_get_property(u32, u32, u32, u32);
ENV(proxy_set_property) u32 proxy_set_property(u32, u32, u32, u32);
ENV(proxy_call_foreign_function) u32 proxy_call_foreign_function(u32, u32, u32, u32, u32, u32);
// ABI 0.1.0
ENV(proxy_get_configuration) u32 proxy_get_configuration(u32, u32);
ENV(proxy_continue_request) u32 proxy_continue_request(void);
ENV(proxy_continue_response) u32 proxy_continue_response(void);
ENV(proxy_clear_route_cache) u32 proxy_clear_route_cache(void);
// Layotto's legacy names and extensions; two share a name with a spec function of another shape.
ENV(proxy_resume_http_request) u32 legacy_resume_http_request(void);
ENV(proxy_resume_http_response) u32 legacy_resume_http_response(void);
ENV(proxy_resume_downstream) u32 legacy_resume_downstream(void);
ENV(proxy_resume_upstream) u32 legacy_resume_upstream(void);
ENV(proxy_send_http_response) u32 legacy_send_http_response(u32, u32, u32, u32, u32, u32, u32, u32);
ENV(proxy_dispatch_http_call) u32 legacy_dispatch_http_call(u32, u32, u32, u32, u32, u32, u32, u32, u32, u32);
ENV(proxy_grpc_call) u32 legacy_grpc_call(u32, u32, u32, u32, u32, u32, u32, u32, u32, u32);
ENV(proxy_dispatch_grpc_call) u32 legacy_dispatch_grpc_call(u32, u32, u32, u32, u32, u32, u32, u32, u32, u32);
ENV(proxy_open_grpc_stream) u32 legacy_open_grpc_stream(u32, u32, u32, u32, u32, u32, u32);
ENV(proxy_send_grpc_call_message) u32 legacy_send_grpc_call_message(u32, u32, u32, u32);
ENV(proxy_cancel_grpc_call) u32 legacy_cancel_grpc_call(u32);
ENV(proxy_close_grpc_call) u32 legacy_close_grpc_call(u32);
ENV(proxy_remove_metric) u32 legacy_remove_metric(u32);
ENV(proxy_remove_shared_queue) u32 legacy_remove_shared_queue(u32);
ENV(proxy_resolve_shared_queue) u32 legacy_resolve_shared_queue(u32, u32, u32);
ENV(proxy_get_state) u32 proxy_get_state(u32, u32, u32, u32, u32, u32);
ENV(proxy_invoke_service) u32 proxy_invoke_service(u32, u32, u32, u32, u32, u32, u32, u32);
ENV(emscripten_notify_memory_growth) void emscripten_notify_memory_growth(u32);
ENV(pthread_equal) u32 pthread_equal(u32, u32);
// WASI preview 1: what SDKs' runtimes call, and the calls that read or write guest memory.
WASI(args_get) u32 wasi_args_get(u32, u32);
WASI(args_sizes_get) u32 wasi_args_sizes_get(u32, u32);
WASI(environ_get) u32 wasi_environ_get(u32, u32);
WASI(environ_sizes_get) u32 wasi_environ_sizes_get(u32, u32);
WASI(clock_res_get) u32 wasi_clock_res_get(u32, u32);
WASI(clock_time_get) u32 wasi_clock_time_get(u32, u64, u32);
WASI(fd_close) u32 wasi_fd_close(u32);
WASI(fd_fdstat_get) u32 wasi_fd_fdstat_get(u32, u32);
WASI(fd_filestat_get) u32 wasi_fd_filestat_get(u32, u32);
WASI(fd_prestat_get) u32 wasi_fd_prestat_get(u32, u32);
WASI(fd_prestat_dir_name) u32 wasi_fd_prestat_dir_name(u32, u32, u32);
WASI(fd_pwrite) u32 wasi_fd_pwrite(u32, u32, u32, u64, u32);
WASI(fd_read) u32 wasi_fd_read(u32, u32, u32, u32);
WASI(fd_seek) u32 wasi_fd_seek(u32, u64, u32, u32);
WASI(fd_tell) u32 wasi_fd_tell(u32, u32);
WASI(fd_write) u32 wasi_fd_write(u32, u32, u32, u32);
WASI(path_open) u32 wasi_path_open(u32, u32, u32, u32, u32, u64, u64, u32, u32);
WASI(poll_oneoff) u32 wasi_poll_oneoff(u32, u32, u32, u32);
WASI(proc_exit) void wasi_proc_exit(u32);
WASI(random_get) u32 wasi_random_get(u32, u32);
WASI(sched_yield) u32 wasi_sched_yield(void);

// ---- the program -------------------------------------------------------------------------------

#define kProgramCapacity 65536
static uint8_t program[kProgramCapacity];
static u32 program_size;
static u32 pc;  // next byte of the program
static u64 scratch[32];

static u32 NextByte(void) { return pc < program_size ? program[pc++] : 0; }

static u32 NextArg(void) {
  const u32 tag = NextByte();
  switch (tag & 3) {
    case 0: {
      u32 v = NextByte();
      v |= NextByte() << 8;
      v |= NextByte() << 16;
      return v | NextByte() << 24;
    }
    case 1: return tag >> 2;
    case 2: {
      u32 offset = NextByte();
      offset |= NextByte() << 8;
      return (u32)(uintptr_t)program + offset;
    }
    default: {
      u64* slot = &scratch[(tag >> 3) & 31];
      return (tag & 4) ? (u32)(uintptr_t)slot : (u32)*slot;
    }
  }
}

static u64 NextArg64(void) {
  const u64 low = NextArg();
  return low | (u64)NextArg() << 32;
}

// ---- the allocator -----------------------------------------------------------------------------

static uint8_t heap[1 << 16];
static u32 heap_used;
static u32 reading_program;  // the next allocation is the program's own buffer
// kWild answers allocator_value as the address; kLogs and kCallsDone call a host function that is
// allowed (proxy_log) or refused (proxy_done) inside the allocator.
static enum { kNormal, kWild, kLogs, kCallsDone, kAllocatorModes } allocator_mode;
static u32 allocator_value;

EXPORT(proxy_on_memory_allocate) u32 on_memory_allocate(u32 size) {
  if (reading_program) {
    reading_program = 0;
    return size <= kProgramCapacity ? (u32)(uintptr_t)program : 0;
  }
  if (allocator_mode == kWild) return allocator_value;
  if (allocator_mode == kLogs) proxy_log(1, (u32)(uintptr_t) "allocating", 10);
  if (allocator_mode == kCallsDone) proxy_done();
  size = (size + 7) & ~7u;
  if (size > sizeof heap) return 0;
  if (size > sizeof heap - heap_used) heap_used = 0;  // old answers are dead by now: wrap around
  const u32 p = (u32)(uintptr_t)(heap + heap_used);
  heap_used += size;
  return p;
}

// ---- the interpreter ---------------------------------------------------------------------------

// Special steps; the host calls come after them (step kHostCalls + n is host call n).
enum { kYield, kAllocatorMode, kGrowMemory, kTrap, kEnd, kHostCalls };
#define kHostCallCount 83

// Reads `count` arguments into a[], in program order (C leaves the order of a call's argument
// expressions unspecified, so they are never read inside the call).
#define ARGS(count) ARGS2(0, (count)-1)
// Reads a[first..last] (after an i64 argument).
#define ARGS2(first, last)                                        \
  do {                                                            \
    for (int i_ = (first); i_ <= (last); ++i_) a[i_] = NextArg(); \
  } while (0)

static void HostCall(u32 n) {
  u32 a[12];
  u64 x, y;
  // One line per host call: the switch is a table, kept out of clang-format's way.
  // clang-format off
  switch (n) {
    case 0: proxy_done(); break;
    case 1: ARGS(1); proxy_set_effective_context(a[0]); break;
    case 2: ARGS(3); proxy_log(a[0], a[1], a[2]); break;
    case 3: ARGS(1); proxy_get_log_level(a[0]); break;
    case 4: ARGS(1); proxy_get_current_time_nanoseconds(a[0]); break;
    case 5: ARGS(1); proxy_set_tick_period_milliseconds(a[0]); break;
    case 6: ARGS(5); proxy_get_buffer_bytes(a[0], a[1], a[2], a[3], a[4]); break;
    case 7: ARGS(5); proxy_set_buffer_bytes(a[0], a[1], a[2], a[3], a[4]); break;
    case 8: ARGS(3); proxy_get_buffer_status(a[0], a[1], a[2]); break;
    case 9: ARGS(2); proxy_get_header_map_size(a[0], a[1]); break;
    case 10: ARGS(3); proxy_get_header_map_pairs(a[0], a[1], a[2]); break;
    case 11: ARGS(3); proxy_set_header_map_pairs(a[0], a[1], a[2]); break;
    case 12: ARGS(5); proxy_get_header_map_value(a[0], a[1], a[2], a[3], a[4]); break;
    case 13: ARGS(5); proxy_add_header_map_value(a[0], a[1], a[2], a[3], a[4]); break;
    case 14: ARGS(5); proxy_replace_header_map_value(a[0], a[1], a[2], a[3], a[4]); break;
    case 15: ARGS(3); proxy_remove_header_map_value(a[0], a[1], a[2]); break;
    case 16: ARGS(1); proxy_continue_stream(a[0]); break;
    case 17: ARGS(1); proxy_close_stream(a[0]); break;
    case 18: ARGS(3); proxy_get_status(a[0], a[1], a[2]); break;
    case 19: ARGS(8); proxy_send_local_response(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]); break;
    case 20: ARGS(10); proxy_http_call(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]); break;
    case 21:
      ARGS(12);
      proxy_grpc_call(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]);
      break;
    case 22: ARGS(9); proxy_grpc_stream(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]); break;
    case 23: ARGS(4); proxy_grpc_send(a[0], a[1], a[2], a[3]); break;
    case 24: ARGS(1); proxy_grpc_cancel(a[0]); break;
    case 25: ARGS(1); proxy_grpc_close(a[0]); break;
    case 26: ARGS(5); proxy_set_shared_data(a[0], a[1], a[2], a[3], a[4]); break;
    case 27: ARGS(5); proxy_get_shared_data(a[0], a[1], a[2], a[3], a[4]); break;
    case 28: ARGS(3); proxy_register_shared_queue(a[0], a[1], a[2]); break;
    case 29: ARGS(5); proxy_resolve_shared_queue(a[0], a[1], a[2], a[3], a[4]); break;
    case 30: ARGS(3); proxy_enqueue_shared_queue(a[0], a[1], a[2]); break;
    case 31: ARGS(3); proxy_dequeue_shared_queue(a[0], a[1], a[2]); break;
    case 32: ARGS(4); proxy_define_metric(a[0], a[1], a[2], a[3]); break;
    case 33: ARGS(1); x = NextArg64(); proxy_record_metric(a[0], x); break;
    case 34: ARGS(1); x = NextArg64(); proxy_increment_metric(a[0], x); break;
    case 35: ARGS(2); proxy_get_metric(a[0], a[1]); break;
    case 36: ARGS(4); proxy_get_property(a[0], a[1], a[2], a[3]); break;
    case 37: ARGS(4); proxy_set_property(a[0], a[1], a[2], a[3]); break;
    case 38: ARGS(6); proxy_call_foreign_function(a[0], a[1], a[2], a[3], a[4], a[5]); break;
    case 39: ARGS(2); proxy_get_configuration(a[0], a[1]); break;
    case 40: proxy_continue_request(); break;
    case 41: proxy_continue_response(); break;
    case 42: proxy_clear_route_cache(); break;
    case 43: legacy_resume_http_request(); break;
    case 44: legacy_resume_http_response(); break;
    case 45: legacy_resume_downstream(); break;
    case 46: legacy_resume_upstream(); break;
    case 47: ARGS(8); legacy_send_http_response(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]); break;
    case 48:
      ARGS(10);
      legacy_dispatch_http_call(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
      break;
    case 49: ARGS(10); legacy_grpc_call(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]); break;
    case 50:
      ARGS(10);
      legacy_dispatch_grpc_call(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
      break;
    case 51: ARGS(7); legacy_open_grpc_stream(a[0], a[1], a[2], a[3], a[4], a[5], a[6]); break;
    case 52: ARGS(4); legacy_send_grpc_call_message(a[0], a[1], a[2], a[3]); break;
    case 53: ARGS(1); legacy_cancel_grpc_call(a[0]); break;
    case 54: ARGS(1); legacy_close_grpc_call(a[0]); break;
    case 55: ARGS(1); legacy_remove_metric(a[0]); break;
    case 56: ARGS(1); legacy_remove_shared_queue(a[0]); break;
    case 57: ARGS(3); legacy_resolve_shared_queue(a[0], a[1], a[2]); break;
    case 58: ARGS(6); proxy_get_state(a[0], a[1], a[2], a[3], a[4], a[5]); break;
    case 59: ARGS(8); proxy_invoke_service(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]); break;
    case 60: ARGS(1); emscripten_notify_memory_growth(a[0]); break;
    case 61: ARGS(2); pthread_equal(a[0], a[1]); break;
    case 62: ARGS(2); wasi_args_get(a[0], a[1]); break;
    case 63: ARGS(2); wasi_args_sizes_get(a[0], a[1]); break;
    case 64: ARGS(2); wasi_environ_get(a[0], a[1]); break;
    case 65: ARGS(2); wasi_environ_sizes_get(a[0], a[1]); break;
    case 66: ARGS(2); wasi_clock_res_get(a[0], a[1]); break;
    case 67: ARGS(1); x = NextArg64(); ARGS2(1, 1); wasi_clock_time_get(a[0], x, a[1]); break;
    case 68: ARGS(1); wasi_fd_close(a[0]); break;
    case 69: ARGS(2); wasi_fd_fdstat_get(a[0], a[1]); break;
    case 70: ARGS(2); wasi_fd_filestat_get(a[0], a[1]); break;
    case 71: ARGS(2); wasi_fd_prestat_get(a[0], a[1]); break;
    case 72: ARGS(3); wasi_fd_prestat_dir_name(a[0], a[1], a[2]); break;
    case 73: ARGS(3); x = NextArg64(); ARGS2(3, 3); wasi_fd_pwrite(a[0], a[1], a[2], x, a[3]); break;
    case 74: ARGS(4); wasi_fd_read(a[0], a[1], a[2], a[3]); break;
    case 75: ARGS(1); x = NextArg64(); ARGS2(1, 2); wasi_fd_seek(a[0], x, a[1], a[2]); break;
    case 76: ARGS(2); wasi_fd_tell(a[0], a[1]); break;
    case 77: ARGS(4); wasi_fd_write(a[0], a[1], a[2], a[3]); break;
    case 78:
      ARGS(5); x = NextArg64(); y = NextArg64(); ARGS2(5, 6);
      wasi_path_open(a[0], a[1], a[2], a[3], a[4], x, y, a[5], a[6]);
      break;
    case 79: ARGS(4); wasi_poll_oneoff(a[0], a[1], a[2], a[3]); break;
    case 80: ARGS(1); wasi_proc_exit(a[0]); break;
    case 81: ARGS(2); wasi_random_get(a[0], a[1]); break;
    case 82: wasi_sched_yield(); break;
  }
  // clang-format on
}

static u32 yielded;  // the last Run ended at a yield step

// Runs steps until the program ends (the callback then answers 0, "continue") or yields.
static u32 Run(void) {
  yielded = 0;
  while (pc < program_size) {
    const u32 op = NextByte() % (kHostCalls + kHostCallCount);
    switch (op) {
      case kYield: yielded = 1; return NextArg();
      case kAllocatorMode:
        allocator_mode = NextByte() % kAllocatorModes;
        allocator_value = NextArg();
        break;
      case kGrowMemory: __builtin_wasm_memory_grow(0, NextArg() & 0xff); break;
      case kTrap:
        // Behind a second byte, so that random programs do not end in a trap at every step.
        if (NextByte() == 'T') __builtin_trap();
        break;
      case kEnd: pc = program_size; break;  // the rest is data for the pointers into the program
      default: HostCall(op - kHostCalls); break;
    }
  }
  return 0;
}

// ---- Proxy-Wasm exports ------------------------------------------------------------------------

EXPORT(proxy_abi_version_0_2_1) void abi_marker(void) {}

EXPORT(proxy_on_context_create) void on_context_create(u32 id, u32 parent) {
  if (parent == 0) return;
  // A new stream: nothing of the previous request's program may run in this one.
  program_size = pc = 0;
  heap_used = 0;
  allocator_mode = kNormal;
  // volatile: a plain loop becomes a call to memset, which a module without libc does not have.
  volatile u64* slots = scratch;
  for (int i = 0; i < 32; ++i) slots[i] = 0;
}

EXPORT(proxy_on_vm_start) u32 on_vm_start(u32 id, u32 size) { return 1; }
EXPORT(proxy_on_configure) u32 on_configure(u32 id, u32 size) { return 1; }
EXPORT(proxy_on_request_headers) u32 on_request_headers(u32 id, u32 n, u32 eos) { return Run(); }

EXPORT(proxy_on_request_body) u32 on_request_body(u32 id, u32 size, u32 eos) {
  u32 data = 0, data_size = 0;
  reading_program = 1;
  const u32 status =
      proxy_get_buffer_bytes(0, 0, kProgramCapacity, (u32)(uintptr_t)&data, (u32)(uintptr_t)&data_size);
  reading_program = 0;
  if (status != 0 || data != (u32)(uintptr_t)program) return 0;
  program_size = data_size;
  pc = 0;
  return Run();
}

EXPORT(proxy_on_request_trailers) u32 on_request_trailers(u32 id, u32 n) { return Run(); }
EXPORT(proxy_on_response_headers) u32 on_response_headers(u32 id, u32 n, u32 eos) { return Run(); }
EXPORT(proxy_on_response_body) u32 on_response_body(u32 id, u32 size, u32 eos) { return Run(); }
EXPORT(proxy_on_response_trailers) u32 on_response_trailers(u32 id, u32 n) { return Run(); }
// "Done" unless the program yields another answer (then the host waits for proxy_done).
EXPORT(proxy_on_done) u32 on_done(u32 id) {
  const u32 result = Run();
  return yielded ? result : 1;
}
EXPORT(proxy_on_log) void on_log(u32 id) { Run(); }
EXPORT(proxy_on_delete) void on_delete(u32 id) { Run(); }
EXPORT(proxy_on_tick) void on_tick(u32 id) { Run(); }
EXPORT(proxy_on_queue_ready) void on_queue_ready(u32 id, u32 queue) { Run(); }
