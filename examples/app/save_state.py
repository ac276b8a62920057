#!/usr/bin/env python3
"""An application saving state through Layotto's gRPC runtime API, as an app beside Layotto or
wasmlet does: python3 examples/app/save_state.py KEY VALUE [ADDRESS]. It uses grpcio (Debian's
python3-grpcio) and the stubs the build generates from src/server/api/proto into
build/tests/api_stubs."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "build", "tests", "api_stubs"))
import grpc  # noqa: E402
import runtime_pb2  # noqa: E402
import runtime_pb2_grpc  # noqa: E402

key, value = sys.argv[1], sys.argv[2]
address = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1:34904"
with grpc.insecure_channel(address) as channel:
    runtime = runtime_pb2_grpc.RuntimeStub(channel)
    item = runtime_pb2.StateItem(key=key, value=value.encode())
    runtime.SaveState(runtime_pb2.SaveStateRequest(store_name="state_demo", states=[item]), timeout=10)
    saved = runtime.GetState(runtime_pb2.GetStateRequest(store_name="state_demo", key=key), timeout=10)
    print("saved %s = %s (etag %s)" % (key, saved.data.decode(), saved.etag))
