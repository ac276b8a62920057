#!/usr/bin/env bash
# wasmlet's soak test: one `wasmlet start` on loopback under SOAK_SECONDS of mixed wrk traffic
# while the script keeps changing what it serves, to catch leaks (RSS growth), errors that only
# come with churn, and stuck requests. Not part of CI: run it by hand, on a quiet machine.
#
#   bench/soak.sh        SOAK_SECONDS      total time of traffic (default 600)
#                        SOAK_BUILD        build folder (default build-release, as bench/run.sh;
#                                          when it has no wasmlet, build/; when neither has
#                                          one, scripts/setup.sh builds SOAK_BUILD in Release)
#                        SOAK_CONNECTIONS  wrk connections (default 16)
#                        SOAK_THREADS      wrk threads (default 2)
#                        SOAK_SLICE        seconds per wrk run, one report line each (default 30)
#                        SOAK_LOG_LEVEL    wasmlet's --log-level (default warn)
#                        SOAK_KEEP=1       keep the temp folder (configs, wasmlet.log, wrk outputs)
#
# What runs: redis-server and wasmlet, both on free ports of 127.0.0.1, with four functions:
# the quickstart chain (function1.wasm id_1 -> function2.wasm id_2, reading book1 from Redis),
# an echo (tests/guests/abi_filter.wasm as id "echo", header x-op: echo, POST body) and
# "versioned" (tests/guests/version1.wasm / version2.wasm). wrk drives the three ids in turn,
# in consecutive SOAK_SLICE-second runs. Meanwhile the script
#   - every ~20 s rewrites versioned's module file (copy to a temp name, then mv) with the other
#     version: a hot reload; the next check asks which version answers;
#   - every ~10 s installs examples/hello.wasm as plugin "soak_hello" through the admin API, or
#     uninstalls it ({"plugin": "soak_hello"}), and checks that it answers 200 / 404;
#   - at SOAK_SECONDS/2 kills redis-server, starts it again on the same port ~3 s later and sets
#     book1 again: id_1 answers 502 meanwhile, which is expected; that slice is marked with "R"
#     and its errors are counted apart.
# Every slice prints: elapsed seconds, wasmlet's RSS (VmRSS), requests, non-2xx (4xx/5xx as wrk
# counts them), socket errors, and the non-2xx by id and status from /metrics (these also count
# the script's own checks: "(unknown)/404" is the check that an uninstalled soak_hello is gone).
# At the end: RSS at start and end, totals, the counts of reloads, installs, uninstalls and Redis
# restarts, the failed checks, wasmlet's /metrics lines for requests, reloads, traps and store
# errors, and the log's warnings and errors grouped. wrk is installed with apt-get if missing.
# Everything started here is stopped on exit, Ctrl-C included.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${SOAK_SECONDS:-600}
connections=${SOAK_CONNECTIONS:-16}
threads=${SOAK_THREADS:-2}
slice=${SOAK_SLICE:-30}
log_level=${SOAK_LOG_LEVEL:-warn}
reload_every=20
install_every=10
redis_down_seconds=3

log() { printf '\033[1m[soak]\033[0m %s\n' "$*" >&2; }

# ---- the build -----------------------------------------------------------------------------
build=${SOAK_BUILD:-$repo/build-release}
if [ ! -x "$build/wasmlet" ] && [ -z "${SOAK_BUILD:-}" ] && [ -x "$repo/build/wasmlet" ]; then
  log "no $build/wasmlet: using $repo/build"
  build="$repo/build"
fi
if [ ! -x "$build/wasmlet" ]; then
  log "no $build/wasmlet: building it"
  "$repo/scripts/setup.sh" --build-dir "$build" --build-type Release >&2
fi
for f in examples/function1.wasm examples/function2.wasm examples/hello.wasm \
         tests/guests/abi_filter.wasm tests/guests/version1.wasm tests/guests/version2.wasm; do
  [ -f "$build/$f" ] || { echo "soak.sh: $build/$f is missing (build the guests)" >&2; exit 1; }
done

if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >&2
fi
command -v redis-server >/dev/null || { echo "soak.sh: redis-server is missing (scripts/setup.sh installs it)" >&2; exit 1; }

# ---- clean-up: everything started here is stopped, on any exit -----------------------------
work=$(mktemp -d /tmp/wasmlet-soak.XXXXXX)
wasmlet_pid=""
redis_pid=""
wrk_pid=""
stop_pid() {  # PID SECONDS: SIGTERM, then SIGKILL after SECONDS
  local pid=$1 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  stop_pid "$wrk_pid" 2
  stop_pid "$wasmlet_pid" 5
  stop_pid "$redis_pid" 5
  if [ -n "${SOAK_KEEP:-}" ]; then log "kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
now() { date +%s; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---- redis-server --------------------------------------------------------------------------
redis_port=$(free_port)
start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    >>"$work/redis.log" 2>&1 &
  redis_pid=$!
  wait_port "$redis_port"
  redis-cli -p "$redis_port" set book1 100 >/dev/null
}
start_redis

# ---- wasmlet -------------------------------------------------------------------------------
port=$(free_port)
admin_port=$(free_port)
admin="http://127.0.0.1:$admin_port"
cp "$build/tests/guests/version1.wasm" "$work/versioned.wasm"
cat >"$work/config.json" <<EOF
{"servers": [{"listeners": [
  {"name": "grpc", "address": "127.0.0.1:0", "filter_chains": [{"filters": [{"type": "grpc", "config": {"grpc_config": {
    "rpcs": {"mosn": {"config": {"channel": [{"size": 16, "protocol": "http", "listener": "wasm"}]}}},
    "state": {"state_demo": {"type": "redis", "metadata": {"redisHost": "127.0.0.1:$redis_port", "redisPassword": ""}}}}}}]}]},
  {"name": "wasm", "address": "127.0.0.1:$port", "stream_filters": [{"type": "Layotto", "config": {
    "function1": {"name": "function1", "instance_num": 2, "vm_config": {"engine": "v8", "path": "$build/examples/function1.wasm"}},
    "function2": {"name": "function2", "instance_num": 2, "vm_config": {"engine": "v8", "path": "$build/examples/function2.wasm"}},
    "echo": {"name": "echo", "instance_num": 2, "vm_config": {"engine": "v8", "path": "$build/tests/guests/abi_filter.wasm"}},
    "versioned": {"name": "versioned", "instance_num": 2, "vm_config": {"engine": "v8", "path": "$work/versioned.wasm"}}}}]}]}],
 "wasmlet": {"admin_address": "127.0.0.1:$admin_port", "drain_timeout_ms": 3000}}
EOF
"$build/wasmlet" start -c "$work/config.json" --log-level "$log_level" >"$work/wasmlet.log" 2>&1 &
wasmlet_pid=$!
for _ in $(seq 1 1000); do
  curl -sf -o /dev/null "$admin/health/readiness" && break
  kill -0 "$wasmlet_pid" 2>/dev/null || { cat "$work/wasmlet.log" >&2; echo "soak.sh: wasmlet exited" >&2; exit 1; }
  sleep 0.01
done
request() {  # URL [CURL ARGS...]: prints "STATUS BODY" (the body on one line)
  local url=$1 code
  shift
  rm -f "$work/body"
  code=$(curl -s --max-time 30 -o "$work/body" -w '%{http_code}' "$@" "$url" 2>/dev/null) || true
  echo "$code $(tr '\n' ' ' <"$work/body" 2>/dev/null | sed 's/ *$//')"
}
get() { local id=$1 path=$2; shift 2; request "http://127.0.0.1:$port$path" -H "id: $id" "$@"; }
answer=$(get id_1 '/?name=book1')
[ "$answer" = "200 There are 100 inventories for book1." ] || { echo "soak.sh: id_1 answered: $answer" >&2; exit 1; }
answer=$(get echo / -H 'x-op: echo' --data-binary 'hello, soak')
case "$answer" in "200 echo=hello, soak"*) ;; *) echo "soak.sh: echo answered: $answer" >&2; exit 1 ;; esac
answer=$(get versioned /)
[ "$answer" = "200 version 1" ] || { echo "soak.sh: versioned answered: $answer" >&2; exit 1; }

# ---- wrk's script: the three requests in turn ------------------------------------------------
cat >"$work/mix.lua" <<'EOF'
local requests = {}
local i = 0
init = function(args)
  requests[1] = wrk.format("GET", "/?name=book1", {["id"] = "id_1"})
  requests[2] = wrk.format("POST", "/", {["id"] = "echo", ["x-op"] = "echo"}, "hello, soak")
  requests[3] = wrk.format("GET", "/", {["id"] = "versioned"})
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
EOF

# ---- the churn: reloads, installs, the Redis restart ---------------------------------------
reloads=0 reload_checks_failed=0 version=1 reload_check_due=0
installs=0 uninstalls=0 install_failed=0 installed=0 install_check_due=0
redis_restarts=0 redis_restart_at=$((seconds / 2)) redis_slice=-1
failures=()  # one line per failed check, printed at the end

fail() { failures+=("t=$(($(now) - t0))s $*"); }
reload() {
  version=$((3 - version))
  cp "$build/tests/guests/version$version.wasm" "$work/.versioned.wasm.tmp"
  mv -f "$work/.versioned.wasm.tmp" "$work/versioned.wasm"
  reloads=$((reloads + 1))
  reload_check_due=$(($(now) + 2))  # the watcher waits 200 ms of quiet, then compiles
}
check_reload() {
  local a
  a=$(get versioned /)
  [ "$a" = "200 version $version" ] || { reload_checks_failed=$((reload_checks_failed + 1)); fail "after reload to version $version, versioned answered: $a"; }
  reload_check_due=0
}
admin_post() { request "$admin$1" -X POST --data-binary "$2"; }  # PATH JSON
install_toggle() {
  local a
  if [ "$installed" = 0 ]; then
    a=$(admin_post /wasm/install "{\"name\": \"soak_hello\", \"instance_num\": 1, \"vm_config\": {\"path\": \"$build/examples/hello.wasm\"}}")
    if [ "${a%% *}" = 200 ]; then installs=$((installs + 1)); installed=1; else install_failed=$((install_failed + 1)); fail "install: $a"; fi
  else
    a=$(admin_post /wasm/uninstall '{"plugin": "soak_hello"}')
    if [ "${a%% *}" = 200 ]; then uninstalls=$((uninstalls + 1)); installed=0; else install_failed=$((install_failed + 1)); fail "uninstall: $a"; fi
  fi
  install_check_due=$(($(now) + 1))
}
check_install() {
  local a want=404
  [ "$installed" = 1 ] && want=200
  a=$(get soak_hello /)
  [ "${a%% *}" = "$want" ] || { install_failed=$((install_failed + 1)); fail "soak_hello installed=$installed answered: $a"; }
  install_check_due=0
}
restart_redis() {
  log "restarting redis-server (port $redis_port)"
  stop_pid "$redis_pid" 5
  redis_pid=""
  sleep "$redis_down_seconds"
  start_redis
  redis_restarts=$((redis_restarts + 1))
}

# ---- /metrics: non-2xx by id and status ----------------------------------------------------
metrics() { curl -s --max-time 5 "$admin/metrics"; }
declare -A errors_seen=()
errors_line=""
errors_delta() {  # sets errors_line to "id/status=N ..." for the non-2xx counted since the last call
  local key value out=""
  while read -r key value; do
    local before=${errors_seen[$key]:-0}
    [ "${value%.*}" -gt "$before" ] && out+=" $key=$((${value%.*} - before))"
    errors_seen[$key]=${value%.*}
  done < <(metrics | sed -n 's/^wasmlet_requests_total{id="\([^"]*\)",status="\([^2"][0-9]*\)"} \(.*\)$/\1\/\2 \3/p')
  errors_line=${out# }
}

# ---- the slices ----------------------------------------------------------------------------
rss_start=$(rss_kib "$wasmlet_pid")
errors_delta
log "wasmlet pid $wasmlet_pid on 127.0.0.1:$port (admin $admin_port), redis on $redis_port; RSS $rss_start KiB"
log "${seconds}s of traffic: wrk -t$threads -c$connections, ${slice}s slices; log: $work/wasmlet.log"
printf '%8s %10s %10s %8s %8s  %s\n' elapsed "RSS KiB" requests non-2xx sockerr "non-2xx by id/status (metrics)"

t0=$(now)
next_reload=$((t0 + reload_every))
next_install=$((t0 + install_every))
total_requests=0 total_non2xx=0 total_socket=0 redis_non2xx=0 redis_socket=0
n=0
rss_after_first=""
while :; do
  elapsed=$(($(now) - t0))
  [ "$elapsed" -lt "$seconds" ] || break
  d=$((seconds - elapsed < slice ? seconds - elapsed : slice))
  out="$work/wrk-$n.txt"
  wrk -t"$threads" -c"$connections" -d"${d}s" -s "$work/mix.lua" "http://127.0.0.1:$port/" >"$out" 2>&1 &
  wrk_pid=$!
  mark=""
  while kill -0 "$wrk_pid" 2>/dev/null; do
    t=$(now)
    if [ "$redis_restarts" = 0 ] && [ $((t - t0)) -ge "$redis_restart_at" ]; then
      restart_redis
      redis_slice=$n
      mark=R
    fi
    [ "$t" -ge "$next_reload" ] && { reload; next_reload=$((next_reload + reload_every)); }
    [ "$t" -ge "$next_install" ] && { install_toggle; next_install=$((next_install + install_every)); }
    [ "$reload_check_due" != 0 ] && [ "$t" -ge "$reload_check_due" ] && check_reload
    [ "$install_check_due" != 0 ] && [ "$t" -ge "$install_check_due" ] && check_install
    kill -0 "$wasmlet_pid" 2>/dev/null || { tail -20 "$work/wasmlet.log" >&2; echo "soak.sh: wasmlet exited" >&2; exit 1; }
    sleep 0.5
  done
  wait "$wrk_pid" || { cat "$out" >&2; echo "soak.sh: wrk failed" >&2; exit 1; }
  wrk_pid=""
  requests=$(awk '/requests in/ {print $1}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  socket=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out")
  requests=${requests:-0} non2xx=${non2xx:-0} socket=${socket:-0}
  total_requests=$((total_requests + requests))
  total_non2xx=$((total_non2xx + non2xx))
  total_socket=$((total_socket + socket))
  if [ "$mark" = R ]; then redis_non2xx=$non2xx; redis_socket=$socket; fi
  rss=$(rss_kib "$wasmlet_pid")
  [ -n "$rss_after_first" ] || rss_after_first=$rss
  errors_delta
  printf '%8s %10s %10s %8s %8s  %s\n' "$(($(now) - t0))$mark" "$rss" "$requests" "$non2xx" "$socket" "$errors_line"
  n=$((n + 1))
done
[ "$reload_check_due" = 0 ] || { sleep 1; check_reload; }
[ "$install_check_due" = 0 ] || check_install
rss_end=$(rss_kib "$wasmlet_pid")

# ---- the summary ---------------------------------------------------------------------------
echo
echo "wasmlet soak: $(($(now) - t0))s, $n slices, wrk -t$threads -c$connections, build $build"
printf '%-34s %s\n' "RSS start / after slice 1 / end" "$rss_start / $rss_after_first / $rss_end KiB"
printf '%-34s %s\n' "requests" "$total_requests"
printf '%-34s %s\n' "non-2xx" "$total_non2xx ($redis_non2xx in the Redis restart slice, $((total_non2xx - redis_non2xx)) in the others)"
printf '%-34s %s\n' "socket errors" "$total_socket ($redis_socket in the Redis restart slice)"
printf '%-34s %s\n' "reloads" "$reloads ($reload_checks_failed answered with the wrong version after it)"
printf '%-34s %s\n' "installs / uninstalls" "$installs / $uninstalls ($install_failed failed calls or checks)"
printf '%-34s %s\n' "redis restarts" "$redis_restarts${redis_slice:+ (slice $((redis_slice + 1)), marked R)}"
if [ ${#failures[@]} -gt 0 ]; then
  echo "failed checks:"
  printf '  %s\n' "${failures[@]}"
fi
echo "metrics:"
metrics | grep -E '^wasmlet_(requests_total|reloads_total|traps_total|deadline_kills_total|start_failures_total|state_store_errors_total)' | sed 's/^/  /'
lines=$(grep -c -E '\[(warn|warning|error|critical)\]' "$work/wasmlet.log" || true)
echo "wasmlet log: $(wc -l <"$work/wasmlet.log") lines, $lines at warn or above; the most frequent (numbers masked):"
grep -E '\[(warn|warning|error|critical)\]' "$work/wasmlet.log" | sed -E 's/^\[[^]]*\] //; s/[0-9]+/N/g' |
  sort | uniq -c | sort -rn | head -10 | sed 's/^/  /'
