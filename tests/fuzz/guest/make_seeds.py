#!/usr/bin/env python3
"""Writes the seed programs of fuzz_guest (tests/fuzz/corpus/fuzz_guest/) in the encoding
host_caller.c reads. Re-run it when that encoding or the order of its host calls changes:

    tests/fuzz/guest/make_seeds.py
"""
import os
import struct

# Special steps, then host calls: the order of host_caller.c's enum and HostCall switch.
SPECIAL = ["yield", "allocator_mode", "grow_memory", "trap", "end"]
HOST_CALLS = """proxy_done proxy_set_effective_context proxy_log proxy_get_log_level
proxy_get_current_time_nanoseconds proxy_set_tick_period_milliseconds proxy_get_buffer_bytes
proxy_set_buffer_bytes proxy_get_buffer_status proxy_get_header_map_size proxy_get_header_map_pairs
proxy_set_header_map_pairs proxy_get_header_map_value proxy_add_header_map_value
proxy_replace_header_map_value proxy_remove_header_map_value proxy_continue_stream proxy_close_stream
proxy_get_status proxy_send_local_response proxy_http_call proxy_grpc_call proxy_grpc_stream
proxy_grpc_send proxy_grpc_cancel proxy_grpc_close proxy_set_shared_data proxy_get_shared_data
proxy_register_shared_queue proxy_resolve_shared_queue proxy_enqueue_shared_queue
proxy_dequeue_shared_queue proxy_define_metric proxy_record_metric proxy_increment_metric
proxy_get_metric proxy_get_property proxy_set_property proxy_call_foreign_function
proxy_get_configuration proxy_continue_request proxy_continue_response proxy_clear_route_cache
legacy_resume_http_request legacy_resume_http_response legacy_resume_downstream
legacy_resume_upstream legacy_send_http_response legacy_dispatch_http_call legacy_grpc_call
legacy_dispatch_grpc_call legacy_open_grpc_stream legacy_send_grpc_call_message
legacy_cancel_grpc_call legacy_close_grpc_call legacy_remove_metric legacy_remove_shared_queue
legacy_resolve_shared_queue proxy_get_state proxy_invoke_service emscripten_notify_memory_growth
pthread_equal wasi_args_get wasi_args_sizes_get wasi_environ_get wasi_environ_sizes_get
wasi_clock_res_get wasi_clock_time_get wasi_fd_close wasi_fd_fdstat_get wasi_fd_filestat_get
wasi_fd_prestat_get wasi_fd_prestat_dir_name wasi_fd_pwrite wasi_fd_read wasi_fd_seek wasi_fd_tell
wasi_fd_write wasi_path_open wasi_poll_oneoff wasi_proc_exit wasi_random_get wasi_sched_yield""".split()
assert len(HOST_CALLS) == 83
OPS = {name: i for i, name in enumerate(SPECIAL + HOST_CALLS)}


# Arguments (see the top of host_caller.c).
def raw(v):
    return b"\x00" + struct.pack("<I", v & 0xFFFFFFFF)


def small(v):
    assert 0 <= v < 64
    return bytes([v << 2 | 1])


def slot(i):  # the address of scratch slot i
    return bytes([i << 3 | 4 | 3])


def value(i):  # the u32 in scratch slot i
    return bytes([i << 3 | 3])


class Data:
    """Bytes placed after the program's code; `at` answers a pointer argument to them."""

    def __init__(self, code_size):
        self.base, self.bytes = code_size, b""

    def at(self, data):
        offset = self.base + len(self.bytes)
        self.bytes += data
        return b"\x02" + struct.pack("<H", offset)


def pairs(ps):
    out = struct.pack("<I", len(ps))
    for n, v in ps:
        out += struct.pack("<II", len(n), len(v))
    for n, v in ps:
        out += n + b"\0" + v + b"\0"
    return out


def program(steps):
    """steps(d) returns a list of (op, args...); built twice: the data's offset is the code's size."""
    def build(base):
        d = Data(base)
        code = b"".join(bytes([OPS[op]]) + b"".join(args) for op, *args in steps(d))
        return code + bytes([OPS["end"]]), d.bytes
    code, _ = build(0)
    code, data = build(len(code))
    return code + data


HEADERS = pairs([(b"X-New", b"1"), (b"x-two", b"")])
CALL = pairs([(b":method", b"GET"), (b":path", b"/x"), (b":authority", b"up")])

SEEDS = {
    "headers": lambda d: [
        ("proxy_get_header_map_pairs", small(0), slot(0), slot(1)),
        ("proxy_get_header_map_value", small(0), d.at(b"x-fuzz"), small(6), slot(2), slot(3)),
        ("proxy_add_header_map_value", small(0), d.at(b"X-Add"), small(5), d.at(b"v"), small(1)),
        ("proxy_replace_header_map_value", small(0), d.at(b"x-fuzz"), small(6), d.at(b"2"), small(1)),
        ("proxy_remove_header_map_value", small(0), d.at(b"content-type"), small(12)),
        ("proxy_set_header_map_pairs", small(2), d.at(HEADERS), small(len(HEADERS))),
        ("proxy_get_header_map_size", small(1), slot(4)),
        ("proxy_get_header_map_pairs", small(1), slot(5), slot(6)),
    ],
    "buffers": lambda d: [
        ("proxy_get_buffer_status", small(0), slot(0), slot(1)),
        ("proxy_get_buffer_bytes", small(0), small(1), small(16), slot(2), slot(3)),
        ("proxy_set_buffer_bytes", small(1), small(0), small(0), d.at(b"hello"), small(5)),
        ("proxy_set_buffer_bytes", small(0), small(2), small(3), d.at(b"xy"), small(2)),
        ("proxy_get_buffer_bytes", small(6), small(0), raw(0xFFFFFFFF), slot(4), slot(5)),
        ("proxy_get_buffer_bytes", small(7), small(0), small(63), slot(4), slot(5)),
        ("proxy_get_buffer_bytes", small(8), small(0), small(63), slot(4), slot(5)),
        ("proxy_get_configuration", slot(6), slot(7)),
    ],
    "shared_data_and_queues": lambda d: [
        ("proxy_set_shared_data", d.at(b"k"), small(1), d.at(b"v"), small(1), small(0)),
        ("proxy_get_shared_data", d.at(b"k"), small(1), slot(0), slot(1), slot(2)),
        ("proxy_set_shared_data", d.at(b"k"), small(1), d.at(b"w"), small(1), value(2)),
        ("proxy_register_shared_queue", d.at(b"q"), small(1), slot(3)),
        ("proxy_enqueue_shared_queue", value(3), d.at(b"item"), small(4)),
        ("proxy_resolve_shared_queue", d.at(b"fuzz_vm"), small(7), d.at(b"q"), small(1), slot(4)),
        ("proxy_dequeue_shared_queue", value(4), slot(5), slot(6)),
        ("legacy_resolve_shared_queue", d.at(b"q"), small(1), slot(7)),
        ("proxy_enqueue_shared_queue", value(7), d.at(b"again"), small(5)),  # on_queue_ready
    ],
    "metrics": lambda d: [
        ("proxy_define_metric", small(0), d.at(b"fuzz_counter"), small(12), slot(0)),
        ("proxy_increment_metric", value(0), small(5), small(0)),
        ("proxy_increment_metric", value(0), raw(0xFFFFFFFF), raw(0xFFFFFFFF)),
        ("proxy_define_metric", small(1), d.at(b"fuzz_gauge"), small(10), slot(1)),
        ("proxy_record_metric", value(1), raw(0xFFFFFFFF), raw(0x7FFFFFFF)),
        ("proxy_get_metric", value(1), slot(2)),
        ("legacy_remove_metric", value(0)),
        ("proxy_get_metric", value(0), slot(3)),
    ],
    "properties": lambda d: [
        ("proxy_get_property", d.at(b"plugin_name"), small(11), slot(0), slot(1)),
        ("proxy_get_property", d.at(b"request\0path"), small(12), slot(0), slot(1)),
        ("proxy_get_property", d.at(b"request\0headers"), small(15), slot(0), slot(1)),
        ("proxy_set_property", d.at(b"a\0b"), small(3), d.at(b"c"), small(1)),
        ("proxy_get_property", d.at(b"a\0b"), small(3), slot(2), slot(3)),
        ("proxy_call_foreign_function", d.at(b"f"), small(1), d.at(b"x"), small(1), slot(4), slot(5)),
        ("proxy_get_log_level", slot(6)),
        ("proxy_log", small(2), d.at(b"from the program"), small(16)),
    ],
    "local_response": lambda d: [
        ("proxy_send_local_response", raw(403), d.at(b"denied"), small(6), d.at(b"no"), small(2),
         d.at(HEADERS), small(len(HEADERS)), raw(0xFFFFFFFF)),
        ("proxy_continue_stream", small(0)),
        ("proxy_close_stream", small(1)),
        ("proxy_get_status", slot(0), slot(1), slot(2)),
        ("legacy_send_http_response", raw(200), small(0), small(0), d.at(b"ok"), small(2), small(0),
         small(0), small(0)),
    ],
    "callouts": lambda d: [
        ("proxy_http_call", d.at(b"up"), small(2), d.at(CALL), small(len(CALL)), d.at(b"b"), small(1),
         small(0), small(0), small(50), slot(0)),
        ("proxy_grpc_call", d.at(b"up"), small(2), d.at(b"s"), small(1), d.at(b"m"), small(1), small(0),
         small(0), d.at(b"msg"), small(3), small(50), slot(1)),
        ("proxy_grpc_stream", d.at(b"up"), small(2), d.at(b"s"), small(1), d.at(b"m"), small(1),
         small(0), small(0), slot(2)),
        ("proxy_grpc_send", value(2), d.at(b"x"), small(1), small(1)),
        ("proxy_grpc_cancel", value(1)),
        ("proxy_grpc_close", value(2)),
        ("legacy_dispatch_http_call", d.at(b"up"), small(2), d.at(CALL), small(len(CALL)), small(0),
         small(0), small(0), small(0), small(50), slot(3)),
        ("legacy_open_grpc_stream", d.at(b"up"), small(2), d.at(b"s"), small(1), d.at(b"m"), small(1),
         slot(4)),
    ],
    "state_and_invoke": lambda d: [
        ("proxy_get_state", d.at(b"s"), small(1), d.at(b"book1"), small(5), slot(0), slot(1)),
        ("proxy_get_state", d.at(b"s"), small(1), d.at(b"broken"), small(6), slot(0), slot(1)),
        ("proxy_get_state", d.at(b"nope"), small(4), d.at(b"k"), small(1), slot(0), slot(1)),
        ("proxy_invoke_service", d.at(b"callee"), small(6), d.at(b"/m"), small(2), d.at(b"p"),
         small(1), slot(2), slot(3)),
        ("proxy_invoke_service", d.at(b"other"), small(5), small(0), small(0), small(0), small(0),
         slot(2), slot(3)),
    ],
    "wasi": lambda d: [
        ("wasi_clock_time_get", small(0), small(0), small(0), slot(0)),
        ("wasi_clock_res_get", small(1), slot(1)),
        ("wasi_random_get", slot(2), small(8)),
        ("wasi_args_sizes_get", slot(3), slot(4)),
        ("wasi_environ_sizes_get", slot(3), slot(4)),
        ("wasi_fd_fdstat_get", small(1), slot(8)),
        ("wasi_fd_write", small(1), raw(0xFFFFFFF0), small(1), slot(5)),
        ("wasi_fd_seek", small(1), small(0), small(0), small(0), slot(6)),
        ("wasi_poll_oneoff", slot(10), slot(20), small(1), slot(7)),
        ("wasi_path_open", small(3), small(0), d.at(b"f"), small(1), small(0), small(0), small(0),
         small(0), small(0), small(0), slot(9)),
        ("wasi_sched_yield",),
    ],
    # Wild pointers and lengths, and an allocator that misbehaves.
    "hostile": lambda d: [
        ("proxy_log", small(2), raw(0xFFFFFFF0), small(16)),
        ("proxy_get_header_map_pairs", small(0), raw(0xFFFFFFFC), slot(0)),
        ("proxy_set_header_map_pairs", small(0), d.at(HEADERS), raw(0x7FFFFFFF)),
        ("allocator_mode", bytes([1]), raw(0xFFFFFF00)),
        ("proxy_get_header_map_pairs", small(0), slot(0), slot(1)),
        ("allocator_mode", bytes([2]), small(0)),
        ("proxy_get_buffer_bytes", small(0), small(0), small(8), slot(0), slot(1)),
        ("allocator_mode", bytes([3]), small(0)),
        ("proxy_get_property", d.at(b"plugin_name"), small(11), slot(0), slot(1)),
    ],
    # The program spread over the callbacks after the body, with a pause and a timer.
    "yields": lambda d: [
        ("proxy_set_tick_period_milliseconds", small(10)),
        ("yield", small(0)),
        ("proxy_get_header_map_pairs", small(1), slot(0), slot(1)),  # request trailers
        ("yield", small(1)),
        ("proxy_get_header_map_pairs", small(2), slot(0), slot(1)),  # response headers
        ("proxy_set_effective_context", small(1)),
        ("yield", small(0)),
        ("proxy_done",),
        ("grow_memory", small(2)),
        ("proxy_set_buffer_bytes", small(1), small(0), small(0), d.at(b"late"), small(4)),
    ],
    "trap": lambda d: [("proxy_log", small(2), d.at(b"x"), small(1)), ("trap", bytes([ord("T")]))],
    "proc_exit": lambda d: [("wasi_proc_exit", small(3))],
}

if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "fuzz_guest")
    os.makedirs(out, exist_ok=True)
    for name, steps in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(program(steps))
