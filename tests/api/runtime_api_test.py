#!/usr/bin/env python3
"""The runtime API for applications, driven as an application drives it: Python's grpcio with
stubs generated from the project's proto files (by Debian's protoc and grpc_python_plugin),
against the real wasmlet binary on loopback, on a real redis-server or on the embedded store.
A function (tests/guests/state_function.cc, `id: id_state`) shares the components with the app,
so each test also checks that what the app does over gRPC is what the function sees.

    runtime_api_test.py --wasmlet BIN --guests DIR --stubs DIR --store redis|embedded [unittest args]
"""
import argparse
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

ARGS = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def eventually(predicate, what, timeout=20.0):
    """Polls `predicate` until it holds; fails naming `what` when it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("never happened: " + what)


class Process:
    """A child process whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv, log_path, cwd=None):
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT, close_fds=True, cwd=cwd)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        return self.proc.returncode


def http_get(port, headers, path="/"):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Sidecar:
    """wasmlet with the runtime API on a free port, a function listener with the state function,
    and every component on `store` ("redis": a redis-server of its own; "embedded": a file)."""

    def __init__(self, work, store, settings=None, api_address=None, components=None):
        self.work = work
        self.redis = None
        self.redis_port = None
        if store == "redis":
            self.redis_port = free_port()
            self.redis = Process(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", work],
                                 os.path.join(work, "redis.log"))
            eventually(lambda: accepts(self.redis_port), "redis-server accepts connections")
            metadata = {"redisHost": "127.0.0.1:%d" % self.redis_port}
        else:
            metadata = {"path": os.path.join(work, "state.db")}
        secrets_file = os.path.join(work, "secrets.json")
        with open(secrets_file, "w") as f:
            json.dump({"db-password": "s3cret", "api-key": "k-123"}, f)
        self.api_port = free_port()
        self.http_port = free_port()
        self.actuator_port = free_port()
        self.admin_port = free_port()
        component = {"type": store, "metadata": metadata}
        grpc_config = {
            "hellos": {"quick_start_demo": {"type": "helloworld", "hello": "greeting"}},
            "state": {"orders": component},
            "lock": {"locks": component},
            "sequencer": {"ids": component},
            "config_store": {"settings": component},
            "pub_subs": {"events": component},
            "secret_store": {"vault": {"type": "local.file", "metadata": {"secretsFile": secrets_file}}},
            "app": {"app_id": "app1"},
        }
        grpc_config.update(components or {})
        config = {
            "servers": [{
                "listeners": [
                    {"name": "grpc", "address": api_address or "127.0.0.1:%d" % self.api_port,
                     "filter_chains": [{"filters": [{"type": "grpc", "config": {
                         "server_name": "runtime", "grpc_config": grpc_config}}]}]},
                    {"name": "wasm", "address": "127.0.0.1:%d" % self.http_port,
                     "stream_filters": [{"type": "Layotto", "config": {
                         "state": {"name": "state", "instance_num": 2,
                                   "vm_config": {"engine": "wasmtime",
                                                 "path": os.path.join(ARGS.guests, "state_function.wasm")}},
                         "filter": {"name": "filter", "instance_num": 2,
                                    "vm_config": {"engine": "wasmtime", "cpu": 3000,
                                                  "path": os.path.join(ARGS.guests, "abi_filter.wasm")}}}}]},
                    # Layotto's actuator listener, as config_standalone.json has it.
                    {"name": "actuator", "address": "127.0.0.1:%d" % self.actuator_port,
                     "filter_chains": [{"filters": [{"type": "proxy", "config": {
                         "downstream_protocol": "Http1", "upstream_protocol": "Http1",
                         "router_config_name": "actuator_dont_need_router"}}]}],
                     "stream_filters": [{"type": "actuator_filter"}]},
                ],
                "routers": [{"router_config_name": "actuator_dont_need_router"}],
            }],
            "wasmlet": dict({"admin_address": "127.0.0.1:%d" % self.admin_port}, **(settings or {})),
        }
        self.config_path = os.path.join(work, "config.json")
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)
        self.wasmlet = Process([ARGS.wasmlet, "start", "-c", self.config_path], os.path.join(work, "wasmlet.log"))

    def wait_serving(self):
        eventually(lambda: accepts(self.api_port) or not self.wasmlet.running(),
                   "wasmlet serves the runtime API")
        if not self.wasmlet.running():
            raise AssertionError("wasmlet did not start:\n" + self.wasmlet.log())
        eventually(lambda: accepts(self.http_port), "wasmlet serves functions")

    def function(self, **headers):
        """Calls the state function with `headers` (op, key, value, ...)."""
        headers = {k.replace("_", "-"): v for k, v in headers.items()}
        headers["id"] = "id_state"
        return http_get(self.http_port, headers)

    def stop(self):
        code = self.wasmlet.stop()
        if self.redis:
            self.redis.stop()
        return code


def stubs():
    sys.path.insert(0, ARGS.stubs)
    import runtime_pb2  # noqa: E402  (generated at build time)
    import runtime_pb2_grpc  # noqa: E402
    return runtime_pb2, runtime_pb2_grpc


def callback_stubs():
    sys.path.insert(0, ARGS.stubs)
    import appcallback_pb2  # noqa: E402  (generated at build time)
    import appcallback_pb2_grpc  # noqa: E402
    return appcallback_pb2, appcallback_pb2_grpc


class RuntimeApiTest(unittest.TestCase):
    """Each test gets a sidecar of its own: nothing one test leaves behind reaches another."""

    def setUp(self):
        import grpc
        self.grpc = grpc
        self.pb, self.pb_grpc = stubs()
        self.work = tempfile.mkdtemp(prefix="runtime-api-")
        self.sidecar = Sidecar(self.work, ARGS.store)
        self.sidecar.wait_serving()
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.sidecar.api_port)
        self.api = self.pb_grpc.RuntimeStub(self.channel)

    def tearDown(self):
        self.channel.close()
        code = self.sidecar.stop()
        result = self._outcome.result
        failed = any(test is self for test, _ in result.failures + result.errors)
        if failed or code != 0:
            print("---- wasmlet's log ----\n" + self.sidecar.wasmlet.log())
        shutil.rmtree(self.work, ignore_errors=True)
        self.assertEqual(code, 0, "wasmlet did not stop cleanly on SIGTERM")

    def assertFails(self, code, call, *args, contains="", **kwargs):
        """`call(*args, **kwargs)` fails with the gRPC status `code`, its message holding `contains`."""
        with self.assertRaises(self.grpc.RpcError) as raised:
            call(*args, **dict({"timeout": 10}, **kwargs))
        self.assertEqual(raised.exception.code(), code, raised.exception.details())
        self.assertIn(contains, raised.exception.details())
        return raised.exception.details()

    def save(self, key, value, etag=None, first_write=False, metadata=None, timeout=10):
        pb = self.pb
        item = pb.StateItem(key=key, value=value, metadata=metadata or {})
        if etag is not None:
            item.etag.value = etag
        if first_write:
            item.options.concurrency = pb.StateOptions.CONCURRENCY_FIRST_WRITE
        return self.api.SaveState(pb.SaveStateRequest(store_name="orders", states=[item]), timeout=timeout)

    def get(self, key):
        return self.api.GetState(self.pb.GetStateRequest(store_name="orders", key=key), timeout=10)

    # ---- hello

    def test_say_hello_answers_the_components_greeting_and_echoes_the_data(self):
        pb = self.pb
        from google.protobuf import any_pb2, wrappers_pb2
        data = any_pb2.Any()
        data.Pack(wrappers_pb2.StringValue(value="payload"))
        answer = self.api.SayHello(pb.SayHelloRequest(service_name="quick_start_demo", name="layotto", data=data),
                                   timeout=10)
        self.assertEqual(answer.hello, "greeting, layotto")
        echoed = wrappers_pb2.StringValue()
        self.assertTrue(answer.data.Unpack(echoed))
        self.assertEqual(echoed.value, "payload")
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.api.SayHello,
                         pb.SayHelloRequest(service_name="nope"),
                         contains="no hello component named 'nope' (the config has: quick_start_demo)")

    # ---- state

    def test_what_the_app_saves_the_function_reads_and_the_other_way_round(self):
        self.save("book1", b"The Go Programming Language")
        item = self.get("book1")
        self.assertEqual(item.data, b"The Go Programming Language")
        self.assertTrue(item.etag)
        # The function reads the same item, at the same version.
        status, body = self.sidecar.function(op="get", key="book1")
        self.assertEqual((status, body), (200, "value=The Go Programming Language etag=%s\n" % item.etag))
        # And what the function saves, the app reads.
        status, body = self.sidecar.function(op="save", key="book2", value="from-function")
        self.assertEqual(status, 200, body)
        self.assertEqual(self.get("book2").data, b"from-function")
        # Under keyPrefix "appid" (the default) both sides use the key "app1||<key>".
        if self.sidecar.redis:
            keys = subprocess.run(["redis-cli", "-p", str(self.sidecar.redis_port), "--raw", "keys", "*book*"],
                                  capture_output=True, text=True, check=True).stdout.split()
            self.assertEqual(sorted(keys), ["app1||book1", "app1||book2"])

    def test_an_absent_key_is_an_empty_answer_and_a_bulk_get_keeps_the_order_asked(self):
        pb = self.pb
        absent = self.get("nothing")
        self.assertEqual((absent.data, absent.etag), (b"", ""))
        self.save("a", b"1")
        self.save("c", b"3")
        bulk = self.api.GetBulkState(pb.GetBulkStateRequest(store_name="orders", keys=["c", "b", "a"]), timeout=10)
        self.assertEqual([(i.key, i.data, bool(i.etag)) for i in bulk.items],
                         [("c", b"3", True), ("b", b"", False), ("a", b"1", True)])

    def test_etags_and_first_write_guard_writes_and_a_refused_write_is_aborted(self):
        pb = self.pb
        self.save("order-1", b"pending")
        etag = self.get("order-1").etag
        self.save("order-1", b"paid", etag=etag)
        self.assertFails(self.grpc.StatusCode.ABORTED, self.save, "order-1", b"lost", etag)
        self.assertEqual(self.get("order-1").data, b"paid")
        # First-write: the second creator loses.
        self.save("seat", b"alice", first_write=True)
        self.assertFails(self.grpc.StatusCode.ABORTED, self.save, "seat", b"bob", None, True)
        self.assertEqual(self.get("seat").data, b"alice")
        # A delete with a stale ETag is refused; with the current one it goes.
        stale = pb.DeleteStateRequest(store_name="orders", key="order-1", etag=pb.Etag(value=etag))
        self.assertFails(self.grpc.StatusCode.ABORTED, self.api.DeleteState, stale)
        current = pb.DeleteStateRequest(store_name="orders", key="order-1",
                                        etag=pb.Etag(value=self.get("order-1").etag))
        self.api.DeleteState(current, timeout=10)
        self.assertEqual(self.get("order-1").data, b"")
        status, body = self.sidecar.function(op="get", key="order-1")
        self.assertEqual(body, "absent\n")

    def test_a_transaction_applies_all_of_its_operations_or_none(self):
        pb = self.pb
        self.save("stock", b"10")
        self.save("gone", b"x")
        stale = pb.TransactionalStateOperation(
            operationType="upsert", request=pb.StateItem(key="stock", value=b"9", etag=pb.Etag(value="stale")))
        order = pb.TransactionalStateOperation(operationType="upsert", request=pb.StateItem(key="order", value=b"1"))
        self.assertFails(self.grpc.StatusCode.ABORTED, self.api.ExecuteStateTransaction,
                         pb.ExecuteStateTransactionRequest(storeName="orders", operations=[order, stale]))
        self.assertEqual(self.get("order").data, b"", "a refused transaction left a write behind")
        delete = pb.TransactionalStateOperation(operationType="delete", request=pb.StateItem(key="gone"))
        stock = pb.TransactionalStateOperation(
            operationType="upsert",
            request=pb.StateItem(key="stock", value=b"9", etag=pb.Etag(value=self.get("stock").etag)))
        self.api.ExecuteStateTransaction(
            pb.ExecuteStateTransactionRequest(storeName="orders", operations=[order, stock, delete]), timeout=10)
        self.assertEqual([self.get(k).data for k in ("order", "stock", "gone")], [b"1", b"9", b""])
        bad = pb.TransactionalStateOperation(operationType="merge", request=pb.StateItem(key="x"))
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.api.ExecuteStateTransaction,
                         pb.ExecuteStateTransactionRequest(storeName="orders", operations=[bad]),
                         contains='operations[0].operationType "merge" is neither "upsert" nor "delete"')

    def test_a_ttl_in_seconds_expires_the_item(self):
        self.save("session", b"token", metadata={"ttlInSeconds": "1"})
        self.assertEqual(self.get("session").data, b"token")
        eventually(lambda: self.get("session").data == b"", "the item with ttlInSeconds 1 expires")
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.save, "s", b"v", None, False,
                         {"ttlInSeconds": "soon"}, contains='metadata ttlInSeconds "soon" is not a number')

    def test_bad_requests_are_refused_naming_the_problem_and_change_nothing(self):
        pb = self.pb
        code = self.grpc.StatusCode.INVALID_ARGUMENT
        self.assertFails(code, self.api.GetState, pb.GetStateRequest(store_name="nope", key="k"),
                         contains="no state store named 'nope' (the config has: orders)")
        self.assertFails(code, self.api.GetState, pb.GetStateRequest(store_name="", key="k"),
                         contains="store_name is empty")
        self.assertFails(code, self.api.GetState, pb.GetStateRequest(store_name="orders", key=""),
                         contains="key is empty")
        # "||" joins the app id and the key: a key holding it could reach another app's items.
        self.assertFails(code, self.save, "other||k", b"v", contains='holds "||"')
        self.assertFails(code, self.api.TryLock,
                         pb.TryLockRequest(store_name="locks", resource_id="r", lock_owner="o", expire=0),
                         contains="expire is 0")
        # Over the message limit (4 MiB by default): refused by gRPC before any store sees it.
        self.assertFails(self.grpc.StatusCode.RESOURCE_EXHAUSTED, self.save, "big", b"x" * (5 << 20))
        self.assertEqual(self.get("big").data, b"")

    # ---- configuration

    def test_a_key_that_is_not_utf8_is_refused_saying_so_and_nothing_is_saved(self):
        # grpcio's own stubs cannot send such a key (Python refuses it first): the bytes go raw.
        def field(number, data):
            return bytes([number << 3 | 2, len(data)]) + data

        def raw(method):
            return self.channel.unary_unary("/spec.proto.runtime.v1.Runtime/" + method,
                                            request_serializer=None, response_deserializer=None)

        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, raw("SaveState"),
                         field(1, b"orders") + field(2, field(1, b"k\xc0") + field(2, b"v")),
                         contains="holds bytes that are not UTF-8")
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, raw("GetState"), field(1, b"orders") + field(2, b"k\xff"),
                         contains="/spec.proto.runtime.v1.Runtime/GetState")
        self.assertEqual(self.sidecar.function(op="get", key="k"), (200, "absent\n"))
        self.assertEqual(self.get("k").data, b"", "the call after them is served as usual")

    def test_configuration_the_app_saves_the_function_reads_and_deletes_remove_it(self):
        pb = self.pb
        items = [pb.ConfigurationItem(key="timeout", content="30s"), pb.ConfigurationItem(key="retries", content="3")]
        self.api.SaveConfiguration(pb.SaveConfigurationRequest(store_name="settings", items=items), timeout=10)

        def read(*keys):
            answer = self.api.GetConfiguration(pb.GetConfigurationRequest(store_name="settings", keys=keys),
                                               timeout=10)
            return [(i.key, i.content) for i in answer.items]

        self.assertEqual(read("retries", "missing", "timeout"), [("retries", "3"), ("timeout", "30s")])
        status, body = self.sidecar.function(op="config", store="settings", keys="timeout,retries")
        self.assertEqual((status, body), (200, "timeout=30s\nretries=3\n"))
        # An item saved with no content is removed, as is a deleted one.
        self.api.SaveConfiguration(pb.SaveConfigurationRequest(store_name="settings",
                                                               items=[pb.ConfigurationItem(key="timeout")]),
                                   timeout=10)
        self.assertEqual(read("retries", "timeout"), [("retries", "3")])
        self.api.DeleteConfiguration(pb.DeleteConfigurationRequest(store_name="settings", keys=["retries"]),
                                     timeout=10)
        self.assertEqual(read("retries", "timeout"), [])
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.api.SaveConfiguration,
                         pb.SaveConfigurationRequest(store_name="nope"),
                         contains="no configuration store named 'nope' (the config has: settings)")

    def test_subscribe_configuration_sends_the_items_then_every_change_until_cancelled(self):
        pb = self.pb
        self.api.SaveConfiguration(pb.SaveConfigurationRequest(
            store_name="settings", items=[pb.ConfigurationItem(key="color", content="red")]), timeout=10)
        # One request, then the client's side is closed (the iterator ends): changes still come.
        stream = self.api.SubscribeConfiguration(iter([pb.SubscribeConfigurationRequest(
            store_name="settings", app_id="app1", group="ui", keys=["color", "size"])]), timeout=60)

        def next_items():
            answer = next(stream)
            self.assertEqual((answer.store_name, answer.app_id), ("settings", "app1"))
            self.assertTrue(all(i.group == "ui" for i in answer.items))
            return [(i.key, i.content) for i in answer.items]

        self.assertEqual(next_items(), [("color", "red")], "the current items come first")
        self.api.SaveConfiguration(pb.SaveConfigurationRequest(
            store_name="settings", items=[pb.ConfigurationItem(key="size", content="10")]), timeout=10)
        self.assertEqual(next_items(), [("size", "10")])
        if self.sidecar.redis:
            # A change made in the store by someone else is seen too.
            subprocess.run(["redis-cli", "-p", str(self.sidecar.redis_port), "set", "color", "blue"], check=True,
                           capture_output=True)
            self.assertEqual(next_items(), [("color", "blue")])
        self.api.DeleteConfiguration(pb.DeleteConfigurationRequest(store_name="settings", keys=["color"]),
                                     timeout=10)
        self.assertEqual(next_items(), [("color", "")], "a removed item comes with an empty content")
        stream.cancel()
        bad = self.api.SubscribeConfiguration(iter([pb.SubscribeConfigurationRequest(store_name="nope", keys=["k"])]),
                                              timeout=10)
        with self.assertRaises(self.grpc.RpcError) as raised:
            next(bad)
        self.assertEqual(raised.exception.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("no configuration store named 'nope'", raised.exception.details())

    # ---- service invocation

    def test_invoke_service_calls_the_function_as_layottos_channel_does(self):
        pb = self.pb
        from google.protobuf import any_pb2

        def invoke(method, body=b"", verb=pb.HTTPExtension.NONE, query="", timeout=10, **metadata):
            message = pb.CommonInvokeRequest(method=method, data=any_pb2.Any(value=body), content_type="text/plain",
                                             http_extension=pb.HTTPExtension(verb=verb, querystring=query))
            return self.api.InvokeService(pb.InvokeServiceRequest(id="filter", message=message), timeout=timeout,
                                          metadata=[(k.replace("_", "-"), v) for k, v in metadata.items()])

        seen = invoke("orders/7", verb=pb.HTTPExtension.PUT, query="x=1", x_op="headers", x_in="from-app")
        lines = seen.data.value.decode().splitlines()
        for line in ["header :method=PUT", "header :path=/orders/7?x=1", "header id=filter", "x-in=from-app",
                     "header content-type=text/plain"]:
            self.assertIn(line, lines)
        self.assertFalse([l for l in lines if l.startswith("header grpc-")], "gRPC's own headers reached it")
        self.assertIn("header :method=GET", invoke("/", x_op="headers").data.value.decode().splitlines())
        self.assertEqual(invoke("/", body=b"hi", verb=pb.HTTPExtension.POST, x_op="echo").data.value, b"echo=hi\n")
        self.assertFails(self.grpc.StatusCode.UNAVAILABLE, invoke, "/", b"", pb.HTTPExtension.GET, "",
                         contains="function 'filter' answered 403: forbidden by the test policy", x_op="local")
        missing = pb.InvokeServiceRequest(id="nobody", message=pb.CommonInvokeRequest(method="/"))
        self.assertFails(self.grpc.StatusCode.NOT_FOUND, self.api.InvokeService, missing, contains="nobody")

    # ---- locks, ids, secrets

    def test_a_lock_the_app_holds_is_held_for_the_function_and_only_its_owner_unlocks_it(self):
        pb = self.pb
        take = pb.TryLockRequest(store_name="locks", resource_id="order-7", lock_owner="app-owner", expire=30)
        self.assertTrue(self.api.TryLock(take, timeout=10).success)
        self.assertFalse(self.api.TryLock(pb.TryLockRequest(store_name="locks", resource_id="order-7",
                                                            lock_owner="someone", expire=30), timeout=10).success)
        status, body = self.sidecar.function(op="lock", store="locks", key="order-7", owner="fn-owner")
        self.assertEqual((status, body), (200, "held\n"))
        unlock = self.api.Unlock(pb.UnlockRequest(store_name="locks", resource_id="order-7", lock_owner="fn-owner"),
                                 timeout=10)
        self.assertEqual(unlock.status, pb.UnlockResponse.LOCK_BELONG_TO_OTHERS)
        unlock = self.api.Unlock(pb.UnlockRequest(store_name="locks", resource_id="order-7",
                                                  lock_owner="app-owner"), timeout=10)
        self.assertEqual(unlock.status, pb.UnlockResponse.SUCCESS)
        unlock = self.api.Unlock(pb.UnlockRequest(store_name="locks", resource_id="order-7",
                                                  lock_owner="app-owner"), timeout=10)
        self.assertEqual(unlock.status, pb.UnlockResponse.LOCK_UNEXIST)
        status, body = self.sidecar.function(op="lock", store="locks", key="order-7", owner="fn-owner")
        self.assertEqual((status, body), (200, "taken\n"))

    def test_lock_keep_alive_renews_only_the_owners_lease(self):
        pb = self.pb

        def take(resource, owner, expire):
            return self.api.TryLock(pb.TryLockRequest(store_name="locks", resource_id=resource, lock_owner=owner,
                                                      expire=expire), timeout=10).success

        def keep_alive(resource, owner, expire):
            return self.api.LockKeepAlive(pb.LockKeepAliveRequest(store_name="locks", resource_id=resource,
                                                                  lock_owner=owner, expire=expire), timeout=10).status

        self.assertTrue(take("renewed", "me", 1))
        self.assertTrue(take("control", "me", 1))
        self.assertEqual(keep_alive("renewed", "me", 60), pb.LockKeepAliveResponse.SUCCESS)
        self.assertEqual(keep_alive("renewed", "you", 60), pb.LockKeepAliveResponse.LOCK_BELONG_TO_OTHERS)
        self.assertEqual(keep_alive("nothing", "me", 60), pb.LockKeepAliveResponse.LOCK_UNEXIST)
        # Once the lease both locks were taken with has passed, only the renewed one is held.
        eventually(lambda: take("control", "you", 1), "the unrenewed lock expires")
        self.assertFalse(take("renewed", "you", 1), "the renewed lease ended with the first one")

    def test_next_ids_strictly_increase_across_the_app_and_the_function(self):
        pb = self.pb
        ids = []
        for i in range(6):
            if i % 2:
                status, body = self.sidecar.function(op="next-id", store="ids", key="orders")
                self.assertEqual(status, 200, body)
                ids.append(int(body))
            else:
                strong = pb.SequencerOptions(increment=pb.SequencerOptions.STRONG if i else pb.SequencerOptions.WEAK)
                ids.append(self.api.GetNextId(pb.GetNextIdRequest(store_name="ids", key="orders", options=strong),
                                              timeout=10).next_id)
        self.assertEqual(ids, sorted(set(ids)), "ids did not strictly increase: %s" % ids)

    def test_secrets_are_read_one_at_a_time_or_all_at_once(self):
        pb = self.pb
        secret = self.api.GetSecret(pb.GetSecretRequest(store_name="vault", key="db-password"), timeout=10)
        self.assertEqual(dict(secret.data), {"db-password": "s3cret"})
        bulk = self.api.GetBulkSecret(pb.GetBulkSecretRequest(store_name="vault"), timeout=10)
        self.assertEqual({k: dict(v.secrets) for k, v in bulk.data.items()},
                         {"db-password": {"db-password": "s3cret"}, "api-key": {"api-key": "k-123"}})
        self.assertFails(self.grpc.StatusCode.NOT_FOUND, self.api.GetSecret,
                         pb.GetSecretRequest(store_name="vault", key="missing"))


class ActuatorTest(unittest.TestCase):
    """Layotto's health endpoints, as Kubernetes' probes call them."""

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="runtime-api-")
        self.sidecar = Sidecar(self.work, "embedded")
        self.sidecar.wait_serving()

    def tearDown(self):
        self.sidecar.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def probe(self, which):
        status, body = http_get(self.sidecar.actuator_port, {}, "/actuator/health/" + which)
        return status, json.loads(body)

    def test_liveness_and_readiness_answer_up_and_readiness_goes_down_while_stopping(self):
        up = {"status": "UP", "components": {"runtime_startup": {"status": "UP", "details": {"reason": ""}}}}
        self.assertEqual(self.probe("liveness"), (200, up))
        self.assertEqual(self.probe("readiness"), (200, up))
        status, body = http_get(self.sidecar.actuator_port, {}, "/actuator/nothing")
        self.assertEqual(status, 404)
        self.assertIn("/actuator/health/readiness", body)
        # A request that runs for a while (its function spins to its 3 s CPU limit) holds the
        # stop: meanwhile readiness answers 503 and DOWN, and liveness still UP.
        import threading
        spun = []
        spin = threading.Thread(target=lambda: spun.append(
            http_get(self.sidecar.http_port, {"id": "filter", "x-op": "spin"})))
        spin.start()
        busy = 'wasmlet_instances{id="filter",state="busy"} 1'
        eventually(lambda: busy in http_get(self.sidecar.admin_port, {}, "/metrics")[1], "the request spins")
        self.sidecar.wasmlet.proc.terminate()
        eventually(lambda: self.probe("readiness")[0] == 503, "readiness answers 503 while stopping")
        status, down = self.probe("readiness")
        self.assertEqual(down["status"], "DOWN")
        self.assertEqual(down["components"]["runtime_startup"]["details"]["reason"], "wasmlet is starting or stopping")
        self.assertEqual(self.probe("liveness")[0], 200)
        spin.join()
        self.assertEqual(spun[0][0], 504, spun)


class CallLimitTest(unittest.TestCase):
    """api_max_concurrent_calls: a call that blocks holds its thread and nothing else, and a call
    past the limit is refused at once, not queued behind the ones that block."""

    def setUp(self):
        import grpc
        self.grpc = grpc
        self.pb, self.pb_grpc = stubs()
        self.work = tempfile.mkdtemp(prefix="runtime-api-")
        self.sidecar = Sidecar(self.work, "embedded", settings={"api_max_concurrent_calls": 2})
        self.sidecar.wait_serving()
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.sidecar.api_port)
        self.api = self.pb_grpc.RuntimeStub(self.channel)

    def tearDown(self):
        self.channel.close()
        self.sidecar.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def test_a_call_past_the_limit_is_refused_at_once_and_the_rest_go_on(self):
        import threading
        from google.protobuf import any_pb2
        pb = self.pb
        ended = []

        def spin():  # the filter function spins to its 3 s CPU limit: the call blocks that long
            message = pb.CommonInvokeRequest(method="/", data=any_pb2.Any(value=b""))
            try:
                self.api.InvokeService(pb.InvokeServiceRequest(id="filter", message=message), timeout=60,
                                       metadata=[("x-op", "spin")])
                ended.append("answered")
            except self.grpc.RpcError as e:
                ended.append(e.code())

        spinners = [threading.Thread(target=spin) for _ in range(2)]
        for spinner in spinners:
            spinner.start()
        busy = 'wasmlet_instances{id="filter",state="busy"} 2'
        eventually(lambda: busy in http_get(self.sidecar.admin_port, {}, "/metrics")[1], "both calls spin")
        with self.assertRaises(self.grpc.RpcError) as raised:
            self.api.GetState(pb.GetStateRequest(store_name="orders", key="k"), timeout=60)
        self.assertEqual(raised.exception.code(), self.grpc.StatusCode.RESOURCE_EXHAUSTED,
                         raised.exception.details())
        self.assertIn("running as many calls as it runs at once (2, wasmlet.api_max_concurrent_calls)",
                      raised.exception.details())
        self.assertEqual([s.is_alive() for s in spinners], [True, True],
                         "the third call was refused while the two ran, not after them")
        # The functions are not behind the API's calls: the state function answers meanwhile.
        status, _ = self.sidecar.function(op="save", key="k", value="v")
        self.assertEqual(status, 200)
        for spinner in spinners:
            spinner.join()
        self.assertEqual(len(ended), 2)
        self.assertEqual(self.api.GetState(pb.GetStateRequest(store_name="orders", key="k"), timeout=10).data, b"v",
                         "once the calls ended, calls run again")


def layotto_standalone_config(grpc_port, actuator_port, admin_port):
    """The shape of Layotto's configs/config_standalone.json (mosn/layotto), with free ports: what
    a new user tries first. wasmlet's own admin port (34998 by default) is moved too, so that two
    of these tests can run at once."""
    return {
        "wasmlet": {"admin_address": "127.0.0.1:%d" % admin_port},
        "servers": [{
            "default_log_path": "stdout",
            "default_log_level": "DEBUG",
            "routers": [{"router_config_name": "actuator_dont_need_router"}],
            "listeners": [
                {"name": "grpc", "address": "127.0.0.1:%d" % grpc_port, "bind_port": True,
                 "filter_chains": [{"filters": [{"type": "grpc", "config": {
                     "server_name": "runtime",
                     "grpc_config": {
                         "hellos": {"quick_start_demo": {"type": "helloworld", "hello": "greeting"}},
                         "state": {"state_demo": {"type": "in-memory", "metadata": {}}},
                         "lock": {"lock_demo": {"type": "in-memory", "metadata": {}}},
                         "pub_subs": {"pub_subs_demo": {"type": "in-memory", "metadata": {"consumerID": "1"}}},
                         "sequencer": {"sequencer_demo": {"type": "in-memory", "metadata": {}}},
                         "secret_store": {
                             "secret_demo": {"type": "local.file",
                                             "metadata": {"secretsFile": "secret_local_file.json"}},
                             "secret_demo1": {"type": "local.env", "metadata": {}}},
                         "bindings": {"bindings_demo": {"type": "http",
                                                        "metadata": {"url": "https://mosn.io/layotto"}}},
                         "custom_component": {"helloworld": {"demo": {"type": "in-memory", "metadata": {}}}},
                         "app": {"app_id": "app1", "grpc_callback_port": free_port()},
                     }}}]}]},
                {"name": "actuator", "address": "127.0.0.1:%d" % actuator_port, "bind_port": True,
                 "filter_chains": [{"filters": [{"type": "proxy", "config": {
                     "downstream_protocol": "Http1", "upstream_protocol": "Http1",
                     "router_config_name": "actuator_dont_need_router"}}]}],
                 "stream_filters": [{"type": "actuator_filter"}]},
            ],
        }],
        "tracing": {"enable": True, "driver": "SOFATracer",
                    "config": {"generator": "mosntracing", "exporter": ["stdout"]}},
        "metrics": {"sinks": [{"type": "prometheus", "config": {"port": 34903}}]},
    }


class Recorder(http.server.ThreadingHTTPServer):
    """A loopback HTTP server that records each request (method, path, headers, body) and answers
    200 with {"seen": path} and a header of its own, or 403 to a path with /deny in it."""

    def __init__(self):
        self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(handler):
                length = int(handler.headers.get("Content-Length") or 0)
                body = handler.rfile.read(length) if length else b""
                self.seen.append((handler.command, handler.path, dict(handler.headers), body))
                denied = "/deny" in handler.path
                payload = b"denied" if denied else json.dumps({"seen": handler.path}).encode()
                handler.send_response(403 if denied else 200)
                handler.send_header("Content-Length", str(len(payload)))
                handler.send_header("X-Answered-By", "recorder")
                handler.end_headers()
                handler.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = answer

            def log_message(handler, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.server_address[1], path)

    def stop(self):
        self.shutdown()
        self.server_close()


class FilesAndBindingsTest(unittest.TestCase):
    """The components only apps use: a "local" file store (and one of a type wasmlet does not
    have, as a config written for Layotto may name) and an "http" output binding."""

    def setUp(self):
        import grpc
        self.grpc = grpc
        self.pb, self.pb_grpc = stubs()
        self.work = tempfile.mkdtemp(prefix="runtime-api-")
        self.root = os.path.join(self.work, "files")
        self.outside = os.path.join(self.work, "outside")
        os.makedirs(self.outside)
        with open(os.path.join(self.outside, "secret.txt"), "w") as f:
            f.write("not for the app")
        self.recorder = Recorder()
        self.sidecar = Sidecar(self.work, "embedded", components={
            "file": {"docs": {"type": "local", "metadata": {"root": self.root}},
                     "small": {"type": "local", "metadata": {"root": os.path.join(self.work, "small"),
                                                             "maxFileBytes": "1000"}},
                     "oss": {"type": "aliyun.oss", "metadata": {"endpoint": "oss.example.invalid"}}},
            "bindings": {"web": {"type": "http", "metadata": {"url": self.recorder.url("/base")}}},
        })
        self.sidecar.wait_serving()
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.sidecar.api_port)
        self.api = self.pb_grpc.RuntimeStub(self.channel)

    def tearDown(self):
        self.channel.close()
        code = self.sidecar.stop()
        self.recorder.stop()
        result = self._outcome.result
        if any(test is self for test, _ in result.failures + result.errors) or code != 0:
            print("---- wasmlet's log ----\n" + self.sidecar.wasmlet.log())
        shutil.rmtree(self.work, ignore_errors=True)
        self.assertEqual(code, 0, "wasmlet did not stop cleanly on SIGTERM")

    assertFails = RuntimeApiTest.assertFails

    def put(self, name, pieces, store="docs", timeout=10):
        pb = self.pb
        messages = [pb.PutFileRequest(store_name=store, name=name, data=pieces[0])]
        messages += [pb.PutFileRequest(data=piece) for piece in pieces[1:]]
        return self.api.PutFile(iter(messages), timeout=timeout)

    def read(self, name, store="docs", timeout=10):
        return [piece.data for piece in self.api.GetFile(self.pb.GetFileRequest(store_name=store, name=name),
                                                          timeout=timeout)]

    def file_request(self, name, store="docs"):
        return self.pb.FileRequest(store_name=store, name=name)

    def test_a_file_put_in_pieces_reads_back_whole_and_is_listed_described_and_deleted(self):
        pb = self.pb
        data = os.urandom(200 * 1024)
        self.put("reports/2026/q4.bin", [data[:70000], data[70000:140000], data[140000:]])
        pieces = self.read("reports/2026/q4.bin")
        self.assertGreater(len(pieces), 1, "a file larger than a piece comes in several")
        self.assertEqual(b"".join(pieces), data)
        listing = self.api.ListFile(pb.ListFileRequest(request=self.file_request("reports/2026")), timeout=10)
        self.assertEqual([(f.file_name, f.size, f.metadata["type"]) for f in listing.files],
                         [("q4.bin", len(data), "file")])
        self.assertFalse(listing.is_truncated)
        top = self.api.ListFile(pb.ListFileRequest(request=self.file_request("")), timeout=10)
        self.assertEqual([(f.file_name, f.metadata["type"]) for f in top.files], [("reports", "directory")])
        meta = self.api.GetFileMeta(pb.GetFileMetaRequest(request=self.file_request("reports/2026/q4.bin")),
                                    timeout=10)
        self.assertEqual(meta.size, len(data))
        self.assertRegex(meta.last_modified, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(list(meta.response.metadata["type"].value), ["file"])
        with open(os.path.join(self.root, "reports", "2026", "q4.bin"), "rb") as f:
            self.assertEqual(f.read(), data, "the file is where the store's root says")
        self.api.DelFile(pb.DelFileRequest(request=self.file_request("reports/2026/q4.bin")), timeout=10)
        self.assertFails(self.grpc.StatusCode.NOT_FOUND, self.read, "reports/2026/q4.bin",
                         contains="no file 'reports/2026/q4.bin' in file store 'docs'")
        self.assertFails(self.grpc.StatusCode.NOT_FOUND, self.api.GetFileMeta,
                         pb.GetFileMetaRequest(request=self.file_request("reports/2026/q4.bin")))

    def test_listing_goes_page_by_page_after_the_marker(self):
        pb = self.pb
        for name in ["c.txt", "a.txt", "b.txt"]:
            self.put(name, [name.encode()])
        first = self.api.ListFile(pb.ListFileRequest(request=self.file_request(""), page_size=2), timeout=10)
        self.assertEqual(([f.file_name for f in first.files], first.is_truncated), (["a.txt", "b.txt"], True))
        rest = self.api.ListFile(pb.ListFileRequest(request=self.file_request(""), page_size=2,
                                                    marker=first.marker), timeout=10)
        self.assertEqual(([f.file_name for f in rest.files], rest.is_truncated), (["c.txt"], False))
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.api.ListFile,
                         pb.ListFileRequest(request=self.file_request(""), page_size=5000), contains="page_size")

    def test_hostile_names_and_links_out_of_the_root_are_refused_and_nothing_is_written_outside(self):
        os.symlink(self.outside, os.path.join(self.root, "out"))
        for name, why in [("../outside/planted.txt", '".." part'), ("/tmp/planted.txt", "absolute"),
                          ("a/../../outside/planted.txt", '".." part'), ("a//b", "empty part"),
                          ("out/planted.txt", "'out', a symbolic link")]:
            self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.put, name, [b"x"], contains=why)
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.read, "out/secret.txt",
                         contains="a symbolic link")
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.read, "../outside/secret.txt")
        self.assertEqual(sorted(os.listdir(self.outside)), ["secret.txt"])
        self.assertEqual(sorted(os.listdir(self.root)), ["out"])

    def test_an_upload_cut_off_or_over_the_limit_leaves_no_file(self):
        pb = self.pb
        sent_first = threading.Event()
        release = threading.Event()

        def pieces():
            yield pb.PutFileRequest(store_name="docs", name="cut.bin", data=b"x" * 1000)
            sent_first.set()
            release.wait(20)

        call = self.api.PutFile.future(pieces(), timeout=20)
        self.assertTrue(sent_first.wait(10))
        eventually(lambda: any(n.startswith(".wasmlet-upload-") for n in os.listdir(self.root)),
                   "the upload is being written")
        call.cancel()
        release.set()
        eventually(lambda: os.listdir(self.root) == [], "the cut-off upload's temporary file is removed")
        self.assertFails(self.grpc.StatusCode.NOT_FOUND, self.read, "cut.bin")

        self.assertFails(self.grpc.StatusCode.RESOURCE_EXHAUSTED, self.put, "big.bin", [b"y" * 600, b"y" * 600],
                         store="small", contains="maxFileBytes")
        self.assertEqual(os.listdir(os.path.join(self.work, "small")), [])

    def test_an_unknown_store_is_invalid_and_a_type_wasmlet_lacks_is_unimplemented(self):
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.read, "a.txt", store="nope",
                         contains="no file store named 'nope' (the config has: docs, small, oss)")
        self.assertFails(self.grpc.StatusCode.UNIMPLEMENTED, self.read, "a.txt", store="oss",
                         contains='"aliyun.oss"')
        self.assertIn("its calls will answer Unimplemented", self.sidecar.wasmlet.log())

    def test_invoke_binding_sends_one_request_and_returns_the_answer(self):
        pb = self.pb
        answer = self.api.InvokeBinding(pb.InvokeBindingRequest(
            name="web", operation="create", data=b'{"order": 7}',
            metadata={"path": "orders/7", "X-Trace": "abc"}), timeout=10)
        self.assertEqual(json.loads(answer.data), {"seen": "/base/orders/7"})
        self.assertEqual(answer.metadata["statusCode"], "200")
        self.assertEqual(answer.metadata["X-Answered-By"], "recorder")
        method, path, headers, body = self.recorder.seen[-1]
        self.assertEqual((method, path, headers.get("X-Trace"), body), ("POST", "/base/orders/7", "abc",
                                                                        b'{"order": 7}'))
        self.assertFails(self.grpc.StatusCode.INTERNAL, self.api.InvokeBinding,
                         pb.InvokeBindingRequest(name="web", operation="get", metadata={"path": "/deny"}),
                         contains="answered 403: denied")
        sent = len(self.recorder.seen)
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.api.InvokeBinding,
                         pb.InvokeBindingRequest(name="web", operation="explode"), contains="it takes get, head")
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.api.InvokeBinding,
                         pb.InvokeBindingRequest(name="web", operation="get", metadata={"X-A": "1\r\nX-B: 2"}))
        self.assertFails(self.grpc.StatusCode.INVALID_ARGUMENT, self.api.InvokeBinding,
                         pb.InvokeBindingRequest(name="nope", operation="get"), contains="no binding named 'nope'")
        self.assertEqual(len(self.recorder.seen), sent, "a refused invoke sends nothing")


class App:
    """An application's AppCallback service, served with grpcio on `port`: it subscribes to
    `subscriptions` [(pubsub, topic, metadata)], records every event, and answers RETRY for the
    topics in `retry`."""

    def __init__(self, port, subscriptions, retry=()):
        import grpc
        from concurrent import futures
        cb, cb_grpc = callback_stubs()
        self.events = []
        self.lists = 0
        self.lock = threading.Lock()
        app = self

        class Servicer(cb_grpc.AppCallbackServicer):
            def ListTopicSubscriptions(self, request, context):
                with app.lock:
                    app.lists += 1
                return cb.ListTopicSubscriptionsResponse(subscriptions=[
                    cb.TopicSubscription(pubsub_name=p, topic=t, metadata=m) for p, t, m in subscriptions])

            def OnTopicEvent(self, request, context):
                with app.lock:
                    app.events.append(request)
                status = cb.TopicEventResponse.RETRY if request.topic in retry else cb.TopicEventResponse.SUCCESS
                return cb.TopicEventResponse(status=status)

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        cb_grpc.add_AppCallbackServicer_to_server(Servicer(), self.server)
        self.server.add_insecure_port("127.0.0.1:%d" % port)
        self.server.start()

    def received(self, topic):
        with self.lock:
            return [e for e in self.events if e.topic == topic]

    def listed(self):
        with self.lock:
            return self.lists

    def stop(self):
        self.server.stop(0).wait()


class AppCallbackTest(unittest.TestCase):
    """Pub/sub delivered to an app through its AppCallback service, on the store under test."""

    def setUp(self):
        import grpc
        self.grpc = grpc
        self.pb, self.pb_grpc = stubs()
        self.work = tempfile.mkdtemp(prefix="runtime-api-")
        self.app_port = free_port()
        self.apps = []
        self.sidecar = None

    def tearDown(self):
        code = 0
        if self.sidecar:
            self.channel.close()
            code = self.sidecar.stop()
        for app in self.apps:
            app.stop()
        result = self._outcome.result
        if self.sidecar and (any(test is self for test, _ in result.failures + result.errors) or code != 0):
            print("---- wasmlet's log ----\n" + self.sidecar.wasmlet.log())
        shutil.rmtree(self.work, ignore_errors=True)
        self.assertEqual(code, 0, "wasmlet did not stop cleanly on SIGTERM")

    def start_app(self, subscriptions, retry=()):
        app = App(self.app_port, subscriptions, retry)
        self.apps.append(app)
        return app

    def start_sidecar(self):
        self.sidecar = Sidecar(self.work, ARGS.store, components={
            "app": {"app_id": "app1", "grpc_callback_port": self.app_port},
        })
        self.sidecar.wait_serving()
        self.channel = self.grpc.insecure_channel("127.0.0.1:%d" % self.sidecar.api_port)
        self.api = self.pb_grpc.RuntimeStub(self.channel)

    def publish(self, topic, data, content_type="application/json"):
        self.api.PublishEvent(self.pb.PublishEventRequest(pubsub_name="events", topic=topic, data=data,
                                                          data_content_type=content_type), timeout=10)

    def test_the_app_gets_each_message_as_a_cloud_event_and_one_it_keeps_refusing_goes_to_the_dead_letter_topic(self):
        app = self.start_app([("events", "orders", {}),
                              ("events", "flaky", {"maxDeliveries": "3", "retryBackoffMs": "20"}),
                              ("events", "flaky-deadletter", {})], retry=("flaky",))
        self.start_sidecar()
        eventually(lambda: app.listed() >= 1, "wasmlet asks the app for its subscriptions")
        self.publish("orders", b'{"id": 7}')
        eventually(lambda: len(app.received("orders")) == 1, "the app gets the order")
        event = app.received("orders")[0]
        self.assertEqual((event.topic, event.pubsub_name, event.data, event.data_content_type, event.spec_version,
                          event.type), ("orders", "events", b'{"id": 7}', "application/json", "1.0",
                                        "com.dapr.event.sent"))
        self.assertTrue(event.id)
        self.publish("flaky", b"again", content_type="text/plain")
        eventually(lambda: len(app.received("flaky-deadletter")) == 1, "the refused message reaches the dead letter topic")
        self.assertEqual(len(app.received("flaky")), 3, "delivered maxDeliveries times, then moved")
        dead = app.received("flaky-deadletter")[0]
        self.assertEqual(dead.data, b"again")
        self.assertEqual(dead.metadata["wasmlet-original-topic"], "flaky")
        self.assertIn("not handled in 3 deliveries", dead.metadata["wasmlet-dead-letter-reason"])
        self.assertEqual(len(app.received("orders")), 1, "a message the app took is not delivered again")

    def test_a_subscription_stream_gets_each_message_and_a_retried_one_again(self):
        import queue
        self.start_sidecar()
        pb = self.pb
        cb = callback_stubs()[0]
        for n in range(2):
            self.publish("stream", b'{"n": %d}' % n)
        answers = queue.Queue()

        def requests():
            yield pb.SubscribeTopicEventsRequest(initial_request=pb.SubscribeTopicEventsRequestInitial(
                pubsub_name="events", topic="stream", metadata={"retryBackoffMs": "20"}))
            while True:
                answer = answers.get()
                if answer is None:
                    return
                yield answer

        def answer(event_id, status):
            answers.put(pb.SubscribeTopicEventsRequest(event_processed=pb.SubscribeTopicEventsRequestProcessed(
                id=event_id, status=cb.TopicEventResponse(status=status))))

        stream = self.api.SubscribeTopicEvents(requests(), timeout=60)
        self.addCleanup(answers.put, None)
        self.assertTrue(next(stream).HasField("initial_response"))
        first, second = next(stream).event_message, next(stream).event_message
        self.assertEqual((first.data, first.topic, first.pubsub_name, first.data_content_type),
                         (b'{"n": 0}', "stream", "events", "application/json"))
        self.assertEqual(second.data, b'{"n": 1}')
        answer(first.id, cb.TopicEventResponse.SUCCESS)
        answer(second.id, cb.TopicEventResponse.RETRY)
        again = next(stream).event_message
        self.assertEqual((again.id, again.data), (second.id, b'{"n": 1}'), "the retried message comes again")
        answer(again.id, cb.TopicEventResponse.SUCCESS)
        self.publish("stream", b'{"n": 2}')
        self.assertEqual(next(stream).event_message.data, b'{"n": 2}', "and then the next one, not the first again")
        stream.cancel()
        bad = self.api.SubscribeTopicEvents(iter([pb.SubscribeTopicEventsRequest(
            initial_request=pb.SubscribeTopicEventsRequestInitial(pubsub_name="nope", topic="t"))]), timeout=10)
        with self.assertRaises(self.grpc.RpcError) as raised:
            next(bad)
        self.assertEqual(raised.exception.code(), self.grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("no pub/sub named 'nope'", raised.exception.details())

    def test_an_app_that_is_down_loses_no_message_and_gets_them_when_it_is_back(self):
        app = self.start_app([("events", "orders", {"maxDeliveries": "1"})])
        self.start_sidecar()
        eventually(lambda: app.listed() >= 1, "wasmlet asks the app for its subscriptions")
        app.stop()
        self.apps.remove(app)
        for n in range(3):
            self.publish("orders", b'{"n": %d}' % n)
        eventually(lambda: "the app's callback cannot be reached" in self.sidecar.wasmlet.log(),
                   "wasmlet sees the app gone")
        back = self.start_app([("events", "orders", {"maxDeliveries": "1"})])
        eventually(lambda: back.listed() >= 1, "wasmlet asks the app that came back for its subscriptions")
        eventually(lambda: len(back.received("orders")) == 3, "the app gets the three messages")
        self.assertEqual(sorted(e.data for e in back.received("orders")), [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}'])
        self.assertNotIn("moved to 'orders-deadletter'", self.sidecar.wasmlet.log(),
                         "tries that did not reach the app do not count toward maxDeliveries")


class StandaloneConfigTest(unittest.TestCase):
    """Layotto's standalone config, unchanged but for its ports, starts and serves."""

    def test_layottos_standalone_config_starts_and_serves_its_components(self):
        import grpc
        pb, pb_grpc = stubs()
        work = tempfile.mkdtemp(prefix="runtime-api-")
        self.addCleanup(shutil.rmtree, work, True)
        with open(os.path.join(work, "secret_local_file.json"), "w") as f:
            json.dump({"db-user-pass:password": "S0m3Th1ng"}, f)
        grpc_port, actuator_port, admin_port = free_port(), free_port(), free_port()
        config_path = os.path.join(work, "config_standalone.json")
        with open(config_path, "w") as f:
            json.dump(layotto_standalone_config(grpc_port, actuator_port, admin_port), f, indent=2)
        # Layotto's secretsFile is relative: like Layotto, wasmlet reads it from where it starts.
        wasmlet = Process([ARGS.wasmlet, "start", "-c", config_path], os.path.join(work, "wasmlet.log"), cwd=work)
        self.addCleanup(wasmlet.stop)
        eventually(lambda: accepts(grpc_port) or not wasmlet.running(), "wasmlet serves the runtime API")
        self.assertTrue(wasmlet.running(), wasmlet.log())
        with grpc.insecure_channel("127.0.0.1:%d" % grpc_port) as channel:
            api = pb_grpc.RuntimeStub(channel)
            self.assertEqual(api.SayHello(pb.SayHelloRequest(service_name="quick_start_demo"), timeout=10).hello,
                             "greeting")
            api.SaveState(pb.SaveStateRequest(store_name="state_demo",
                                              states=[pb.StateItem(key="hello", value=b"world")]), timeout=10)
            self.assertEqual(api.GetState(pb.GetStateRequest(store_name="state_demo", key="hello"),
                                          timeout=10).data, b"world")
            self.assertTrue(api.TryLock(pb.TryLockRequest(store_name="lock_demo", resource_id="r", lock_owner="o",
                                                          expire=10), timeout=10).success)
            first = api.GetNextId(pb.GetNextIdRequest(store_name="sequencer_demo", key="k"), timeout=10).next_id
            second = api.GetNextId(pb.GetNextIdRequest(store_name="sequencer_demo", key="k"), timeout=10).next_id
            self.assertLess(first, second)
            secret = api.GetSecret(pb.GetSecretRequest(store_name="secret_demo", key="db-user-pass:password"),
                                   timeout=10)
            self.assertEqual(dict(secret.data), {"db-user-pass:password": "S0m3Th1ng"})
            api.PublishEvent(pb.PublishEventRequest(pubsub_name="pub_subs_demo", topic="hello", data=b"x"),
                             timeout=10)
        status, body = http_get(actuator_port, {}, "/actuator/health/readiness")
        self.assertEqual((status, json.loads(body)["status"]), (200, "UP"))


class ExposureTest(unittest.TestCase):
    """The runtime API's token and the rule for addresses other machines can reach."""

    def setUp(self):
        import grpc
        self.grpc = grpc
        self.pb, self.pb_grpc = stubs()
        self.work = tempfile.mkdtemp(prefix="runtime-api-")
        self.sidecars = []

    def tearDown(self):
        for sidecar in self.sidecars:
            sidecar.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def sidecar(self, **kwargs):
        sidecar = Sidecar(tempfile.mkdtemp(dir=self.work), "embedded", **kwargs)
        self.sidecars.append(sidecar)
        return sidecar

    def test_with_a_token_a_call_without_it_is_unauthenticated(self):
        sidecar = self.sidecar(settings={"api_token": "t0ken"})
        sidecar.wait_serving()
        with self.grpc.insecure_channel("127.0.0.1:%d" % sidecar.api_port) as channel:
            api = self.pb_grpc.RuntimeStub(channel)
            request = self.pb.SayHelloRequest(service_name="quick_start_demo")
            with self.assertRaises(self.grpc.RpcError) as raised:
                api.SayHello(request, timeout=10)
            self.assertEqual(raised.exception.code(), self.grpc.StatusCode.UNAUTHENTICATED)
            self.assertIn("dapr-api-token", raised.exception.details())
            with self.assertRaises(self.grpc.RpcError) as raised:
                api.SayHello(request, timeout=10, metadata=[("dapr-api-token", "wrong")])
            self.assertEqual(raised.exception.code(), self.grpc.StatusCode.UNAUTHENTICATED)
            self.assertEqual(api.SayHello(request, timeout=10, metadata=[("dapr-api-token", "t0ken")]).hello,
                             "greeting")
            self.assertEqual(api.SayHello(request, timeout=10, metadata=[("authorization", "Bearer t0ken")]).hello,
                             "greeting")

    def test_an_address_other_machines_reach_without_a_token_is_refused_unless_opted_in(self):
        refused = self.sidecar(api_address="0.0.0.0:%d" % free_port())
        eventually(lambda: not refused.wasmlet.running(), "wasmlet refuses to start")
        self.assertNotEqual(refused.wasmlet.proc.returncode, 0)
        self.assertIn("is reachable from other machines and no api_token is set", refused.wasmlet.log())
        self.assertIn("wasmlet.api_allow_insecure", refused.wasmlet.log())
        port = free_port()
        allowed = self.sidecar(api_address="0.0.0.0:%d" % port, settings={"api_allow_insecure": True})
        allowed.api_port = port
        allowed.wait_serving()
        self.assertIn("the runtime API on 0.0.0.0:%d has no token and is reachable from other machines" % port,
                      allowed.wasmlet.log())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--wasmlet", required=True)
    parser.add_argument("--guests", required=True)
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--store", choices=["redis", "embedded"], required=True)
    ARGS, rest = parser.parse_known_args()
    ARGS.wasmlet, ARGS.guests, ARGS.stubs = (os.path.abspath(p) for p in (ARGS.wasmlet, ARGS.guests, ARGS.stubs))
    # The exposure rules do not depend on the store: they run once, with the embedded one.
    suites = ["RuntimeApiTest", "AppCallbackTest"] + (
        ["ExposureTest", "ActuatorTest", "StandaloneConfigTest", "FilesAndBindingsTest", "CallLimitTest"]
        if ARGS.store == "embedded" else [])
    unittest.main(argv=[sys.argv[0], "-v"] + rest, defaultTest=None if rest else suites)
