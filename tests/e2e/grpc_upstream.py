#!/usr/bin/python3
"""The gRPC upstream of tests/e2e/grpc_test.cc: the service test.Echo on 127.0.0.1 (cleartext
HTTP/2), with raw bytes as messages (no protobuf). Prints its port on stdout and serves until its
stdin closes. Needs Debian's python3-grpcio.

Methods:
  Unary      (unary)   b"echo:" + request + b"|x-test=" + the metadata x-test (or "none")
  Stream     (stream)  initial metadata x-initial: hello, each message echoed back, then
                       trailing metadata x-trailing: bye
  Fail       (unary)   status INVALID_ARGUMENT, message "bad thing"
  Slow       (unary)   answers after 2 s (for deadlines)
  Hold       (stream)  acknowledges the first message with initial metadata x-held: yes, then
                       holds the call until the client cancels it, or ends it OK once the client
                       has half-closed; counts those ends
  Cancelled  (unary)   how many Hold calls have ended, as decimal text
  Big        (unary)   int(request) bytes of b"x"
"""
import sys
import threading
from concurrent import futures

import grpc

_lock = threading.Lock()
_held_calls_ended = 0


def _ended_event(context):
    """An event set when the call ends (completed, cancelled or expired)."""
    ended = threading.Event()
    if not context.add_callback(ended.set):
        ended.set()  # already over
    return ended


def unary(request, context):
    metadata = dict(context.invocation_metadata())
    return b"echo:" + request + b"|x-test=" + metadata.get("x-test", "none").encode()


def stream(request_iterator, context):
    context.send_initial_metadata((("x-initial", "hello"),))
    for message in request_iterator:
        yield message
    context.set_trailing_metadata((("x-trailing", "bye"),))


def fail(request, context):
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad thing")


def slow(request, context):
    _ended_event(context).wait(2.0)
    return b"slow:" + request


def hold(request_iterator, context):
    global _held_calls_ended
    ended = _ended_event(context)
    acknowledged = False
    try:
        for _ in request_iterator:
            if not acknowledged:
                context.send_initial_metadata((("x-held", "yes"),))
                acknowledged = True
    except grpc.RpcError:
        pass  # the call was cancelled while we read
    if not context.is_active():
        ended.wait()  # cancelled: counted once it is over
    # else the client half-closed: returning ends the call with status OK
    with _lock:
        _held_calls_ended += 1
    return iter(())


def cancelled(request, context):
    with _lock:
        return str(_held_calls_ended).encode()


def big(request, context):
    return b"x" * int(request)


def main():
    handler = grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.stream_stream_rpc_method_handler(stream),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
            "Hold": grpc.stream_stream_rpc_method_handler(hold),
            "Cancelled": grpc.unary_unary_rpc_method_handler(cancelled),
            "Big": grpc.unary_unary_rpc_method_handler(big),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), handlers=(handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.buffer.read()  # until the test closes our stdin (or goes away)
    server.stop(0).wait()


if __name__ == "__main__":
    main()
