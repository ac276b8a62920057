#!/usr/bin/python3
"""CriTest: a Kubernetes pod with runtimeClassName wasmlet starts through containerd's CRI plugin,
with no kubelet, and leaves nothing behind.

Debian's containerd runs with the CRI plugin on, with a private root, state, gRPC socket, CNI
folders and sandbox image, and the runtime handler `wasmlet` exactly as deploy/
containerd-runtime.toml gives it. The test speaks the kubelet's part over that socket: CRI's
runtime.v1 calls, hand-encoded protobuf on raw gRPC bytes (no generated stubs). The pod runs the
quickstart's two functions (images from `wasmlet pack`, as deploy/function*-pod.yaml say) on the
host network; the sandbox image is a static `pause` built here and written as an OCI archive, so
nothing is pulled. The shim starts the node's daemon from deploy/shim.json and deploy/node.json
(with private ports and paths), and function 1 answers over HTTP on loopback. Then the pod is
taken down as the kubelet does, and no sandbox, container, shim, mount or installed function
is left.

  cri_test.py WASMLET_BINARY SHIM_DIR EXAMPLES_DIR DEPLOY_DIR WORK_DIR

Needs root (containerd mounts) and Debian's containerd and python3-grpcio; exits 77 (skipped)
when not root. Logs (containerd's, with the shims' lines, and the daemon's) are kept in WORK_DIR.
"""
import ctypes
import gzip
import hashlib
import http.client
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback

try:
    import grpc
except ImportError:
    sys.exit("FAIL: the CRI test needs Debian's python3-grpcio (apt-get install python3-grpcio)")

SANDBOX_IMAGE = "wasmlet.test/pause:1.0"
# The quickstart as deploy/function1-pod.yaml and function2-pod.yaml run it: function 1 (id_1)
# asks function 2 (id_2) for the inventory kept in the state store.
FUNCTIONS = [
    {"name": "function2", "image": "wasmlet.local/function2:v1", "route_id": "id_2"},
    {"name": "function1", "image": "wasmlet.local/function1:v1", "route_id": "id_1"},
]
FUNCTION_ENV = {"WASMLET_CPU": "1000", "WASMLET_MEM": "64"}  # the pod files' settings
POD_ANNOTATIONS = {"io.wasmlet.instance_num": "2"}  # as deploy/function1-pod.yaml sets it
QUICKSTART_ANSWER = "There are 100 inventories for book1."
SHIM = "containerd-shim-wasmlet-v2"


class TestFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def wait_until(condition, seconds, interval=0.05):
    """Polls `condition` until it holds or `seconds` pass; returns its last value."""
    give_up = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() >= give_up:
            return value
        time.sleep(interval)


# --- Protobuf's wire format, the little of it CRI's messages need ---------------------------


def _varint(value):
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(field, wire_type):
    return _varint(field << 3 | wire_type)


def number(field, value):
    """A varint field (enums, bools, non-negative integers)."""
    return _key(field, 0) + _varint(value)


def text(field, value):
    data = value.encode()
    return _key(field, 2) + _varint(len(data)) + data


def message(field, *parts):
    body = b"".join(parts)
    return _key(field, 2) + _varint(len(body)) + body


def _read_varint(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def fields(data):
    """A message's fields: {number: [value, ...]}; varints as int, length-delimited as bytes."""
    found = {}
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        wire_type = key & 7
        if wire_type == 0:
            value, at = _read_varint(data, at)
        elif wire_type == 2:
            length, at = _read_varint(data, at)
            value, at = data[at:at + length], at + length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value, at = data[at:at + size], at + size
        else:
            raise ValueError("unsupported protobuf wire type %d" % wire_type)
        found.setdefault(key >> 3, []).append(value)
    return found


def first(data, field, default=None):
    return fields(data).get(field, [default])[0]


# --- CRI runtime.v1 (k8s.io/cri-api pkg/apis/runtime/v1/api.proto): field numbers ------------

NAMESPACE_MODE_NODE = 2
CONTAINER_RUNNING, CONTAINER_EXITED = 1, 2
CONTAINER_STATES = {0: "CREATED", 1: "RUNNING", 2: "EXITED", 3: "UNKNOWN"}


def pod_sandbox_config(name, uid, namespace, log_directory, annotations):
    return b"".join([
        message(1, text(1, name), text(2, uid), text(3, namespace)),  # metadata
        text(3, log_directory),
        b"".join(message(7, text(1, k), text(2, v)) for k, v in sorted(annotations.items())),  # annotations
        # linux.security_context.namespace_options.network = NODE: host network, no CNI
        message(8, message(2, message(1, number(1, NAMESPACE_MODE_NODE)))),
    ])


def container_config(name, image, env, log_path):
    return b"".join([
        message(1, text(1, name)),  # metadata
        message(2, text(1, image)),  # image
        b"".join(message(6, text(1, k), text(2, v)) for k, v in sorted(env.items())),  # envs
        text(11, log_path),
    ])


class Cri:
    """containerd's CRI services over its gRPC socket, on raw bytes."""

    def __init__(self, socket_path):
        self._channel = grpc.insecure_channel("unix://" + socket_path)

    def close(self):
        self._channel.close()

    def call(self, method, request=b"", timeout=60, service="RuntimeService"):
        call = self._channel.unary_unary("/runtime.v1.%s/%s" % (service, method),
                                         request_serializer=None, response_deserializer=None)
        try:
            return call(request, timeout=timeout)
        except grpc.RpcError as error:
            raise TestFailure("CRI %s failed: %s: %s" % (method, error.code().name, error.details()))

    def version(self):
        response = fields(self.call("Version", text(1, "v1"), timeout=5))
        return {name: response.get(field, [b""])[0].decode()
                for field, name in ((2, "runtime_name"), (3, "runtime_version"), (4, "runtime_api_version"))}

    def image_known(self, image):
        return first(self.call("ImageStatus", message(1, text(1, image)), service="ImageService"), 1) is not None

    def run_pod_sandbox(self, config, handler):
        return first(self.call("RunPodSandbox", message(1, config) + text(2, handler)), 1).decode()

    def pod_sandbox_handler(self, sandbox_id):
        status = first(self.call("PodSandboxStatus", text(1, sandbox_id)), 1, b"")
        return first(status, 9, b"").decode()

    def create_container(self, sandbox_id, config, sandbox_config):
        request = text(1, sandbox_id) + message(2, config) + message(3, sandbox_config)
        return first(self.call("CreateContainer", request), 1).decode()

    def container_status(self, container_id):
        """(state name, exit code) of a container."""
        status = fields(first(self.call("ContainerStatus", text(1, container_id)), 1, b""))
        exit_code = status.get(7, [0])[0]
        if exit_code >= 1 << 63:
            exit_code -= 1 << 64  # int32 travels sign-extended
        return CONTAINER_STATES.get(status.get(3, [0])[0], "?"), exit_code

    def pod_sandbox_ids(self):
        return [first(item, 1, b"").decode() for item in fields(self.call("ListPodSandbox")).get(1, [])]

    def container_ids(self):
        return [first(item, 1, b"").decode() for item in fields(self.call("ListContainers")).get(1, [])]


# --- The sandbox image: a static pause, as an OCI image archive ------------------------------

PAUSE_SOURCE = r"""
#include <signal.h>
#include <unistd.h>
/* A pod sandbox's process: holds the pod until it is told to stop. */
static void stop(int sig) { (void)sig; _exit(0); }
int main(void) {
  signal(SIGTERM, stop);
  signal(SIGINT, stop);
  for (;;) pause();
}
"""


def _tar(entries):
    """A tar archive (bytes) of {path: (content, mode)}, with fixed owners and times."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, (content, mode) in entries.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(content), mode, 0
            archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _descriptor(media_type, blob):
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(blob).hexdigest(), "size": len(blob)}


def oci_image_archive(reference, files, entrypoint):
    """An OCI image layout in one tar (what `ctr image import` takes): one gzip layer holding
    `files` ({path: (content, mode)}), an index whose annotations name the image."""
    layer_tar = _tar(files)
    layer = gzip.compress(layer_tar, mtime=0)
    architecture = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    config = json.dumps({
        "architecture": architecture,
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
    }).encode()
    manifest_descriptor = _descriptor("application/vnd.oci.image.manifest.v1+json", manifest)
    manifest_descriptor["annotations"] = {"io.containerd.image.name": reference,
                                          "org.opencontainers.image.ref.name": reference.rsplit(":", 1)[1]}
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [manifest_descriptor]}).encode()
    entries = {"oci-layout": (json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), 0o644),
               "index.json": (index, 0o644)}
    for blob in (layer, config, manifest):
        entries["blobs/sha256/" + hashlib.sha256(blob).hexdigest()] = (blob, 0o644)
    return _tar(entries)


def build_pause_image(folder):
    source = os.path.join(folder, "pause.c")
    binary = os.path.join(folder, "pause")
    with open(source, "w") as out:
        out.write(PAUSE_SOURCE)
    built = subprocess.run(["gcc", "-static", "-O2", "-o", binary, source],
                           capture_output=True, text=True, timeout=120)
    check(built.returncode == 0, "cannot build the static pause program (gcc and libc6-dev are needed):\n"
          + built.stderr)
    with open(binary, "rb") as program:
        archive = oci_image_archive(SANDBOX_IMAGE, {"pause": (program.read(), 0o755)}, ["/pause"])
    path = os.path.join(folder, "pause.tar")
    with open(path, "wb") as out:
        out.write(archive)
    return path


# --- The node: containerd with CRI, the shim's settings, the daemon's config -----------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, headers=None):
    """(status, body) of a GET on 127.0.0.1:port; status 0 when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    except OSError as error:
        return 0, str(error)
    finally:
        connection.close()


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except OSError as error:
        return "(%s)\n" % error


def mounts_under(folder):
    """Mount points (deepest first) under `folder`, from /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].encode().decode("unicode_escape")  # \040 and the like
            if point.startswith(folder + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def processes_with(*words):
    """Pids whose command line holds every one of `words`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as cmdline:
                line = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended meanwhile
        if all(word in line for word in words):
            found.append(int(name))
    return found


class Node:
    """A node as an operator sets it up, in a private folder: containerd with the CRI plugin and
    the wasmlet runtime handler, the shim's settings, and the daemon's config and state."""

    def __init__(self, wasmlet, shim_dir, deploy_dir, work_dir):
        self.wasmlet = wasmlet
        self.shim_dir = shim_dir
        self.deploy_dir = deploy_dir
        self.work_dir = work_dir
        # Socket paths must stay short (108 bytes), so the node lives under the system's temp
        # folder; the logs go to WORK_DIR, where they outlive the run.
        self.root = tempfile.mkdtemp(prefix="wasmlet-cri-")
        self.socket = os.path.join(self.root, "containerd.sock")
        self.state_dir = os.path.join(self.root, "run")
        self.containerd_log = os.path.join(work_dir, "containerd.log")
        self.daemon_log = os.path.join(work_dir, "wasmlet.log")
        self.function_port = free_port()
        self.admin_port = free_port()
        self.containerd = None
        self.cri = None

    def _deploy_json(self, name):
        with open(os.path.join(self.deploy_dir, name)) as deployed:
            return json.load(deployed)

    def write_daemon_config(self):
        """deploy/node.json with loopback ports, its state file and state_dir in the node's folder."""
        config = self._deploy_json("node.json")
        listeners = {listener["name"]: listener for listener in config["servers"][0]["listeners"]}
        check({"grpc", "wasm"} <= set(listeners), "deploy/node.json has no 'grpc' and 'wasm' listeners")
        listeners["grpc"]["address"] = "127.0.0.1:%d" % free_port()
        listeners["wasm"]["address"] = "127.0.0.1:%d" % self.function_port
        config["wasmlet"]["admin_address"] = "127.0.0.1:%d" % self.admin_port
        config["wasmlet"]["state_dir"] = self.root  # the code cache, beside the rest of the node
        stores = listeners["grpc"]["filter_chains"][0]["filters"][0]["config"]["grpc_config"]["state"]
        check("state_demo" in stores, "deploy/node.json has no state store 'state_demo' (the quickstart's)")
        stores["state_demo"]["metadata"]["path"] = os.path.join(self.root, "state.db")
        path = os.path.join(self.root, "node.json")
        with open(path, "w") as out:
            json.dump(config, out, indent=2)
        # The quickstart's data, seeded as a user would before starting the daemon.
        seeded = subprocess.run([self.wasmlet, "state", "set", "state_demo", "book1", "100", "-c", path],
                                capture_output=True, text=True, timeout=60)
        check(seeded.returncode == 0, "wasmlet state set failed:\n" + seeded.stdout + seeded.stderr)
        return path

    def write_shim_config(self, daemon_config):
        """deploy/shim.json, pointed at this node's daemon, folders and wasmlet binary."""
        config = self._deploy_json("shim.json")
        config.update({"admin_address": "127.0.0.1:%d" % self.admin_port, "wasmlet_binary": self.wasmlet,
                       "daemon_config": daemon_config, "daemon_log": self.daemon_log,
                       "state_dir": self.state_dir})
        path = os.path.join(self.root, "shim.json")
        with open(path, "w") as out:
            json.dump(config, out, indent=2)
        return path

    def write_containerd_config(self):
        """containerd's config: everything private to the node's folder, then the repository's
        deploy/containerd-runtime.toml as an operator appends it."""
        r = self.root
        for folder in ("cni/bin", "cni/net.d", "opt"):
            os.makedirs(os.path.join(r, folder))
        with open(os.path.join(self.deploy_dir, "containerd-runtime.toml")) as deployed:
            runtime = deployed.read()
        config = f"""version = 2
root = "{r}/root"
state = "{r}/state"

[grpc]
  address = "{self.socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{r}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{SANDBOX_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  disable_apparmor = true

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{r}/cni/bin"
  conf_dir = "{r}/cni/net.d"

# The node's default runtime, as `containerd config default` lists it: a config whose runtimes
# do not include it makes the CRI plugin refuse to load once another runtime is added.
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

{runtime}"""
        path = os.path.join(r, "containerd.toml")
        with open(path, "w") as out:
            out.write(config)
        return path

    def start(self):
        shim_config = self.write_shim_config(self.write_daemon_config())
        containerd_config = self.write_containerd_config()
        # containerd finds the shim on its PATH and passes its environment on to it.
        env = dict(os.environ, PATH=self.shim_dir + os.pathsep + os.environ.get("PATH", ""),
                   WASMLET_SHIM_CONFIG=shim_config)
        with open(self.containerd_log, "w") as log:
            self.containerd = subprocess.Popen(["containerd", "--config", containerd_config], env=env,
                                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.cri = Cri(self.socket)

        def answers():
            check(self.containerd.poll() is None, "containerd exited (status %s)" % self.containerd.returncode)
            try:
                return self.cri.version()
            except TestFailure:
                return None
        version = wait_until(answers, 30, interval=0.2)
        check(version, "containerd's CRI service did not answer Version within 30 s")
        return version

    def ctr(self, *args):
        done = subprocess.run(["ctr", "--address", self.socket, "-n", "k8s.io", *args],
                              capture_output=True, text=True, timeout=120)
        check(done.returncode == 0, "ctr %s failed:\n%s%s" % (" ".join(args), done.stdout, done.stderr))

    def import_image(self, archive, reference):
        self.ctr("image", "import", archive)
        # The CRI plugin learns of imported images from events: wait until it knows this one, so
        # that it never tries to pull it.
        check(wait_until(lambda: self.cri.image_known(reference), 10),
              "the CRI plugin does not know the imported image %s" % reference)

    def shims(self):
        return processes_with(SHIM, self.socket)

    def daemon_pid(self):
        try:
            with open(os.path.join(self.state_dir, "wasmlet.pid")) as pid_file:
                return int(pid_file.read().strip())
        except (OSError, ValueError):
            return None

    def installed_functions(self):
        status, body = http_get(self.admin_port, "/wasm/list")
        check(status == 200, "the daemon's GET /wasm/list answered %d: %s" % (status, body))
        return json.loads(body)

    def tear_down(self):
        """Whatever a failed run left: pods, shims, the daemon, containerd, mounts, the folder."""
        if self.cri and self.containerd and self.containerd.poll() is None:
            try:
                for sandbox_id in self.cri.pod_sandbox_ids():
                    self.cri.call("StopPodSandbox", text(1, sandbox_id), timeout=30)
                    self.cri.call("RemovePodSandbox", text(1, sandbox_id), timeout=30)
            except TestFailure as error:
                print("tear down: %s" % error, file=sys.stderr)
        if self.cri:
            self.cri.close()
        for pid in self.shims():
            _end(pid, signal.SIGKILL)
        daemon = self.daemon_pid()
        if daemon:
            _end(daemon, signal.SIGTERM)
        if self.containerd:
            self.containerd.terminate()
            try:
                self.containerd.wait(15)
            except subprocess.TimeoutExpired:
                self.containerd.kill()
                self.containerd.wait()
        libc = ctypes.CDLL(None, use_errno=True)
        for point in mounts_under(self.root):
            libc.umount2(point.encode(), 2)  # MNT_DETACH
        if mounts_under(self.root):
            print("tear down: mounts are left, so %s is kept" % self.root, file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def _end(pid, sig):
    """Sends `sig`, then SIGKILL if the process is still there after 10 s."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    if not wait_until(lambda: not os.path.exists("/proc/%d" % pid) or _is_zombie(pid), 10):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# --- The test ---------------------------------------------------------------------------------


def quickstart(node):
    return http_get(node.function_port, "/?name=book1", {"id": "id_1"})


def a_pod_with_the_wasmlet_runtime_class_runs_a_function_and_leaves_nothing(node, examples_dir):
    version = node.start()
    check(version["runtime_name"] == "containerd" and version["runtime_api_version"] == "v1",
          "CRI Version answered %s" % version)
    node.import_image(build_pause_image(node.root), SANDBOX_IMAGE)
    for function in FUNCTIONS:
        archive = os.path.join(node.root, function["name"] + ".tar")
        packed = subprocess.run([node.wasmlet, "pack", os.path.join(examples_dir, function["name"] + ".wasm"),
                                 "-t", function["image"], "-o", archive],
                                capture_output=True, text=True, timeout=60)
        check(packed.returncode == 0, "wasmlet pack failed:\n" + packed.stdout + packed.stderr)
        node.import_image(archive, function["image"])

    # What the kubelet sends for a pod with runtimeClassName: wasmlet and hostNetwork: true.
    log_directory = os.path.join(node.root, "pods", "default_quickstart_wasmlet-cri-test")
    os.makedirs(log_directory)
    sandbox_config = pod_sandbox_config("quickstart", "wasmlet-cri-test", "default", log_directory,
                                        POD_ANNOTATIONS)
    sandbox_id = node.cri.run_pod_sandbox(sandbox_config, "wasmlet")
    check(node.cri.pod_sandbox_handler(sandbox_id) == "wasmlet",
          "the pod sandbox does not run with the runtime handler wasmlet")

    containers = {}
    for function in FUNCTIONS:
        config = container_config(function["name"], function["image"], FUNCTION_ENV,
                                  function["name"] + "/0.log")
        container_id = node.cri.create_container(sandbox_id, config, sandbox_config)
        node.cri.call("StartContainer", text(1, container_id))
        containers[function["name"]] = container_id
        state, _ = node.cri.container_status(container_id)
        check(state == "RUNNING", "%s is %s after StartContainer, not RUNNING" % (function["name"], state))

    status, body = quickstart(node)
    check((status, body) == (200, QUICKSTART_ANSWER),
          "GET /?name=book1 with id: id_1 answered %d %r, not 200 %r" % (status, body, QUICKSTART_ANSWER))
    check(len(node.shims()) == 3, "%d wasmlet shims run, not one per task (sandbox and two functions)"
          % len(node.shims()))
    rootfs = [point for point in mounts_under(node.root) if point.endswith("/rootfs")]
    check(len(rootfs) == 3, "%d rootfs mounts, not one per task: %s" % (len(rootfs), mounts_under(node.root)))
    installed = {entry["name"]: entry for entry in node.installed_functions()}
    for function in FUNCTIONS:
        entry = installed.get(containers[function["name"]])
        check(entry and entry.get("id") == function["route_id"],
              "the daemon does not serve %s as %s: %s" % (function["name"], function["route_id"], installed))
        # The pod's annotation passes deploy/containerd-runtime.toml's pod_annotations.
        check(entry.get("instances") == 2,
              "io.wasmlet.instance_num=2 on the pod did not reach %s: %s" % (function["name"], entry))
        check(entry.get("memory_limit_bytes") == 2 * (64 << 20),
              "WASMLET_MEM=64 did not reach %s: %s" % (function["name"], entry))
    # The shim's word on the task's stdout reaches the container's log, as `kubectl logs` reads it.
    log = os.path.join(log_directory, "function1", "0.log")
    serving = "wasmlet: function %s serves requests with header 'id: id_1'" % containers["function1"]
    check(wait_until(lambda: serving in tail(log), 5), "%s does not say %r:\n%s" % (log, serving, tail(log)))

    # Taken down as the kubelet does it.
    for function in reversed(FUNCTIONS):
        container_id = containers[function["name"]]
        node.cri.call("StopContainer", text(1, container_id) + number(2, 10))
        state, exit_code = node.cri.container_status(container_id)
        check((state, exit_code) == ("EXITED", 0),
              "%s is %s with exit code %d after StopContainer, not EXITED with 0"
              % (function["name"], state, exit_code))
        if function["name"] == "function1":
            status, body = quickstart(node)
            check(status == 404, "function 1 still answers after StopContainer: %d %s" % (status, body))
        node.cri.call("RemoveContainer", text(1, container_id))
    node.cri.call("StopPodSandbox", text(1, sandbox_id))
    node.cri.call("RemovePodSandbox", text(1, sandbox_id))

    check(node.cri.pod_sandbox_ids() == [], "ListPodSandbox still lists %s" % node.cri.pod_sandbox_ids())
    check(node.cri.container_ids() == [], "ListContainers still lists %s" % node.cri.container_ids())
    check(wait_until(lambda: not node.shims(), 10), "wasmlet shims are left: pids %s" % node.shims())
    check(wait_until(lambda: not mounts_under(node.root), 10), "mounts are left: %s" % mounts_under(node.root))
    left = [entry["name"] for entry in node.installed_functions() if entry["name"] in containers.values()]
    check(not left, "the daemon still lists the pod's functions: %s" % left)
    status, body = quickstart(node)
    check(status == 404, "function 1 still answers after its pod is gone: %d %s" % (status, body))


def main(argv):
    if len(argv) != 6:
        sys.exit("usage: %s WASMLET_BINARY SHIM_DIR EXAMPLES_DIR DEPLOY_DIR WORK_DIR" % argv[0])
    if os.geteuid() != 0:
        print("skipped: containerd mounts the pod's images, which needs root")
        return 77
    wasmlet, shim_dir, examples_dir, deploy_dir, work_dir = (os.path.abspath(a) for a in argv[1:])
    for tool in ("containerd", "ctr"):
        if not shutil.which(tool):
            print("FAIL: %s is missing: run scripts/setup.sh (Debian's containerd)" % tool)
            return 1
    os.makedirs(work_dir, exist_ok=True)
    started = time.monotonic()
    node = Node(wasmlet, shim_dir, deploy_dir, work_dir)
    try:
        a_pod_with_the_wasmlet_runtime_class_runs_a_function_and_leaves_nothing(node, examples_dir)
    except Exception as failure:  # a TestFailure says what went wrong; anything else, where
        what = str(failure) if isinstance(failure, TestFailure) else traceback.format_exc()
        print("FAIL: %s\n\n--- containerd's log (%s), last lines:\n%s\n--- the daemon's log (%s), last lines:\n%s"
              % (what, node.containerd_log, tail(node.containerd_log), node.daemon_log, tail(node.daemon_log)))
        return 1
    finally:
        node.tear_down()
    print("PASS: the pod ran the quickstart through CRI and left nothing (%.1f s)" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
