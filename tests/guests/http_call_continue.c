// A filter that does what MOSN's own test module httpCall.wasm (TinyGo) does: its request
// headers callback calls the URL given as its plugin configuration, with no headers at all, and
// returns Continue, so that the stream goes on and usually ends before the answer comes. The
// answer arrives on the root context and is logged (info) as one line:
//
//   http_call_continue: answer to call T on root R: status=S headers=N body=LINE stream=STATE
//
// S is the answer's :status (0 when it has none: the call failed), N the number of its headers,
// LINE the first line of its body, and STATE "live" or "gone": whether the stream that made the
// call still exists (proxy_set_effective_context to it succeeds). A call the host refuses is
// logged as "http_call_continue: call refused: STATUS".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmlet/abi.h"

static char url[512];
static size_t url_size;

// The stream that made each call, by token (a small ring: the tests keep few calls in flight).
static struct {
  uint32_t token;
  uint32_t stream;
} callers[64];
static size_t next_caller;

static void Log(const char* text) { proxy_log(PROXY_LOG_INFO, text, strlen(text)); }

static uint32_t CallerOf(uint32_t token) {
  for (size_t i = 0; i < sizeof callers / sizeof callers[0]; ++i) {
    if (callers[i].token == token) return callers[i].stream;
  }
  return 0;
}

WASMLET_EXPORT(proxy_abi_version_0_2_1) void abi_marker(void) {}
WASMLET_EXPORT(proxy_on_memory_allocate) void* allocate(size_t size) { return malloc(size); }
WASMLET_EXPORT(proxy_on_context_create) void on_context_create(uint32_t id, uint32_t parent) {}
WASMLET_EXPORT(proxy_on_vm_start) uint32_t on_vm_start(uint32_t id, uint32_t size) { return 1; }

WASMLET_EXPORT(proxy_on_configure) uint32_t on_configure(uint32_t id, uint32_t size) {
  char* data = 0;
  size_t got = 0;
  if (proxy_get_buffer_bytes(PROXY_BUFFER_PLUGIN_CONFIGURATION, 0, size, &data, &got) != PROXY_OK) return 0;
  if (got == 0 || got >= sizeof url) {
    free(data);
    return 0;  // no URL to call, or one too long: refuse the configuration
  }
  memcpy(url, data, got);
  url_size = got;
  free(data);
  return 1;
}

WASMLET_EXPORT(proxy_on_request_headers)
uint32_t on_request_headers(uint32_t id, uint32_t headers, uint32_t end_of_stream) {
  uint32_t token = 0;
  // As MOSN's module: a URL and nothing else; the host derives the request line from it.
  const proxy_status_t status = proxy_http_call(url, url_size, "", 0, "", 0, "", 0, 5000, &token);
  if (status != PROXY_OK) {
    char line[64];
    snprintf(line, sizeof line, "http_call_continue: call refused: %u", status);
    Log(line);
  } else {
    callers[next_caller].token = token;
    callers[next_caller].stream = id;
    next_caller = (next_caller + 1) % (sizeof callers / sizeof callers[0]);
  }
  return 0;  // Continue: the stream does not wait for the call
}

WASMLET_EXPORT(proxy_on_http_call_response)
void on_http_call_response(uint32_t root, uint32_t token, uint32_t headers, uint32_t body_size,
                           uint32_t trailers) {
  unsigned status = 0;
  char* value = 0;
  size_t value_size = 0;
  if (proxy_get_header_map_value(PROXY_MAP_HTTP_CALL_RESPONSE_HEADERS, ":status", 7, &value, &value_size) ==
      PROXY_OK) {
    for (size_t i = 0; i < value_size && value[i] >= '0' && value[i] <= '9'; ++i)
      status = status * 10 + (unsigned)(value[i] - '0');
    free(value);
  }
  char* body = 0;
  size_t size = 0;
  if (body_size > 0) proxy_get_buffer_bytes(PROXY_BUFFER_HTTP_CALL_RESPONSE_BODY, 0, body_size, &body, &size);
  size_t first_line = 0;
  while (first_line < size && first_line < 200 && body[first_line] != '\r' && body[first_line] != '\n')
    ++first_line;
  const uint32_t stream = CallerOf(token);
  const int live = stream != 0 && proxy_set_effective_context(stream) == PROXY_OK;
  char line[400];
  snprintf(line, sizeof line,
           "http_call_continue: answer to call %u on root %u: status=%u headers=%u body=%.*s stream=%s",
           token, root, status, headers, (int)first_line, body ? body : "", live ? "live" : "gone");
  free(body);
  Log(line);
}
