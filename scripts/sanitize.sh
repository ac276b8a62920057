#!/usr/bin/env bash
# Runs the tests on a sanitized build. Every process writes its reports to one folder (the
# end-to-end tests start the sanitized `wasmlet` and shim as child processes, whose reports
# would otherwise only reach their own logs), and any report there fails the run.
#
#   scripts/sanitize.sh [ctest arguments...]
#       AddressSanitizer + UndefinedBehaviorSanitizer (build-sanitize/), the whole suite.
#   scripts/sanitize.sh --thread [ctest arguments...]
#       ThreadSanitizer (build-tsan/), the suites where wasmlet's threads meet: the function
#       pool on real event loops (FunctionPoolTest), the data plane end to end (DataPlaneTest:
#       serving and pool loops, nested and cross-loop invokes) and the admin operations while
#       traffic flows (OperationsTest: reload, install, update, uninstall), proxy mode
#       (ProxyTest: filter chains, upstream and outbound calls, functions that wait for them),
#       gRPC calls (GrpcTest: HTTP/2 sessions on the loops, cancels, deadlines) and the runtime
#       API for applications (RuntimeApiTest, DaprHttpTest: gRPC's and the Dapr API's call
#       threads on the components the functions use, app callbacks, streams).
#
# V8 (Debian's libnode) is not instrumented. ASan still sees every wild access (V8's WebAssembly
# trap handler, bounds checks by SIGSEGV, is not enabled by wasmlet, so ASan keeps its own
# SIGSEGV handler; were it enabled, ASan would have to leave SIGSEGV to V8:
# ASAN_OPTIONS=allow_user_segv_handler=1:handle_segv=0). TSan checks wasmlet's own data and the
# locks and atomics wasmlet uses; what V8 does inside an isolate is invisible to it, which is
# sound because an isolate is only ever used by the one thread that owns it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=address
if [ "${1:-}" = --thread ]; then
  mode=thread
  shift
fi
log() { printf '\033[1m[sanitize:%s]\033[0m %s\n' "$mode" "$*"; }

if [ "$mode" = address ]; then
  build="$repo/build-sanitize"
  options=(-DWASMLET_SANITIZE=ON)
  targets=(all)
  suites=()
else
  build="$repo/build-tsan"
  options=(-DWASMLET_TSAN=ON)
  targets=(wasmlet function_pool_test data_plane_test operations_test proxy_test grpc_test
           api_python_stubs guest_state_function guest_abi_filter)
  suites=(-R '^(FunctionPoolTest|DataPlaneTest|OperationsTest|ProxyTest|GrpcTest|RuntimeApiTest|DaprHttpTest)\.')
fi

"$repo/scripts/setup.sh" --no-build
# The guest modules are plain WebAssembly, the same in every tree: built (or brought up to
# date) once in build/ and copied from there (cmake/WasmGuest.cmake, WASMLET_GUESTS_FROM).
guests=(-DWASMLET_GUESTS_FROM=)
if [ -f "$repo/build/build.ninja" ]; then
  log "building the guest modules in $repo/build"
  cmake --build "$repo/build" --parallel "$(nproc)" --target wasmlet_guests
  guests=(-DWASMLET_GUESTS_FROM="$repo/build")
fi
log "configuring $build"
# -O1 -g1, as the sanitizers' own docs advise: line tables are all a report's stack needs, and
# an instrumented file then compiles in about 60% of the time -O2 -g takes (CI builds two trees).
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${options[@]}" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DWASMLET_BUILD_BENCH=OFF -DWASMLET_WERROR="${WASMLET_WERROR:-OFF}" "${guests[@]}" >/dev/null
log "building"
cmake --build "$build" --parallel "$(nproc)" --target "${targets[@]}"

reports="$build/sanitizer-reports"
rm -rf "$reports" && mkdir -p "$reports"
# detect_leaks=0: V8 and the engine's process-wide platform are torn down by the OS at exit on
# purpose; memory that grows while running is what the hardening tests measure instead.
export ASAN_OPTIONS="log_path=$reports/asan:halt_on_error=1:detect_leaks=0:abort_on_error=0"
export UBSAN_OPTIONS="log_path=$reports/ubsan:halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=1:second_deadlock_stack=1:suppressions=$repo/tests/tsan.supp"
status=0
log "running the suite"
ctest --test-dir "$build" --output-on-failure "${suites[@]}" "$@" || status=$?
if compgen -G "$reports/*" >/dev/null; then
  log "sanitizer reports:"
  for report in "$reports"/*; do
    echo "==== $report"
    head -80 "$report"
  done
  exit 1
fi
exit "$status"
