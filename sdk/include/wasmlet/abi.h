/* wasmlet guest SDK: the raw Proxy-Wasm host functions (ABI 0.2.1, the 0.1.0-only calls and
 * Layotto's extensions) as C declarations. C guests can use these directly; C++ guests use
 * <wasmlet/sdk.h>, which wraps them. Every function returns a proxy_status_t (0 = OK).
 * Reference: docs/proxy-wasm-abi.md in the wasmlet repository. */
#ifndef WASMLET_SDK_ABI_H_
#define WASMLET_SDK_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WASMLET_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define WASMLET_EXPORT(name) __attribute__((export_name(#name)))

typedef uint32_t proxy_status_t;
enum {
  PROXY_OK = 0,
  PROXY_NOT_FOUND = 1,
  PROXY_BAD_ARGUMENT = 2,
  PROXY_SERIALIZATION_FAILURE = 3,
  PROXY_PARSE_FAILURE = 4,
  PROXY_INVALID_MEMORY_ACCESS = 6,
  PROXY_EMPTY = 7,
  PROXY_CAS_MISMATCH = 8,
  PROXY_INTERNAL_FAILURE = 10,
  PROXY_UNIMPLEMENTED = 12,
};
enum {
  PROXY_BUFFER_HTTP_REQUEST_BODY = 0,
  PROXY_BUFFER_HTTP_RESPONSE_BODY = 1,
  PROXY_BUFFER_HTTP_CALL_RESPONSE_BODY = 4,
  PROXY_BUFFER_VM_CONFIGURATION = 6,
  PROXY_BUFFER_PLUGIN_CONFIGURATION = 7,
  PROXY_BUFFER_CALL_DATA = 8,
};
enum {
  PROXY_MAP_HTTP_REQUEST_HEADERS = 0,
  PROXY_MAP_HTTP_REQUEST_TRAILERS = 1,
  PROXY_MAP_HTTP_RESPONSE_HEADERS = 2,
  PROXY_MAP_HTTP_RESPONSE_TRAILERS = 3,
  PROXY_MAP_HTTP_CALL_RESPONSE_HEADERS = 6,
  PROXY_MAP_HTTP_CALL_RESPONSE_TRAILERS = 7,
};
enum { PROXY_STREAM_HTTP_REQUEST = 0, PROXY_STREAM_HTTP_RESPONSE = 1 };
enum {
  PROXY_LOG_TRACE,
  PROXY_LOG_DEBUG,
  PROXY_LOG_INFO,
  PROXY_LOG_WARN,
  PROXY_LOG_ERROR,
  PROXY_LOG_CRITICAL
};

/* ABI 0.2.1 */
WASMLET_IMPORT(proxy_done) proxy_status_t proxy_done(void);
WASMLET_IMPORT(proxy_set_effective_context) proxy_status_t proxy_set_effective_context(uint32_t context_id);
WASMLET_IMPORT(proxy_log) proxy_status_t proxy_log(uint32_t level, const char* message, size_t size);
WASMLET_IMPORT(proxy_get_log_level) proxy_status_t proxy_get_log_level(uint32_t* level);
WASMLET_IMPORT(proxy_get_current_time_nanoseconds)
proxy_status_t proxy_get_current_time_nanoseconds(uint64_t* ns);
WASMLET_IMPORT(proxy_set_tick_period_milliseconds)
proxy_status_t proxy_set_tick_period_milliseconds(uint32_t ms);
WASMLET_IMPORT(proxy_get_buffer_bytes)
proxy_status_t proxy_get_buffer_bytes(uint32_t type, size_t start, size_t max_size, char** data,
                                      size_t* size);
WASMLET_IMPORT(proxy_set_buffer_bytes)
proxy_status_t proxy_set_buffer_bytes(uint32_t type, size_t start, size_t size, const char* data,
                                      size_t data_size);
WASMLET_IMPORT(proxy_get_buffer_status)
proxy_status_t proxy_get_buffer_status(uint32_t type, size_t* length, uint32_t* flags);
WASMLET_IMPORT(proxy_get_header_map_size)
proxy_status_t proxy_get_header_map_size(uint32_t type, size_t* size);
WASMLET_IMPORT(proxy_get_header_map_pairs)
proxy_status_t proxy_get_header_map_pairs(uint32_t type, char** data, size_t* size);
WASMLET_IMPORT(proxy_set_header_map_pairs)
proxy_status_t proxy_set_header_map_pairs(uint32_t type, const char* data, size_t size);
WASMLET_IMPORT(proxy_get_header_map_value)
proxy_status_t proxy_get_header_map_value(uint32_t type, const char* key, size_t key_size, char** value,
                                          size_t* value_size);
WASMLET_IMPORT(proxy_add_header_map_value)
proxy_status_t proxy_add_header_map_value(uint32_t type, const char* key, size_t key_size, const char* value,
                                          size_t value_size);
WASMLET_IMPORT(proxy_replace_header_map_value)
proxy_status_t proxy_replace_header_map_value(uint32_t type, const char* key, size_t key_size,
                                              const char* value, size_t value_size);
WASMLET_IMPORT(proxy_remove_header_map_value)
proxy_status_t proxy_remove_header_map_value(uint32_t type, const char* key, size_t key_size);
WASMLET_IMPORT(proxy_continue_stream) proxy_status_t proxy_continue_stream(uint32_t stream_type);
WASMLET_IMPORT(proxy_close_stream) proxy_status_t proxy_close_stream(uint32_t stream_type);
WASMLET_IMPORT(proxy_get_status)
proxy_status_t proxy_get_status(uint32_t* code, char** message, size_t* message_size);
WASMLET_IMPORT(proxy_send_local_response)
proxy_status_t proxy_send_local_response(uint32_t status, const char* details, size_t details_size,
                                         const char* body, size_t body_size, const char* headers,
                                         size_t headers_size, int32_t grpc_status);
WASMLET_IMPORT(proxy_http_call)
proxy_status_t proxy_http_call(const char* upstream, size_t upstream_size, const char* headers,
                               size_t headers_size, const char* body, size_t body_size, const char* trailers,
                               size_t trailers_size, uint32_t timeout_ms, uint32_t* token);
WASMLET_IMPORT(proxy_grpc_call)
proxy_status_t proxy_grpc_call(const char* upstream, size_t upstream_size, const char* service,
                               size_t service_size, const char* method, size_t method_size,
                               const char* metadata, size_t metadata_size, const char* message,
                               size_t message_size, uint32_t timeout_ms, uint32_t* token);
WASMLET_IMPORT(proxy_grpc_stream)
proxy_status_t proxy_grpc_stream(const char* upstream, size_t upstream_size, const char* service,
                                 size_t service_size, const char* method, size_t method_size,
                                 const char* metadata, size_t metadata_size, uint32_t* token);
WASMLET_IMPORT(proxy_grpc_send)
proxy_status_t proxy_grpc_send(uint32_t token, const char* message, size_t message_size,
                               uint32_t end_of_stream);
WASMLET_IMPORT(proxy_grpc_cancel) proxy_status_t proxy_grpc_cancel(uint32_t token);
WASMLET_IMPORT(proxy_grpc_close) proxy_status_t proxy_grpc_close(uint32_t token);
WASMLET_IMPORT(proxy_set_shared_data)
proxy_status_t proxy_set_shared_data(const char* key, size_t key_size, const char* value, size_t value_size,
                                     uint32_t cas);
WASMLET_IMPORT(proxy_get_shared_data)
proxy_status_t proxy_get_shared_data(const char* key, size_t key_size, char** value, size_t* value_size,
                                     uint32_t* cas);
WASMLET_IMPORT(proxy_register_shared_queue)
proxy_status_t proxy_register_shared_queue(const char* name, size_t name_size, uint32_t* queue_id);
WASMLET_IMPORT(proxy_resolve_shared_queue)
proxy_status_t proxy_resolve_shared_queue(const char* vm_id, size_t vm_id_size, const char* name,
                                          size_t name_size, uint32_t* queue_id);
WASMLET_IMPORT(proxy_enqueue_shared_queue)
proxy_status_t proxy_enqueue_shared_queue(uint32_t queue_id, const char* value, size_t value_size);
WASMLET_IMPORT(proxy_dequeue_shared_queue)
proxy_status_t proxy_dequeue_shared_queue(uint32_t queue_id, char** value, size_t* value_size);
WASMLET_IMPORT(proxy_define_metric)
proxy_status_t proxy_define_metric(uint32_t type, const char* name, size_t name_size, uint32_t* metric_id);
WASMLET_IMPORT(proxy_record_metric) proxy_status_t proxy_record_metric(uint32_t metric_id, uint64_t value);
WASMLET_IMPORT(proxy_increment_metric)
proxy_status_t proxy_increment_metric(uint32_t metric_id, int64_t delta);
WASMLET_IMPORT(proxy_get_metric) proxy_status_t proxy_get_metric(uint32_t metric_id, uint64_t* value);
WASMLET_IMPORT(proxy_get_property)
proxy_status_t proxy_get_property(const char* path, size_t path_size, char** value, size_t* value_size);
WASMLET_IMPORT(proxy_set_property)
proxy_status_t proxy_set_property(const char* path, size_t path_size, const char* value, size_t value_size);
WASMLET_IMPORT(proxy_call_foreign_function)
proxy_status_t proxy_call_foreign_function(const char* name, size_t name_size, const char* args,
                                           size_t args_size, char** results, size_t* results_size);

/* ABI 0.1.0 only */
WASMLET_IMPORT(proxy_get_configuration) proxy_status_t proxy_get_configuration(char** data, size_t* size);
WASMLET_IMPORT(proxy_continue_request) proxy_status_t proxy_continue_request(void);
WASMLET_IMPORT(proxy_continue_response) proxy_status_t proxy_continue_response(void);
WASMLET_IMPORT(proxy_clear_route_cache) proxy_status_t proxy_clear_route_cache(void);

/* Layotto's extensions */
WASMLET_IMPORT(proxy_get_state)
proxy_status_t proxy_get_state(const char* store, size_t store_size, const char* key, size_t key_size,
                               char** value, size_t* value_size);
WASMLET_IMPORT(proxy_invoke_service)
proxy_status_t proxy_invoke_service(const char* id, size_t id_size, const char* method, size_t method_size,
                                    const char* param, size_t param_size, char** result, size_t* result_size);

/* wasmlet's state calls (docs/proxy-wasm-abi.md 11.5) */
#define WASMLET_STATE_FIRST_WRITE 1u /* proxy_save_state options: only create when no ETag is given */
WASMLET_IMPORT(proxy_get_state_item)
proxy_status_t proxy_get_state_item(const char* store, size_t store_size, const char* key, size_t key_size,
                                    char** value, size_t* value_size, char** etag, size_t* etag_size);
WASMLET_IMPORT(proxy_get_bulk_state)
proxy_status_t proxy_get_bulk_state(const char* store, size_t store_size, const char* keys, size_t keys_size,
                                    char** items, size_t* items_size);
WASMLET_IMPORT(proxy_save_state)
proxy_status_t proxy_save_state(const char* store, size_t store_size, const char* key, size_t key_size,
                                const char* value, size_t value_size, const char* etag, size_t etag_size,
                                uint32_t options, uint32_t ttl_seconds);
WASMLET_IMPORT(proxy_delete_state)
proxy_status_t proxy_delete_state(const char* store, size_t store_size, const char* key, size_t key_size,
                                  const char* etag, size_t etag_size);
/* wasmlet's lock and sequencer calls (docs/proxy-wasm-abi.md 11.6) */
WASMLET_IMPORT(proxy_try_lock)
proxy_status_t proxy_try_lock(const char* store, size_t store_size, const char* resource,
                              size_t resource_size, const char* owner, size_t owner_size,
                              uint32_t expire_seconds, uint32_t* taken);
WASMLET_IMPORT(proxy_unlock)
proxy_status_t proxy_unlock(const char* store, size_t store_size, const char* resource, size_t resource_size,
                            const char* owner, size_t owner_size, uint32_t* result);
WASMLET_IMPORT(proxy_get_next_id)
proxy_status_t proxy_get_next_id(const char* store, size_t store_size, const char* key, size_t key_size,
                                 uint64_t* id);
WASMLET_IMPORT(proxy_get_configuration_items)
proxy_status_t proxy_get_configuration_items(const char* store, size_t store_size, const char* keys,
                                             size_t keys_size, char** items, size_t* items_size);
WASMLET_IMPORT(proxy_publish_event)
proxy_status_t proxy_publish_event(const char* pubsub, size_t pubsub_size, const char* topic,
                                   size_t topic_size, const char* data, size_t data_size,
                                   const char* metadata, size_t metadata_size);
WASMLET_IMPORT(proxy_get_secret)
proxy_status_t proxy_get_secret(const char* store, size_t store_size, const char* name, size_t name_size,
                                char** data, size_t* data_size);
WASMLET_IMPORT(proxy_get_bulk_secret)
proxy_status_t proxy_get_bulk_secret(const char* store, size_t store_size, char** data, size_t* data_size);
WASMLET_IMPORT(proxy_execute_state_transaction)
proxy_status_t proxy_execute_state_transaction(const char* store, size_t store_size, const char* operations,
                                               size_t operations_size);

#ifdef __cplusplus
}
#endif

#endif /* WASMLET_SDK_ABI_H_ */
