#!/usr/bin/env bash
# FaaS start-up time: from `ctr run` of a function image to the function's first 200 over HTTP,
# through Debian's containerd (private root, state and socket) and containerd-shim-wasmlet-v2.
# The baseline, measured in the same run: the same module installed straight through the
# daemon's admin API (POST /wasm/install) to its first 200, which is the floor under the shim.
#
#   bench/faas.sh          FAAS_RUNS (default 10); needs root (containerd mounts)
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
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ctr_() { ctr --address "$work/containerd.sock" -n faas "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Polls function 2 until it answers 200 (at most 10 s).
wait_answer() {
  for _ in $(seq 1 2000); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'id: id_2' --data book1 "127.0.0.1:$port/" || true)
    [ "$code" = 200 ] && return 0
  done
  echo "function 2 did not answer" >&2
  return 1
}
stats() {  # min median max of the numbers on stdin
  sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%d %g %d\n", a[1], m, a[NR]}'
}

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
 "daemon_log": "$work/wasmlet.log", "state_dir": "$work/run"}
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

run_once() {  # ctr run -> first 200 -> stop and remove; prints milliseconds
  local id=$1 t0 t1
  t0=$(now_ms)
  ctr_ run -d --runtime io.containerd.wasmlet.v2 wasmlet.bench/function2:latest "$id" >/dev/null
  wait_answer
  t1=$(now_ms)
  ctr_ task kill "$id" >/dev/null && ctr_ task rm "$id" >/dev/null && ctr_ container rm "$id" >/dev/null
  echo $((t1 - t0))
}
install_once() {  # POST /wasm/install -> first 200 -> uninstall; prints milliseconds
  local name=$1 t0 t1
  t0=$(now_ms)
  curl -sf -o /dev/null --data "{\"name\": \"$name\", \"vm_config\": {\"path\": \"$build/examples/function2.wasm\"}}" \
    "127.0.0.1:$admin/wasm/install"
  wait_answer
  t1=$(now_ms)
  curl -sf -o /dev/null --data "{\"plugin\": \"$name\"}" "127.0.0.1:$admin/wasm/uninstall"
  echo $((t1 - t0))
}

log "first ctr run (starts the node's wasmlet daemon)"
first=$(run_once warmup)
log "$runs runs of each"
shim=$(for i in $(seq 1 "$runs"); do run_once "fn$i"; done | stats)
direct=$(for i in $(seq 1 "$runs"); do install_once "direct$i"; done | stats)

read -r s_min s_med s_max <<<"$shim"
read -r d_min d_med d_max <<<"$direct"
printf '\n| from | to first 200 (ms): min | median | max |\n|---|---|---|---|\n'
printf '| ctr run, daemon not running yet | %s | | |\n' "$first"
printf '| ctr run (containerd + shim + install) | %s | %s | %s |\n' "$s_min" "$s_med" "$s_max"
printf '| POST /wasm/install (baseline) | %s | %s | %s |\n' "$d_min" "$d_med" "$d_max"
awk -v a="$s_med" -v b="$d_med" 'BEGIN { if (b > 0) printf "\nctr run / admin install, medians: %.1f\n", a / b }'
