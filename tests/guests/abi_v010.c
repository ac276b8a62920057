// An ABI 0.1.0 module: 2-parameter header callbacks, configuration read with
// proxy_get_configuration, proxy_continue_request, and a WASI command entry point (_start)
// whose main ends with exit(0), as TinyGo-era modules do.
#include <stdlib.h>
#include <string.h>

#include "wasmlet/abi.h"

static char vm_config[64];
static char plugin_config[64];

static void Keep(char* dst, size_t cap) {
  char* data = 0;
  size_t size = 0;
  if (proxy_get_configuration(&data, &size) != PROXY_OK) return;
  if (size >= cap) size = cap - 1;
  memcpy(dst, data, size);
  dst[size] = 0;
  free(data);
}

int main(void) { exit(0); }  // proc_exit(0) inside _start is a normal end of start-up

WASMLET_EXPORT(proxy_abi_version_0_1_0) void abi_marker(void) {}
WASMLET_EXPORT(proxy_on_memory_allocate) void* allocate(size_t size) { return malloc(size); }
WASMLET_EXPORT(proxy_on_context_create) void on_context_create(uint32_t id, uint32_t parent) {}
WASMLET_EXPORT(proxy_on_vm_start) uint32_t on_vm_start(uint32_t id, uint32_t size) {
  Keep(vm_config, sizeof vm_config);
  return 1;
}
WASMLET_EXPORT(proxy_on_configure) uint32_t on_configure(uint32_t id, uint32_t size) {
  Keep(plugin_config, sizeof plugin_config);
  return 1;
}

WASMLET_EXPORT(proxy_on_request_headers) uint32_t on_request_headers(uint32_t id, uint32_t headers) {
  char* value = 0;
  size_t size = 99;
  // 0.1.0: an absent header is OK with an empty value.
  proxy_status_t absent =
      proxy_get_header_map_value(PROXY_MAP_HTTP_REQUEST_HEADERS, "x-none", 6, &value, &size);
  char body[200] = "vm=";
  strcat(body, vm_config);
  strcat(body, " plugin=");
  strcat(body, plugin_config);
  strcat(body, absent == PROXY_OK && size == 0 ? " absent=ok-empty" : " absent=other");
  strcat(body, proxy_continue_request() == PROXY_OK ? " continue=ok" : " continue=failed");
  proxy_set_buffer_bytes(PROXY_BUFFER_HTTP_RESPONSE_BODY, 0, 0, body, strlen(body));
  return 0;
}
