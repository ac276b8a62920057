#!/usr/bin/env bash
# FaaS start-up time: from `ctr run` of a function image to the function's first 200 over HTTP,
# through Debian's containerd (private root, state and socket) and containerd-shim-wasmlet-v2.
# Baselines, measured in the same run: the same module installed straight through the daemon's
# admin API (POST /wasm/install) to its first 200, the floor under the shim; and `ctr run -d` of
# a runc container (busybox sleep), what containerd's own runtime takes to start a task.
#
#   bench/faas.sh          FAAS_RUNS (default 10); needs root (containerd mounts)
#                          FAAS_KEEP=1 leaves containerd, the daemon and the folder running
#
# Prints the first run (it starts the node's daemon), then min / median / max of FAAS_RUNS
# runs of each, and the ratio of the medians. Requests go to 127.0.0.1 only.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build-release"
runs=${FAAS_RUNS:-10}

log() { printf '\033[1m[faas]\033[0m %s\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { echo "bench/faas.sh: run as root (containerd mounts the images)" >&2; exit 1; }

"$repo/scripts/setup.sh" --build-dir "$build" --build-type Release >&2
if [ ! -x /bin/busybox ] || ! dpkg-query -W busybox-static >/dev/null 2>&1; then
  log "installing busybox-static (the runc baseline's image)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >&2
fi

work=$(mktemp -d /tmp/wasmlet-faas.XXXXXX)
containerd_pid=
cleanup() {
  set +e
  if [ -n "$containerd_pid" ]; then
    for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task kill -s SIGKILL "$id"; ctr_ task rm -f "$id"; done >/dev/null 2>&1
    for id in $(ctr_ container ls -q 2>/dev/null); do ctr_ container rm "$id"; done >/dev/null 2>&1
    [ -f "$work/run/wasmlet.pid" ] && kill "$(cat "$work/run/wasmlet.pid")" 2>/dev/null
    kill "$containerd_pid" 2>/dev/null
    wait "$containerd_pid" 2>/dev/null
  fi
  grep " $work/" /proc/self/mountinfo | awk '{print $5}' | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$work"
}
[ -n "${FAAS_KEEP:-}" ] || trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ctr_() { ctr --address "$work/containerd.sock" -n faas "$@"; }

port=$(free_port)
admin=$(free_port)
cat > "$work/node.json" <<EOF
{"servers": [{"listeners": [
  {"name": "grpc", "address": "127.0.0.1:0", "filter_chains": [{"filters": [{"type": "grpc", "config": {"grpc_config": {"state": {"state_demo": {"type": "embedded", "metadata": {"path": "$work/state.db"}}}}}}]}]},
  {"name": "wasm", "address": "127.0.0.1:$port", "stream_filters": [{"type": "Layotto", "config": {}}]}]}],
 "wasmlet": {"admin_address": "127.0.0.1:$admin"}}
EOF
cat > "$work/shim.json" <<EOF
{"admin_address": "127.0.0.1:$admin", "wasmlet_binary": "$build/wasmlet", "daemon_config": "$work/node.json",
 "daemon_log": "$work/wasmlet.log", "state_dir": "$work/run", "check_interval_ms": 200}
EOF
cat > "$work/containerd.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
EOF
"$build/wasmlet" state set state_demo book1 100 -c "$work/node.json"

PATH="$build:$PATH" WASMLET_SHIM_CONFIG="$work/shim.json" containerd --config "$work/containerd.toml" \
  > "$work/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 1 500); do ctr_ version >/dev/null 2>&1 && break; sleep 0.02; done
"$build/wasmlet" pack "$build/examples/function2.wasm" -t wasmlet.bench/function2 -o "$work/f2.tar" >/dev/null
ctr_ image import "$work/f2.tar" >/dev/null
# A one-file image with a static busybox, for runc (the packer takes any file with --no-verify).
"$build/wasmlet" pack /bin/busybox --no-verify -t wasmlet.bench/busybox -o "$work/busybox.tar" >/dev/null
ctr_ image import "$work/busybox.tar" >/dev/null

# The timing loop in Python: a request every millisecond on a kept-alive loopback connection,
# so the poll's own cost stays far below what is measured.
python3 - "$runs" "$port" "$admin" "$work/containerd.sock" "$build/examples/function2.wasm" <<'PY'
import http.client, json, statistics, subprocess, sys, time

runs, port, admin, sock, module = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctr = ["ctr", "--address", sock, "-n", "faas"]

def answered():
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        c.request("POST", "/", body=b"book1", headers={"id": "id_2"})
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False

def wait_answer(t0):
    while not answered():
        if time.perf_counter() - t0 > 10:
            sys.exit("function 2 did not answer within 10 s")
        time.sleep(0.001)
    return (time.perf_counter() - t0) * 1000

def admin_post(path, body):
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=30)
    c.request("POST", path, body=json.dumps(body))
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"{path}: {r.status}")

def remove(name, signal="SIGTERM"):
    subprocess.run(ctr + ["task", "kill", "-s", signal, name], check=True, stdout=subprocess.DEVNULL)
    while b"STOPPED" not in subprocess.run(ctr + ["task", "ls"], check=True, capture_output=True).stdout:
        time.sleep(0.005)
    for args in (["task", "rm", name], ["container", "rm", name]):
        subprocess.run(ctr + args, check=True, stdout=subprocess.DEVNULL)

def ctr_run(name):  # (ms until ctr run -d returns, ms until the first 200)
    t0 = time.perf_counter()
    subprocess.run(ctr + ["run", "-d", "--runtime", "io.containerd.wasmlet.v2", "wasmlet.bench/function2:latest",
                          name], check=True, stdout=subprocess.DEVNULL)
    returned = (time.perf_counter() - t0) * 1000
    answered = wait_answer(t0)
    remove(name)
    return returned, answered

def runc_run(name):  # ms until ctr run -d returns
    t0 = time.perf_counter()
    subprocess.run(ctr + ["run", "-d", "wasmlet.bench/busybox:latest", name, "/busybox", "sleep", "60"], check=True,
                   stdout=subprocess.DEVNULL)
    returned = (time.perf_counter() - t0) * 1000
    remove(name, "SIGKILL")
    return returned

def install(name):
    t0 = time.perf_counter()
    admin_post("/wasm/install", {"name": name, "vm_config": {"path": module}})
    ms = wait_answer(t0)
    admin_post("/wasm/uninstall", {"plugin": name})
    return ms

first = ctr_run("warmup")[1]
runc_run("runcwarmup")
shim = [ctr_run(f"fn{i}") for i in range(runs)]
shim_returned, shim_answered = [r for r, _ in shim], [a for _, a in shim]
runc = [runc_run(f"runc{i}") for i in range(runs)]
direct = [install(f"direct{i}") for i in range(runs)]
med = statistics.median
row = lambda name, xs: f"| {name} | {min(xs):.1f} | {med(xs):.1f} | {max(xs):.1f} |"
print(f"\n{runs} runs each | min ms | median ms | max ms |\n|---|---|---|---|")
print(f"| wasm function: ctr run -d to the first 200, daemon not running yet (1 run) | {first:.1f} | | |")
print(row("wasm function: ctr run -d to the first 200", shim_answered))
print(row("wasm function: ctr run -d returns", shim_returned))
print(row("runc container (busybox sleep): ctr run -d returns", runc))
print(row("POST /wasm/install to the first 200 (no containerd)", direct))
print(f"\nctr run -d, wasmlet shim / runc, medians: {med(shim_returned) / med(runc):.2f}")
print(f"first 200 through containerd / through the admin API, medians: {med(shim_answered) / med(direct):.1f}")
PY
