// Guest for the engine tests: plain exports, host calls, memory, traps and runaway code.
// Built without libc ("bare"), so every import below is one the test provides.
#define WASM_EXPORT(name) __attribute__((export_name(#name)))
#define WASM_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))

WASM_IMPORT(host_add) int host_add(int a, int b);
WASM_IMPORT(host_noop) void host_noop(void);
WASM_IMPORT(host_fail) int host_fail(int code);
WASM_IMPORT(host_wide) long long host_wide(long long a, double b);

WASM_EXPORT(noop) void noop(void) {}
WASM_EXPORT(add) int add(int a, int b) { return a + b; }
WASM_EXPORT(mul64) long long mul64(long long a, long long b) { return a * b; }
WASM_EXPORT(half) double half(double x) { return x / 2; }

WASM_EXPORT(call_host) int call_host(int a, int b) { return host_add(a, b) * 2; }
WASM_EXPORT(call_host_wide) long long call_host_wide(long long a) { return host_wide(a, 0.5) + 1; }

// Calls the host `n` times: the benchmark divides its time by n.
WASM_EXPORT(call_host_loop) void call_host_loop(int n) {
  for (int i = 0; i < n; ++i) host_noop();
}

// The host fails the call (as proc_exit would); the guest must not get past it.
static volatile int after_fail;
WASM_EXPORT(call_host_fail) int call_host_fail(int code) {
  int r = host_fail(code);
  after_fail = 1;
  return r;
}
WASM_EXPORT(after_fail_ran) int after_fail_ran(void) { return after_fail; }

static unsigned char buffer[256];
WASM_EXPORT(buffer_address) unsigned char* buffer_address(void) { return buffer; }
WASM_EXPORT(sum_buffer) int sum_buffer(int n) {
  int sum = 0;
  for (int i = 0; i < n && i < (int)sizeof buffer; ++i) sum += buffer[i];
  return sum;
}
WASM_EXPORT(fill_buffer) void fill_buffer(int value) {
  // volatile keeps clang from turning the loop into a memset call, which a bare guest lacks.
  for (int i = 0; i < (int)sizeof buffer; ++i) ((volatile unsigned char*)buffer)[i] = (unsigned char)value;
}

WASM_EXPORT(trap_unreachable) int trap_unreachable(void) { __builtin_trap(); }
WASM_EXPORT(divide) int divide(int a, int b) { return a / b; }
WASM_EXPORT(load_at) int load_at(unsigned address) { return *(volatile int*)address; }

static volatile int counter;
WASM_EXPORT(spin) void spin(void) {
  for (;;) counter++;
}

// Returns the old size in pages, or -1 when the engine refuses to grow.
WASM_EXPORT(grow) int grow(int pages) { return __builtin_wasm_memory_grow(0, pages); }
WASM_EXPORT(memory_pages) int memory_pages(void) { return __builtin_wasm_memory_size(0); }
// Writes `value` to the last byte of memory (valid only after growing).
WASM_EXPORT(poke_last) void poke_last(int value) {
  unsigned size = __builtin_wasm_memory_size(0) * 65536u;
  *(volatile unsigned char*)(size - 1) = (unsigned char)value;
}

WASM_EXPORT(fib) int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

// Baseline for the guest->host call benchmark: the same loop, calling a guest function.
static volatile int inner_calls;
__attribute__((noinline)) static void guest_inner(void) { inner_calls++; }
WASM_EXPORT(call_guest_loop) void call_guest_loop(int n) {
  for (int i = 0; i < n; ++i) guest_inner();
}
