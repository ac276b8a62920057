// Guest that imports every host function of ABI 0.2.1 and 0.1.0, Layotto's legacy names (in
// both shapes where a name has two) and the WASI calls SDKs use, and calls them from C with no
// SDK in between. The request header `x-op` picks the run:
//   all      every function with well-formed arguments;
//   hostile  every function with pointers and lengths outside guest memory;
//   garbage  the allocator starts answering addresses outside memory;
//   alloc_log, alloc_done  the allocator calls proxy_log (allowed) or proxy_done (refused);
//   trace    answers with the callbacks the host has made so far, in order, with their arguments.
// Each call's status goes to the response body as `name=status`.
#include "wasmlet/abi.h"

#define WASI(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
#define ENV(name) __attribute__((import_module("env"), import_name(#name)))

// Layotto's legacy names (ABI §7.5), some in a second shape of a spec name.
ENV(proxy_resume_http_request) uint32_t legacy_resume_http_request(void);
ENV(proxy_resume_http_response) uint32_t legacy_resume_http_response(void);
ENV(proxy_resume_downstream) uint32_t legacy_resume_downstream(void);
ENV(proxy_resume_upstream) uint32_t legacy_resume_upstream(void);
ENV(proxy_send_http_response)
uint32_t legacy_send_http_response(uint32_t, const char*, size_t, const char*, size_t, const char*, size_t,
                                   int32_t);
ENV(proxy_dispatch_http_call)
uint32_t legacy_dispatch_http_call(const char*, size_t, const char*, size_t, const char*, size_t, const char*,
                                   size_t, uint32_t, uint32_t*);
ENV(proxy_grpc_call)
uint32_t legacy_grpc_call(const char*, size_t, const char*, size_t, const char*, size_t, const char*, size_t,
                          uint32_t, uint32_t*);
ENV(proxy_dispatch_grpc_call)
uint32_t legacy_dispatch_grpc_call(const char*, size_t, const char*, size_t, const char*, size_t, const char*,
                                   size_t, uint32_t, uint32_t*);
ENV(proxy_open_grpc_stream)
uint32_t legacy_open_grpc_stream(const char*, size_t, const char*, size_t, const char*, size_t, uint32_t*);
ENV(proxy_send_grpc_call_message)
uint32_t legacy_send_grpc_call_message(uint32_t, const char*, size_t, uint32_t);
ENV(proxy_cancel_grpc_call) uint32_t legacy_cancel_grpc_call(uint32_t);
ENV(proxy_close_grpc_call) uint32_t legacy_close_grpc_call(uint32_t);
ENV(proxy_remove_metric) uint32_t legacy_remove_metric(uint32_t);
ENV(proxy_remove_shared_queue) uint32_t legacy_remove_shared_queue(uint32_t);
ENV(proxy_resolve_shared_queue) uint32_t legacy_resolve_shared_queue(const char*, size_t, uint32_t*);
ENV(emscripten_notify_memory_growth) void emscripten_notify_memory_growth(uint32_t);
ENV(pthread_equal) uint32_t pthread_equal(uint32_t, uint32_t);

WASI(fd_write) uint32_t wasi_fd_write(uint32_t fd, const void* iovs, size_t n, size_t* written);
WASI(clock_time_get) uint32_t wasi_clock_time_get(uint32_t id, uint64_t precision, uint64_t* time);
WASI(random_get) uint32_t wasi_random_get(void* buf, size_t len);
WASI(args_sizes_get) uint32_t wasi_args_sizes_get(size_t* count, size_t* size);
WASI(environ_sizes_get) uint32_t wasi_environ_sizes_get(size_t* count, size_t* size);
WASI(fd_fdstat_get) uint32_t wasi_fd_fdstat_get(uint32_t fd, void* stat);
WASI(fd_prestat_get) uint32_t wasi_fd_prestat_get(uint32_t fd, void* prestat);
WASI(poll_oneoff) uint32_t wasi_poll_oneoff(const void* in, void* out, size_t n, size_t* events);

// ---- a bump allocator, with a switch that makes it answer garbage --------------------------------

static char heap[1 << 16];
static size_t heap_used;
static enum { kNormal, kGarbage, kLogs, kCallsDone } allocator_mode;

WASMLET_EXPORT(malloc) void* guest_malloc(size_t size) {
  if (allocator_mode == kGarbage) return (void*)0xFFFFFF00u;
  if (allocator_mode == kLogs) proxy_log(PROXY_LOG_DEBUG, "abi_raw: allocating", 19);
  if (allocator_mode == kCallsDone) proxy_done();
  size = (size + 7) & ~(size_t)7;
  if (size > sizeof heap - heap_used) heap_used = 0;  // tests are short: wrap around
  void* p = heap + heap_used;
  heap_used += size;
  return p;
}

// ---- the report --------------------------------------------------------------------------------

static char report[8192];
static size_t report_used;

static void Append(const char* s) {
  while (*s && report_used < sizeof report) report[report_used++] = *s++;
}

static void AppendNumber(char* out, size_t* used, size_t cap, uint32_t v) {
  char digits[12];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n && *used < cap) out[(*used)++] = digits[--n];
}

static void Report(const char* name, uint32_t status) {
  Append(name);
  Append("=");
  AppendNumber(report, &report_used, sizeof report, status);
  Append("\n");
}

#define CALL(name, expr) Report(#name, (uint32_t)(expr))

static char trace[4096];
static size_t trace_used;

// Records "name(a,b,...) " in the trace.
static void Trace(const char* name, int count, uint32_t a, uint32_t b, uint32_t c) {
  while (*name && trace_used < sizeof trace) trace[trace_used++] = *name++;
  const uint32_t args[3] = {a, b, c};
  for (int i = 0; i < count; ++i) {
    if (trace_used < sizeof trace) trace[trace_used++] = i ? ',' : '(';
    AppendNumber(trace, &trace_used, sizeof trace, args[i]);
  }
  if (trace_used + 2 <= sizeof trace) {
    trace[trace_used++] = ')';
    trace[trace_used++] = ' ';
  }
}

static int Equals(const char* a, size_t n, const char* b) {
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return 0;
  }
  return b[n] == 0;
}

// ---- the runs ----------------------------------------------------------------------------------

static void CallAll(void) {
  char* out;
  size_t size;
  uint32_t u32;
  uint64_t u64;
  // {k: v} in the pairs format: 16 bytes, the last NUL being the literal's own terminator.
  static const char kMap[] = "\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00k\0v";
  // {:method: G, :path: /localhost, :authority: localhost}
  static const char kCall[] =
      "\x03\x00\x00\x00\x07\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00\x0a\x00\x00\x00"
      "\x0a\x00\x00\x00\x09\x00\x00\x00:method\0G\0:path\0/localhost\0:authority\0localhost";
  CALL(proxy_log, proxy_log(PROXY_LOG_INFO, "abi_raw: calling everything", 27));
  CALL(proxy_get_log_level, proxy_get_log_level(&u32));
  CALL(proxy_get_current_time_nanoseconds, proxy_get_current_time_nanoseconds(&u64));
  CALL(time_is_recent, u64 > 1600000000ull * 1000000000ull);
  CALL(proxy_set_tick_period_milliseconds, proxy_set_tick_period_milliseconds(0));
  CALL(proxy_set_buffer_bytes, proxy_set_buffer_bytes(PROXY_BUFFER_HTTP_RESPONSE_BODY, 0, 0, 0, 0));
  CALL(proxy_get_buffer_bytes,
       proxy_get_buffer_bytes(PROXY_BUFFER_HTTP_REQUEST_BODY, 0, 0xFFFFFFFF, &out, &size));
  CALL(proxy_get_buffer_status, proxy_get_buffer_status(PROXY_BUFFER_HTTP_REQUEST_BODY, &size, &u32));
  CALL(proxy_get_buffer_bytes_missing_type, proxy_get_buffer_bytes(5, 0, 10, &out, &size));
  CALL(proxy_get_header_map_size, proxy_get_header_map_size(PROXY_MAP_HTTP_REQUEST_HEADERS, &size));
  CALL(proxy_get_header_map_pairs, proxy_get_header_map_pairs(PROXY_MAP_HTTP_REQUEST_HEADERS, &out, &size));
  CALL(proxy_set_header_map_pairs,
       proxy_set_header_map_pairs(PROXY_MAP_HTTP_RESPONSE_TRAILERS, kMap, sizeof kMap));
  CALL(proxy_set_header_map_pairs_empty, proxy_set_header_map_pairs(PROXY_MAP_HTTP_RESPONSE_TRAILERS, 0, 0));
  CALL(proxy_set_header_map_pairs_malformed,
       proxy_set_header_map_pairs(PROXY_MAP_HTTP_RESPONSE_TRAILERS, kMap, sizeof kMap - 1));
  CALL(proxy_get_header_map_value,
       proxy_get_header_map_value(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-op", 4, &out, &size));
  CALL(proxy_get_header_map_value_absent,
       proxy_get_header_map_value(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-none", 6, &out, &size));
  CALL(proxy_add_header_map_value, proxy_add_header_map_value(PROXY_MAP_HTTP_REQUEST_HEADERS, "a", 1, "", 0));
  CALL(proxy_replace_header_map_value,
       proxy_replace_header_map_value(PROXY_MAP_HTTP_REQUEST_HEADERS, "a", 1, "b", 1));
  CALL(proxy_remove_header_map_value, proxy_remove_header_map_value(PROXY_MAP_HTTP_REQUEST_HEADERS, "zz", 2));
  CALL(proxy_continue_stream, proxy_continue_stream(0));
  CALL(proxy_close_stream, proxy_close_stream(1));
  CALL(proxy_get_status, proxy_get_status(&u32, &out, &size));
  CALL(proxy_http_call_without_path, proxy_http_call("up", 2, kMap, sizeof kMap, 0, 0, 0, 0, 1000, &u32));
  CALL(proxy_http_call, proxy_http_call("up", 2, kCall, sizeof kCall, 0, 0, 0, 0, 1000, &u32));
  CALL(proxy_grpc_call, proxy_grpc_call("up", 2, "s", 1, "m", 1, 0, 0, 0, 0, 1000, &u32));
  CALL(proxy_grpc_stream, proxy_grpc_stream("up", 2, "s", 1, "m", 1, 0, 0, &u32));
  CALL(proxy_grpc_send, proxy_grpc_send(7, 0, 0, 1));
  CALL(proxy_grpc_cancel, proxy_grpc_cancel(7));
  CALL(proxy_grpc_close, proxy_grpc_close(7));
  CALL(proxy_set_shared_data, proxy_set_shared_data("raw", 3, "1", 1, 0));
  CALL(proxy_get_shared_data, proxy_get_shared_data("raw", 3, &out, &size, &u32));
  CALL(proxy_set_shared_data_stale_cas, proxy_set_shared_data("raw", 3, "2", 1, u32 + 1000));
  CALL(proxy_register_shared_queue, proxy_register_shared_queue("rq", 2, &u32));
  uint32_t queue = u32;
  CALL(proxy_resolve_shared_queue, proxy_resolve_shared_queue(0, 0, "rq", 2, &u32));
  CALL(proxy_enqueue_shared_queue, proxy_enqueue_shared_queue(queue, "x", 1));
  CALL(proxy_dequeue_shared_queue, proxy_dequeue_shared_queue(queue, &out, &size));
  CALL(proxy_dequeue_shared_queue_empty, proxy_dequeue_shared_queue(queue, &out, &size));
  CALL(proxy_define_metric, proxy_define_metric(0, "raw_counter", 11, &u32));
  uint32_t metric = u32;
  CALL(proxy_increment_metric, proxy_increment_metric(metric, 5));
  CALL(proxy_increment_metric_negative, proxy_increment_metric(metric, -1));
  CALL(proxy_record_metric, proxy_record_metric(metric, 42));
  CALL(proxy_get_metric, proxy_get_metric(metric, &u64));
  CALL(metric_value, (uint32_t)u64);
  CALL(proxy_get_property, proxy_get_property("plugin_name", 11, &out, &size));
  CALL(proxy_get_property_unknown, proxy_get_property("nope", 4, &out, &size));
  CALL(proxy_set_property, proxy_set_property("a\0b", 3, "c", 1));
  CALL(proxy_call_foreign_function, proxy_call_foreign_function("f", 1, 0, 0, &out, &size));
  CALL(proxy_set_effective_context_unknown, proxy_set_effective_context(123456));
  CALL(proxy_get_configuration, proxy_get_configuration(&out, &size));
  CALL(proxy_continue_request, proxy_continue_request());
  CALL(proxy_continue_response, proxy_continue_response());
  CALL(proxy_clear_route_cache, proxy_clear_route_cache());
  CALL(proxy_get_state_without_store, proxy_get_state("s", 1, "k", 1, &out, &size));
  CALL(proxy_invoke_service_without_invoker, proxy_invoke_service("id", 2, "", 0, "", 0, &out, &size));
  CALL(legacy_resume_http_request, legacy_resume_http_request());
  CALL(legacy_resume_http_response, legacy_resume_http_response());
  CALL(legacy_resume_downstream, legacy_resume_downstream());
  CALL(legacy_resume_upstream, legacy_resume_upstream());
  CALL(legacy_dispatch_http_call,
       legacy_dispatch_http_call("up", 2, kMap, sizeof kMap, 0, 0, 0, 0, 1000, &u32));
  CALL(legacy_grpc_call, legacy_grpc_call("up", 2, "s", 1, "m", 1, 0, 0, 1000, &u32));
  CALL(legacy_dispatch_grpc_call, legacy_dispatch_grpc_call("up", 2, "s", 1, "m", 1, 0, 0, 1000, &u32));
  CALL(legacy_open_grpc_stream, legacy_open_grpc_stream("up", 2, "s", 1, "m", 1, &u32));
  CALL(legacy_send_grpc_call_message, legacy_send_grpc_call_message(7, 0, 0, 0));
  CALL(legacy_cancel_grpc_call, legacy_cancel_grpc_call(7));
  CALL(legacy_close_grpc_call, legacy_close_grpc_call(7));
  CALL(legacy_remove_metric, legacy_remove_metric(metric));
  CALL(legacy_remove_metric_again, legacy_remove_metric(metric));
  CALL(legacy_resolve_shared_queue, legacy_resolve_shared_queue("rq", 2, &u32));
  CALL(legacy_resolved_same_queue, u32 == queue);
  CALL(legacy_remove_shared_queue, legacy_remove_shared_queue(queue));
  emscripten_notify_memory_growth(0);
  CALL(pthread_equal, pthread_equal(3, 3));
  static const char kStdout[] = "abi_raw: to stdout\n";
  uint32_t iov[2] = {(uint32_t)(uintptr_t)kStdout, 19};
  CALL(wasi_fd_write, wasi_fd_write(1, iov, 1, &size));
  CALL(wasi_fd_write_bad_fd, wasi_fd_write(7, iov, 1, &size));
  CALL(wasi_clock_time_get, wasi_clock_time_get(1, 0, &u64));
  CALL(wasi_random_get, wasi_random_get(heap, 16));
  CALL(wasi_random_get_too_much, wasi_random_get(heap, 65537));
  CALL(wasi_args_sizes_get, wasi_args_sizes_get(&size, &size));
  CALL(wasi_environ_sizes_get, wasi_environ_sizes_get(&size, &size));
  CALL(wasi_fd_fdstat_get, wasi_fd_fdstat_get(2, heap));
  CALL(wasi_fd_prestat_get, wasi_fd_prestat_get(3, heap));
  CALL(wasi_poll_oneoff, wasi_poll_oneoff(heap, heap + 64, 1, &size));
  // proxy_done schedules the root's deletion for after this callback; the test checks it.
  CALL(proxy_done, proxy_done());
  CALL(legacy_send_http_response, legacy_send_http_response(201, 0, 0, 0, 0, kMap, sizeof kMap, -1));
}

// Pointers at the very end of 4 GiB and lengths past memory: every call must answer
// INVALID_MEMORY_ACCESS (WASI: FAULT) and the host must survive.
#define BAD ((void*)0xFFFFFFF0u)
#define BADC ((const char*)0xFFFFFFF0u)
#define BIG ((size_t)0x7FFFFFFF)

static void CallHostile(void) {
  static char ok[16];
  CALL(proxy_log, proxy_log(PROXY_LOG_INFO, BADC, 16));
  CALL(proxy_log_long, proxy_log(PROXY_LOG_INFO, ok, BIG));
  CALL(proxy_get_log_level, proxy_get_log_level(BAD));
  CALL(proxy_get_current_time_nanoseconds, proxy_get_current_time_nanoseconds(BAD));
  CALL(proxy_get_buffer_bytes, proxy_get_buffer_bytes(PROXY_BUFFER_HTTP_REQUEST_BODY, 0, 16, BAD, BAD));
  CALL(proxy_set_buffer_bytes, proxy_set_buffer_bytes(PROXY_BUFFER_HTTP_RESPONSE_BODY, 0, 0, BADC, 16));
  CALL(proxy_set_buffer_bytes_long, proxy_set_buffer_bytes(PROXY_BUFFER_HTTP_RESPONSE_BODY, 0, 0, ok, BIG));
  CALL(proxy_get_buffer_status, proxy_get_buffer_status(PROXY_BUFFER_HTTP_REQUEST_BODY, BAD, BAD));
  CALL(proxy_get_header_map_size, proxy_get_header_map_size(0, BAD));
  CALL(proxy_get_header_map_pairs, proxy_get_header_map_pairs(0, BAD, BAD));
  CALL(proxy_set_header_map_pairs, proxy_set_header_map_pairs(0, BADC, 16));
  CALL(proxy_get_header_map_value, proxy_get_header_map_value(0, BADC, 16, BAD, BAD));
  CALL(proxy_get_header_map_value_out, proxy_get_header_map_value(0, ":path", 5, BAD, BAD));
  CALL(proxy_add_header_map_value, proxy_add_header_map_value(0, BADC, 16, BADC, 16));
  CALL(proxy_replace_header_map_value, proxy_replace_header_map_value(0, ok, 1, ok, BIG));
  CALL(proxy_remove_header_map_value, proxy_remove_header_map_value(0, BADC, 16));
  CALL(proxy_get_status, proxy_get_status(BAD, BAD, BAD));
  CALL(proxy_send_local_response, proxy_send_local_response(200, BADC, 16, BADC, 16, BADC, 16, -1));
  CALL(proxy_http_call, proxy_http_call(BADC, 16, BADC, 16, BADC, 16, BADC, 16, 1000, BAD));
  CALL(proxy_grpc_call, proxy_grpc_call(BADC, 16, BADC, 16, BADC, 16, BADC, 16, BADC, 16, 1000, BAD));
  CALL(proxy_grpc_stream, proxy_grpc_stream(BADC, 16, BADC, 16, BADC, 16, BADC, 16, BAD));
  CALL(proxy_grpc_send, proxy_grpc_send(7, BADC, 16, 0));
  CALL(proxy_set_shared_data, proxy_set_shared_data(BADC, 16, BADC, 16, 0));
  CALL(proxy_get_shared_data, proxy_get_shared_data(BADC, 16, BAD, BAD, BAD));
  CALL(proxy_register_shared_queue, proxy_register_shared_queue(BADC, 16, BAD));
  CALL(proxy_resolve_shared_queue, proxy_resolve_shared_queue(BADC, 16, BADC, 16, BAD));
  CALL(proxy_enqueue_shared_queue, proxy_enqueue_shared_queue(1, BADC, 16));
  CALL(proxy_dequeue_shared_queue, proxy_dequeue_shared_queue(1, BAD, BAD));
  CALL(proxy_define_metric, proxy_define_metric(0, BADC, 16, BAD));
  CALL(proxy_get_metric, proxy_get_metric(1, BAD));
  CALL(proxy_get_property, proxy_get_property(BADC, 16, BAD, BAD));
  CALL(proxy_set_property, proxy_set_property(BADC, 16, BADC, 16));
  CALL(proxy_call_foreign_function, proxy_call_foreign_function(BADC, 16, BADC, 16, BAD, BAD));
  CALL(proxy_get_configuration, proxy_get_configuration(BAD, BAD));
  CALL(proxy_get_state, proxy_get_state(BADC, 16, BADC, 16, BAD, BAD));
  CALL(proxy_invoke_service, proxy_invoke_service(BADC, 16, BADC, 16, BADC, 16, BAD, BAD));
  CALL(legacy_send_http_response, legacy_send_http_response(200, BADC, 16, BADC, 16, BADC, 16, -1));
  CALL(legacy_dispatch_http_call,
       legacy_dispatch_http_call(BADC, 16, BADC, 16, BADC, 16, BADC, 16, 1000, BAD));
  CALL(legacy_grpc_call, legacy_grpc_call(BADC, 16, BADC, 16, BADC, 16, BADC, 16, 1000, BAD));
  CALL(legacy_open_grpc_stream, legacy_open_grpc_stream(BADC, 16, BADC, 16, BADC, 16, BAD));
  CALL(legacy_send_grpc_call_message, legacy_send_grpc_call_message(7, BADC, 16, 0));
  CALL(legacy_resolve_shared_queue, legacy_resolve_shared_queue(BADC, 16, BAD));
  CALL(wasi_fd_write, wasi_fd_write(1, BAD, 1, BAD));
  CALL(wasi_fd_write_bad_iovec, wasi_fd_write(1, (const uint32_t[2]){0xFFFFFFF0u, 16}, 1, (size_t*)ok));
  CALL(wasi_clock_time_get, wasi_clock_time_get(0, 0, BAD));
  CALL(wasi_random_get, wasi_random_get(BAD, 16));
  CALL(wasi_args_sizes_get, wasi_args_sizes_get(BAD, BAD));
  CALL(wasi_environ_sizes_get, wasi_environ_sizes_get(BAD, BAD));
  CALL(wasi_fd_fdstat_get, wasi_fd_fdstat_get(1, BAD));
  CALL(wasi_poll_oneoff, wasi_poll_oneoff(BAD, BAD, 1, BAD));
}

// ---- Proxy-Wasm exports ------------------------------------------------------------------------

WASMLET_EXPORT(proxy_abi_version_0_2_1) void abi_marker(void) {}
WASMLET_EXPORT(proxy_on_context_create) void on_context_create(uint32_t id, uint32_t parent) {
  Trace("create", 2, id, parent, 0);
}
WASMLET_EXPORT(proxy_on_vm_start) uint32_t on_vm_start(uint32_t id, uint32_t size) {
  Trace("vm_start", 2, id, size, 0);
  return 1;
}
WASMLET_EXPORT(proxy_on_configure) uint32_t on_configure(uint32_t id, uint32_t size) {
  Trace("configure", 2, id, size, 0);
  return 1;
}
WASMLET_EXPORT(proxy_on_request_body) uint32_t on_request_body(uint32_t id, uint32_t size, uint32_t eos) {
  Trace("request_body", 3, id, size, eos);
  return 0;
}
WASMLET_EXPORT(proxy_on_request_trailers) uint32_t on_request_trailers(uint32_t id, uint32_t n) {
  Trace("request_trailers", 2, id, n, 0);
  return 0;
}
WASMLET_EXPORT(proxy_on_response_headers)
uint32_t on_response_headers(uint32_t id, uint32_t n, uint32_t eos) {
  Trace("response_headers", 3, id, n, eos);
  return 0;
}
WASMLET_EXPORT(proxy_on_response_body) uint32_t on_response_body(uint32_t id, uint32_t size, uint32_t eos) {
  Trace("response_body", 3, id, size, eos);
  return 0;
}
WASMLET_EXPORT(proxy_on_done) uint32_t on_done(uint32_t id) {
  Trace("done", 1, id, 0, 0);
  return 1;
}
WASMLET_EXPORT(proxy_on_log) void on_log(uint32_t id) { Trace("log", 1, id, 0, 0); }
WASMLET_EXPORT(proxy_on_delete) void on_delete(uint32_t id) { Trace("delete", 1, id, 0, 0); }

WASMLET_EXPORT(proxy_on_request_headers) uint32_t on_request_headers(uint32_t id, uint32_t n, uint32_t eos) {
  Trace("request_headers", 3, id, n, eos);
  char* op = 0;
  size_t op_size = 0;
  if (proxy_get_header_map_value(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-op", 4, &op, &op_size) != PROXY_OK)
    return 0;
  report_used = 0;
  if (Equals(op, op_size, "all")) CallAll();
  if (Equals(op, op_size, "hostile")) CallHostile();
  if (Equals(op, op_size, "trace")) {
    proxy_send_local_response(200, 0, 0, trace, trace_used, 0, 0, -1);
    trace_used = 0;
    return 1;
  }
  if (Equals(op, op_size, "garbage") || Equals(op, op_size, "alloc_log") ||
      Equals(op, op_size, "alloc_done")) {
    allocator_mode = Equals(op, op_size, "garbage")     ? kGarbage
                     : Equals(op, op_size, "alloc_log") ? kLogs
                                                        : kCallsDone;
    char* out;
    size_t size;
    CALL(get_pairs_through_allocator,
         proxy_get_header_map_pairs(PROXY_MAP_HTTP_REQUEST_HEADERS, &out, &size));
    allocator_mode = kNormal;
  }
  if (report_used == 0) return 0;  // nothing to say: let the request through
  // The report travels as a local response, which also replaces the one CallAll sent.
  proxy_send_local_response(200, 0, 0, report, report_used, 0, 0, -1);
  return 1;
}
