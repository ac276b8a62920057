// The smallest Proxy-Wasm module: it declares ABI 0.2.1, logs when its root context starts,
// and answers every request with "hello from wasm". No libc, no SDK; the SDK under sdk/ is
// the way to write real functions.
#define WASM_EXPORT(name) __attribute__((export_name(#name)))
#define WASM_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))

WASM_IMPORT(proxy_log) int proxy_log(int level, const char* message, int size);
WASM_IMPORT(proxy_send_local_response)
int proxy_send_local_response(int status, const char* details, int details_size, const char* body,
                              int body_size, const char* headers, int headers_size, int grpc_status);

static const char kStarted[] = "hello: root context started";
static const char kBody[] = "hello from wasm\n";

static char heap[4096];
static int heap_used;

WASM_EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}

// The host hands data to the guest through this allocator (a bump allocator is enough here).
WASM_EXPORT(malloc) void* guest_malloc(int size) {
  if (size <= 0 || heap_used + size > (int)sizeof heap) return 0;
  void* p = heap + heap_used;
  heap_used += (size + 7) & ~7;
  return p;
}

WASM_EXPORT(proxy_on_context_create) void proxy_on_context_create(int context_id, int parent_id) {}

WASM_EXPORT(proxy_on_vm_start) int proxy_on_vm_start(int root_id, int configuration_size) {
  proxy_log(2 /* info */, kStarted, sizeof kStarted - 1);
  return 1;
}

WASM_EXPORT(proxy_on_request_headers)
int proxy_on_request_headers(int context_id, int headers, int end_of_stream) {
  proxy_send_local_response(200, 0, 0, kBody, sizeof kBody - 1, 0, 0, -1);
  return 1; /* pause: the response is already sent */
}
