#!/usr/bin/env bash
# wasmlet's benchmark suite: builds in release mode, starts nginx, redis-server and wasmlet on
# loopback, drives each scenario with wrk (or redis-benchmark) for a fixed time, and prints one
# table with ratios against baselines measured in the same run, plus a JSON copy of it.
#
#   bench/run.sh                 BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 64)
#
# Scenarios: (a) nginx returning a fixed 200; (b) wasmlet's fixed route, no wasm; (c) a wasm
# echo function; (d) the quickstart chain on the embedded store; (e) the same chain on Redis;
# (f) redis-benchmark GET at the same concurrency; (g) echo again while a function that burns
# its whole 200 ms CPU budget is kept busy by two clients (isolation); (h) wasmlet in proxy
# mode, one wasm filter in front of nginx's fixed 200; (i) nginx as a reverse proxy (upstream
# keepalive) in front of the same nginx; (j) a function that makes one proxy_http_call to nginx
# per request; (k) a function saving one item to Redis per request (wasmlet's proxy_save_state);
# (l) redis-benchmark SET at the same concurrency; the runtime API for applications on the same
# Redis: (m) GetState and (n) SaveState over gRPC (h2load), (o) Dapr's HTTP state GET. Then the latency the
# wasm adds at one connection, cold start, memory per instance, and the engine's micro
# benchmarks.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build-release"
seconds=${BENCH_SECONDS:-10}
connections=${BENCH_CONNECTIONS:-64}
cores=$(nproc)

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

"$repo/scripts/setup.sh" --build-dir "$build" --build-type Release >&2

# nginx, wrk and h2load are only needed here. Keep apt from starting nginx as a system service.
if ! command -v wrk >/dev/null || ! command -v h2load >/dev/null || [ ! -x /usr/sbin/nginx ]; then
  log "installing nginx, wrk and h2load"
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx wrk nghttp2-client >&2
  rm -f /usr/sbin/policy-rc.d
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

# ---- nginx: the ceiling ------------------------------------------------------------------------
nginx_port=$(free_port)
nginx_proxy_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
worker_processes $cores;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:$nginx_port; location / { return 200 "ok\n"; } }
  upstream fixed { server 127.0.0.1:$nginx_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_proxy_port;
    location / { proxy_pass http://fixed; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
/usr/sbin/nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
pids+=($!)
wait_port "$nginx_port"
wait_port "$nginx_proxy_port"
wait_port "$redis_port"

# ---- wasmlet -----------------------------------------------------------------------------------
# config FILE PORT STORE_JSON ECHO_INSTANCES
# instance_num 0 is the default, one instance per serving loop: a function waiting on Redis has
# as many requests in flight as it has instances.
config() {
  cat > "$1" <<EOF
{"servers": [{"listeners": [
  {"name": "grpc", "address": "127.0.0.1:0", "filter_chains": [{"filters": [{"type": "grpc", "config": {"grpc_config": {
    "state": {"state_demo": $3}}}}]}]},
  {"name": "wasm", "address": "127.0.0.1:$2", "stream_filters": [{"type": "Layotto", "config": {
    "echo": {"name": "echo", "instance_num": $4, "vm_config": {"engine": "v8", "path": "$build/examples/echo.wasm"}},
    "save": {"name": "save", "instance_num": 0, "vm_config": {"engine": "v8", "path": "$build/examples/save_state.wasm"}},
    "function1": {"name": "function1", "instance_num": 0, "vm_config": {"engine": "v8", "path": "$build/examples/function1.wasm"}},
    "function2": {"name": "function2", "instance_num": 0, "vm_config": {"engine": "v8", "path": "$build/examples/function2.wasm"}}}}]}]}],
 "wasmlet": {"admin_address": "127.0.0.1:$admin_port"}}
EOF
}
admin_port=$(free_port)

wasmlet_pid=""
started_ms=0
start_wasmlet() {  # CONFIG PORT; sets wasmlet_pid and started_ms (exec to the first 200)
  local t0 t1
  t0=$(date +%s%N)
  "$build/wasmlet" start -c "$1" --log-level warn >"$work/wasmlet.log" 2>&1 &
  wasmlet_pid=$!
  pids+=("$wasmlet_pid")
  until curl -sf -o /dev/null "http://127.0.0.1:$2/__wasmlet/fixed"; do sleep 0.001; done
  t1=$(date +%s%N)
  started_ms=$(((t1 - t0) / 1000000))
}
stop_wasmlet() { kill "$wasmlet_pid"; wait "$wasmlet_pid" 2>/dev/null || true; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ---- wrk ---------------------------------------------------------------------------------------
to_ms() {  # "635.00us" / "2.17ms" / "1.02s" -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
declare -A rps p50 p99 max
run_wrk() {  # NAME URL LUA [CONNECTIONS]
  local out="$work/wrk-$1.txt" c=${4:-$connections}
  wrk -t"$((c < 2 ? 1 : 2))" -c"$c" -d"${seconds}s" --latency -s "$3" "$2" >"$out"
  rps[$1]=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50[$1]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  p99[$1]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  max[$1]=$(to_ms "$(awk '$1 == "Latency" {print $4; exit}' "$out")")
  local errors
  errors=$(awk '/Non-2xx|Socket errors/' "$out")
  [ -z "$errors" ] || log "$1: $errors"
  log "$1: ${rps[$1]} req/s, p50 ${p50[$1]} ms, p99 ${p99[$1]} ms"
}
lua() {  # FILE METHOD ID BODY
  cat > "$1" <<EOF
wrk.method = "$2"
wrk.body = "$4"
wrk.headers["id"] = "$3"
EOF
}
lua "$work/get.lua" GET "" ""
lua "$work/echo.lua" POST echo "hello, wasmlet"
lua "$work/chain.lua" GET id_1 ""
lua "$work/call.lua" GET id_call ""
lua "$work/save.lua" POST save "100"

log "(a) nginx"
run_wrk a "http://127.0.0.1:$nginx_port/" "$work/get.lua"

port=$(free_port)
config "$work/embedded.json" "$port" "{\"type\": \"embedded\", \"metadata\": {\"path\": \"$work/state.db\"}}" "$cores"
"$build/wasmlet" state set state_demo book1 100 -c "$work/embedded.json"
start_wasmlet "$work/embedded.json" "$port"
cold_start_ms=$started_ms
answer=$(curl -s -H 'id: id_1' "http://127.0.0.1:$port/?name=book1")
[ "$answer" = "There are 100 inventories for book1." ] || { echo "unexpected answer: $answer" >&2; exit 1; }
log "(b) wasmlet fixed route"
run_wrk b "http://127.0.0.1:$port/__wasmlet/fixed" "$work/get.lua"
log "(c) wasm echo"
run_wrk c "http://127.0.0.1:$port/" "$work/echo.lua"
log "(d) quickstart chain, embedded store"
run_wrk d "http://127.0.0.1:$port/?name=book1" "$work/chain.lua"
log "(b1), (c1) one connection: the latency the wasm adds"
run_wrk b1 "http://127.0.0.1:$port/__wasmlet/fixed" "$work/get.lua" 1
run_wrk c1 "http://127.0.0.1:$port/" "$work/echo.lua" 1
log "(g) wasm echo beside a function burning its 200 ms budget, kept busy by two clients"
# Installed now, not in the config: the cold start and memory figures stay those of the others.
curl -sf -o /dev/null -X POST "http://127.0.0.1:$admin_port/wasm/install" -d "{\"name\": \"slow\", \"instance_num\": 1,
  \"vm_config\": {\"engine\": \"v8\", \"cpu\": 200, \"path\": \"$build/tests/guests/abi_filter.wasm\"}}"
hogs=()
for _ in 1 2; do
  (while curl -s -o /dev/null -H 'id: slow' -H 'x-op: spin' "http://127.0.0.1:$port/"; do :; done) &
  hogs+=($!)
done
sleep 0.5
run_wrk g "http://127.0.0.1:$port/" "$work/echo.lua"
kill "${hogs[@]}" 2>/dev/null || true
wait "${hogs[@]}" 2>/dev/null || true
placement=$(curl -s "http://127.0.0.1:$admin_port/wasm/list" | grep -o '"id":"[^"]*"\|"placement":"[^"]*"' | paste -sd' ')
log "(g) where the functions ran after it: $placement"
stop_wasmlet

# ---- proxy mode and outbound calls -------------------------------------------------------------------
port=$(free_port)
proxy_port=$(free_port)
cat > "$work/proxy.json" <<EOF
{"servers": [{
  "routers": [{"router_config_name": "to_nginx", "virtual_hosts": [{"name": "all", "domains": ["*"],
    "routers": [{"match": {"prefix": "/"}, "route": {"cluster_name": "backend"}}]}]}],
  "listeners": [
  {"name": "wasm", "address": "127.0.0.1:$port", "stream_filters": [{"type": "Layotto", "config": {
    "call": {"name": "call", "instance_num": $cores, "vm_config": {"engine": "v8", "path": "$build/tests/guests/outbound_function.wasm"}}}}]},
  {"name": "proxy", "address": "127.0.0.1:$proxy_port",
   "filter_chains": [{"filters": [{"type": "proxy", "config": {"router_config_name": "to_nginx"}}]}],
   "stream_filters": [{"type": "proxywasm", "config": {"vm_config": {"engine": "v8", "path": "$build/examples/add_header.wasm"}}}]}]}],
 "cluster_manager": {"clusters": [{"name": "backend", "type": "SIMPLE", "lb_type": "LB_ROUNDROBIN",
   "hosts": [{"address": "127.0.0.1:$nginx_port"}]}]},
 "wasmlet": {"admin_address": "127.0.0.1:$admin_port"}}
EOF
start_wasmlet "$work/proxy.json" "$port"
answer=$(curl -s -D - "http://127.0.0.1:$proxy_port/" | tr -d '\r')
echo "$answer" | grep -q '^x-wasm-filter: ' || { echo "the proxy's answer lacks the filter's header: $answer" >&2; exit 1; }
answer=$(curl -s -H 'id: id_call' "http://127.0.0.1:$port/")
[ "$answer" = "ok" ] || { echo "unexpected answer from the calling function: $answer" >&2; exit 1; }
log "(h) wasmlet proxy mode, one wasm filter, in front of nginx"
run_wrk h "http://127.0.0.1:$proxy_port/" "$work/get.lua"
log "(i) nginx reverse proxy in front of nginx"
run_wrk i "http://127.0.0.1:$nginx_proxy_port/" "$work/get.lua"
log "(j) a function making one proxy_http_call to nginx per request"
run_wrk j "http://127.0.0.1:$port/" "$work/call.lua"
stop_wasmlet

port=$(free_port)
config "$work/redis.json" "$port" "{\"type\": \"redis\", \"metadata\": {\"redisHost\": \"127.0.0.1:$redis_port\"}}" 0  # echo: one instance per loop, like the others
redis-cli -p "$redis_port" set book1 100 >/dev/null
start_wasmlet "$work/redis.json" "$port"
log "(e) quickstart chain, Redis"
run_wrk e "http://127.0.0.1:$port/?name=book1" "$work/chain.lua"
answer=$(curl -s -H 'id: save' -d 100 "http://127.0.0.1:$port/")
[ "$answer" = "saved" ] || { echo "unexpected answer from the saving function: $answer" >&2; exit 1; }
log "(k) a function saving one item to Redis per request"
run_wrk k "http://127.0.0.1:$port/" "$work/save.lua"
stop_wasmlet

log "(f) redis-benchmark GET"
redis_out=$(redis-benchmark -p "$redis_port" -c "$connections" -n $((20000 * seconds)) -t get -q 2>/dev/null | tr '\r' '\n' | grep -E '^GET' | tail -1)
rps[f]=$(echo "$redis_out" | awk '{print $2}')
p50[f]=$(echo "$redis_out" | sed -n 's/.*p50=\([0-9.]*\).*/\1/p')
p99[f]="-"
log "(f) ${rps[f]} req/s"
log "(l) redis-benchmark SET"
redis_out=$(redis-benchmark -p "$redis_port" -c "$connections" -n $((20000 * seconds)) -t set -q 2>/dev/null | tr '\r' '\n' | grep -E '^SET' | tail -1)
rps[l]=$(echo "$redis_out" | awk '{print $2}')
p50[l]=$(echo "$redis_out" | sed -n 's/.*p50=\([0-9.]*\).*/\1/p')
p99[l]="-"
log "(l) ${rps[l]} req/s"

# ---- the runtime API for applications -----------------------------------------------------------
# (m) GetState and (n) SaveState over gRPC, driven by h2load with a prepared unary call (one gRPC
# message: the 5-byte frame header and the protobuf), and (o) Dapr's HTTP API's state GET by wrk;
# all on the same Redis. h2load prints no percentiles: they come from its per-request log.
grpc_port=$(free_port)
dapr_port=$(free_port)
cat > "$work/api.json" <<EOF
{"servers": [{"listeners": [
  {"name": "grpc", "address": "127.0.0.1:$grpc_port", "filter_chains": [{"filters": [{"type": "grpc", "config": {
    "server_name": "runtime", "grpc_config": {
      "state": {"state_demo": {"type": "redis", "metadata": {"redisHost": "127.0.0.1:$redis_port"}}},
      "app": {"app_id": "bench"}}}}]}]}]}],
 "wasmlet": {"admin_address": "", "dapr_http_address": "127.0.0.1:$dapr_port",
             "api_max_concurrent_calls": $((connections * 2))}}
EOF
"$build/wasmlet" start -c "$work/api.json" --log-level warn >"$work/wasmlet-api.log" 2>&1 &
wasmlet_pid=$!
pids+=("$wasmlet_pid")
until curl -sf -o /dev/null "http://127.0.0.1:$dapr_port/v1.0/healthz"; do sleep 0.01; done
# The calls' bodies: GetStateRequest{store_name, key} and SaveStateRequest{store_name,
# states: [StateItem{key, value}]}, each in a gRPC frame.
python3 - "$work" <<'PY'
import struct, sys
def field(number, data):  # a length-delimited protobuf field (every length here is < 128)
    return bytes([number << 3 | 2, len(data)]) + data
def frame(message):
    return b"\0" + struct.pack(">I", len(message)) + message
get = field(1, b"state_demo") + field(2, b"bench")
save = field(1, b"state_demo") + field(2, field(1, b"bench") + field(2, b"100"))
open(sys.argv[1] + "/get.grpc", "wb").write(frame(get))
open(sys.argv[1] + "/save.grpc", "wb").write(frame(save))
PY
run_h2load() {  # NAME METHOD BODY
  local out="$work/h2load-$1.txt" requests="$work/h2load-$1.log"
  h2load -D "$seconds" -c "$connections" -m 1 -t 2 -d "$3" --log-file="$requests" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$grpc_port/spec.proto.runtime.v1.Runtime/$2" >"$out"
  rps[$1]=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$out")
  local failed
  failed=$(awk '/^requests:/ {print $10}' "$out")
  [ "$failed" = "0" ] || log "$1: $failed requests failed ($(grep '^requests:' "$out"))"
  # The log's third column: microseconds to the end of each response.
  read -r "p50[$1]" "p99[$1]" "max[$1]" < <(cut -f3 "$requests" | sort -n | awk '{v[NR] = $1} END {
    printf "%.3f %.3f %.3f\n", v[int(NR * 0.5) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000, v[NR] / 1000 }')
  log "$1: ${rps[$1]} req/s, p50 ${p50[$1]} ms, p99 ${p99[$1]} ms"
}
log "(n) SaveState over gRPC, Redis"
run_h2load n SaveState "$work/save.grpc"
answer=$(curl -s "http://127.0.0.1:$dapr_port/v1.0/state/state_demo/bench")
[ "$answer" = "100" ] || { echo "SaveState did not save (Dapr's API reads: $answer); see $work/wasmlet-api.log" >&2; exit 1; }
log "(m) GetState over gRPC, Redis"
run_h2load m GetState "$work/get.grpc"
log "(o) Dapr HTTP state GET, Redis"
run_wrk o "http://127.0.0.1:$dapr_port/v1.0/state/state_demo/bench" "$work/get.lua"
stop_wasmlet

# ---- memory per instance -----------------------------------------------------------------------
port=$(free_port)
config "$work/one.json" "$port" "{\"type\": \"in-memory\"}" 1
start_wasmlet "$work/one.json" "$port"
rss_one=$(rss_kib "$wasmlet_pid")
stop_wasmlet
port=$(free_port)
config "$work/hundred.json" "$port" "{\"type\": \"in-memory\"}" 101
start_wasmlet "$work/hundred.json" "$port"
rss_hundred=$(rss_kib "$wasmlet_pid")
stop_wasmlet
per_instance_kib=$(((rss_hundred - rss_one) / 100))

# ---- start-up and the code cache ---------------------------------------------------------------
# The quickstart's two functions on the embedded store, exec to the first 200 of id_1: the median
# of 5 starts at 2 and at 8 serving loops, each on a code cache the start before it filled.
quick() {  # FILE PORT WORKERS CACHE_DIR
  cat > "$1" <<EOF
{"servers": [{"listeners": [
  {"name": "grpc", "address": "127.0.0.1:0", "filter_chains": [{"filters": [{"type": "grpc", "config": {"grpc_config": {
    "state": {"state_demo": {"type": "embedded", "metadata": {"path": "$work/quick.db"}}}}}}]}]},
  {"name": "wasm", "address": "127.0.0.1:$2", "stream_filters": [{"type": "Layotto", "config": {
    "function1": {"name": "function1", "vm_config": {"engine": "v8", "path": "$build/examples/function1.wasm"}},
    "function2": {"name": "function2", "vm_config": {"engine": "v8", "path": "$build/examples/function2.wasm"}}}}]}]}],
 "wasmlet": {"workers": $3, "admin_address": "127.0.0.1:$admin_port", "code_cache_dir": "$4"}}
EOF
}
first_200_start() {  # CONFIG PORT: exec to the first 200 of id_1, ms; the server is stopped after
  local ms pid
  ms=$(python3 "$repo/bench/first200.py" start "$2" id_1 -- "$build/wasmlet" start -c "$1" --log-level warn 2>"$work/first200.pid")
  pid=$(awk '/^pid / {print $2}' "$work/first200.pid")
  kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
  echo "$ms"
}
median() { tr ' ' '\n' | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
wait_until() {  # SECONDS WHAT COMMAND...: runs COMMAND every 50 ms until it succeeds, or fails the run
  local give_up=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$(date +%s)" -lt "$give_up" ] || { echo "gave up waiting for $what" >&2; exit 1; }
    sleep 0.05
  done
}
written_entries() {  # N: the server wrote N code cache entries since it started (/metrics)
  [ "$(curl -s "http://127.0.0.1:$admin_port/metrics" |
       awk '/^wasmlet_code_cache_modules\{result="written"\}/ {print $2}')" = "$1" ]
}
entries_in() {  # DIR N: DIR holds at least N entries
  [ "$(ls "$1" 2>/dev/null | grep -c '\.code$')" -ge "$2" ]
}
declare -A cold
for loops in 2 8; do
  port=$(free_port)
  quick "$work/quick$loops.json" "$port" "$loops" "$work/quick-cache"
  "$build/wasmlet" state set state_demo book1 100 -c "$work/quick$loops.json" >/dev/null
  # Fill the cache: a start that lives until V8 has optimised both modules and written them.
  "$build/wasmlet" start -c "$work/quick$loops.json" --log-level warn >"$work/fill.log" 2>&1 &
  fill=$!
  wait_until 120 "the quickstart's code cache entries" entries_in "$work/quick-cache" 2
  kill "$fill"; wait "$fill" 2>/dev/null || true
  runs=""
  for _ in 1 2 3 4 5; do runs="$runs $(first_200_start "$work/quick$loops.json" "$port")"; done
  cold[$loops]=$(echo $runs | median)
  log "cold start, $loops serving loops, code cache warm: ${cold[$loops]} ms (runs:$runs)"
done

# Installing a module of about 3 MB through the admin API, to its first 200: compiled (an empty
# cache), then again after an uninstall, loaded from the cache the first install filled.
port=$(free_port)
quick "$work/install.json" "$port" "$cores" "$work/install-cache"
start_wasmlet "$work/install.json" "$port"
wait_until 120 "the quickstart's code cache entries" written_entries 2
big_item="{\"name\": \"big\", \"instance_num\": 1, \"vm_config\": {\"engine\": \"v8\", \"path\": \"$build/examples/big.wasm\"}}"
big_kib=$(($(stat -c %s "$build/examples/big.wasm") / 1024))
install_compiled_ms=$(python3 "$repo/bench/first200.py" install "$port" big "$admin_port" "$big_item")
wait_until 120 "big.wasm's code cache entry" written_entries 3
curl -sf -o /dev/null -X POST "http://127.0.0.1:$admin_port/wasm/uninstall" -d '{"name": "big"}'
install_cached_ms=$(python3 "$repo/bench/first200.py" install "$port" big "$admin_port" "$big_item")
log "install of big.wasm ($big_kib KiB) to its first 200: compiled $install_compiled_ms ms, from the code cache $install_cached_ms ms"
stop_wasmlet

# ---- the table ---------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
added_us=$(awk -v c="${p50[c1]}" -v b="${p50[b1]}" 'BEGIN { printf "%.0f", (c - b) * 1000 }')
{
  echo
  echo "wasmlet benchmarks: $cores cores, $connections connections, ${seconds}s per scenario"
  printf '%-40s %12s %10s %10s %10s\n' scenario "req/s" "p50 ms" "p99 ms" "max ms"
  declare -A names=([a]="(a) nginx fixed 200" [b]="(b) wasmlet fixed route (no wasm)" [c]="(c) wasm echo function"
         [d]="(d) quickstart chain, embedded" [e]="(e) quickstart chain, Redis" [f]="(f) redis-benchmark GET"
         [g]="(g) echo beside a 200 ms CPU burner" [h]="(h) proxy mode, 1 filter, to nginx"
         [i]="(i) nginx reverse proxy to nginx" [j]="(j) function, 1 http_call to nginx"
         [k]="(k) function, 1 state save on Redis" [l]="(l) redis-benchmark SET"
         [m]="(m) GetState over gRPC, Redis" [n]="(n) SaveState over gRPC, Redis" [o]="(o) Dapr HTTP state GET, Redis"
         [b1]="(b1) fixed route, 1 connection" [c1]="(c1) wasm echo, 1 connection")
  for k in a b c d e f g h i j k l m n o b1 c1; do
    printf '%-40s %12s %10s %10s %10s\n' "${names[$k]}" "${rps[$k]}" "${p50[$k]}" "${p99[$k]}" "${max[$k]:--}"
  done
  echo
  printf '%-40s %8s %s\n' "(c)/(a) rps" "$(ratio "${rps[c]}" "${rps[a]}")" "(target >= 0.6)"
  printf '%-40s %8s %s\n' "(c)/(b) rps" "$(ratio "${rps[c]}" "${rps[b]}")" "(target >= 0.9)"
  printf '%-40s %8s %s\n' "(b)/(a) rps" "$(ratio "${rps[b]}" "${rps[a]}")" "(target >= 0.7)"
  printf '%-40s %8s %s\n' "(c) p99 ms" "${p99[c]}" "(target <= 2)"
  printf '%-40s %8s %s\n' "(d)/(c) rps" "$(ratio "${rps[d]}" "${rps[c]}")" "(target >= 0.6)"
  printf '%-40s %8s %s\n' "(e)/(f) rps" "$(ratio "${rps[e]}" "${rps[f]}")" "(target >= 0.5)"
  printf '%-40s %8s %s\n' "(g)/(c) rps" "$(ratio "${rps[g]}" "${rps[c]}")" "(target >= 0.5)"
  printf '%-40s %8s %s\n' "(g) slowest echo request, ms" "${max[g]}" "(target <= 300)"
  printf '%-40s %8s %s\n' "(h)/(i) rps" "$(ratio "${rps[h]}" "${rps[i]}")" "(target >= 0.7)"
  printf '%-40s %8s %s\n' "(j)/(c) rps" "$(ratio "${rps[j]}" "${rps[c]}")" "(target >= 0.5)"
  printf '%-40s %8s %s\n' "(k)/(l) rps" "$(ratio "${rps[k]}" "${rps[l]}")" "(target >= 0.4)"
  printf '%-40s %8s %s\n' "(m)/(f) rps" "$(ratio "${rps[m]}" "${rps[f]}")" "(target >= 0.5)"
  printf '%-40s %8s %s\n' "(n)/(l) rps" "$(ratio "${rps[n]}" "${rps[l]}")" "(target >= 0.4)"
  printf '%-40s %8s %s\n' "(o)/(f) rps" "$(ratio "${rps[o]}" "${rps[f]}")" "(target >= 0.5)"
  printf '%-40s %8s %s\n' "(c1)-(b1) p50 at 1 connection, us" "$added_us" "(target <= 10)"
  printf '%-40s %8s %s\n' "cold start to first 200, ms" "$cold_start_ms" "(the benchmark's four functions, 2 loops)"
  printf '%-40s %8s %s\n' "cold start, quickstart, 2 loops, ms" "${cold[2]}" "(median of 5, code cache warm; target <= 100)"
  printf '%-40s %8s %s\n' "cold start, quickstart, 8 loops, ms" "${cold[8]}" "(median of 5, code cache warm; target <= 100)"
  printf '%-40s %8s %s\n' "install ${big_kib} KiB module, compiled, ms" "$install_compiled_ms" "(POST /wasm/install to its first 200)"
  printf '%-40s %8s %s\n' "install ${big_kib} KiB module, cached, ms" "$install_cached_ms" "(the same, from the code cache)"
  printf '%-40s %8s %s\n' "RSS per echo instance, KiB" "$per_instance_kib" "(100 instances: $rss_one -> $rss_hundred KiB)"
} | tee "$build/bench-results.txt"

cat > "$build/bench-results.json" <<EOF
{"cores": $cores, "connections": $connections, "seconds": $seconds,
 "scenarios": {
$(for k in a b c d e f g h i j k l m n o b1 c1; do printf '  "%s": {"rps": %s, "p50_ms": "%s", "p99_ms": "%s", "max_ms": "%s"}%s\n' "$k" "${rps[$k]:-0}" "${p50[$k]}" "${p99[$k]}" "${max[$k]:--}" "$([ $k = c1 ] || echo ,)"; done)
 },
 "ratios": {"c_over_a": $(ratio "${rps[c]}" "${rps[a]}"), "c_over_b": $(ratio "${rps[c]}" "${rps[b]}"), "b_over_a": $(ratio "${rps[b]}" "${rps[a]}"),
            "d_over_c": $(ratio "${rps[d]}" "${rps[c]}"), "e_over_f": $(ratio "${rps[e]}" "${rps[f]}"), "g_over_c": $(ratio "${rps[g]}" "${rps[c]}"),
            "h_over_i": $(ratio "${rps[h]}" "${rps[i]}"), "j_over_c": $(ratio "${rps[j]}" "${rps[c]}"),
            "k_over_l": $(ratio "${rps[k]}" "${rps[l]}"), "m_over_f": $(ratio "${rps[m]}" "${rps[f]}"),
            "n_over_l": $(ratio "${rps[n]}" "${rps[l]}"), "o_over_f": $(ratio "${rps[o]}" "${rps[f]}")},
 "added_p50_us_at_one_connection": $added_us,
 "cold_start_ms": $cold_start_ms, "cold_start_quickstart_ms": {"loops_2": ${cold[2]}, "loops_8": ${cold[8]}},
 "install_big_module": {"kib": $big_kib, "compiled_ms": $install_compiled_ms, "cached_ms": $install_cached_ms},
 "rss_per_instance_kib": $per_instance_kib}
EOF
log "JSON: $build/bench-results.json"

echo
echo "engine micro benchmarks (bench/engine_bench):"
"$build/bench/engine_bench" --benchmark_min_time=0.2 2>/dev/null | sed -n '/per operation/,$p'
