#!/usr/bin/env bash
# Builds wasmlet with ThreadSanitizer (build-tsan/) and runs the suites where wasmlet's threads
# meet: the function pool on real event loops (FunctionPoolTest), the data plane end to end
# (DataPlaneTest: serving loops, pool loops, nested and cross-loop invokes), and the admin
# operations while traffic flows (OperationsTest: reload, install, update, uninstall). The
# end-to-end tests start the instrumented `wasmlet` as a child process, so every process writes
# its reports to one folder, and any report there fails the run.
#
#   scripts/tsan.sh [ctest arguments...]
#
# V8 (Debian's libnode) is not instrumented. TSan therefore checks wasmlet's own data and the
# locks and atomics wasmlet uses; what V8 does inside an isolate is invisible to it, which is
# sound here because an isolate is only ever used by the one thread that owns it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build-tsan"
log() { printf '\033[1m[tsan]\033[0m %s\n' "$*"; }

"$repo/scripts/setup.sh" --no-build
log "configuring $build"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWASMLET_TSAN=ON \
  -DWASMLET_BUILD_BENCH=OFF -DWASMLET_WERROR="${WASMLET_WERROR:-OFF}" >/dev/null
log "building"
cmake --build "$build" --parallel "$(nproc)" --target wasmlet function_pool_test data_plane_test operations_test

reports="$build/tsan-reports"
rm -rf "$reports" && mkdir -p "$reports"
export TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=1:second_deadlock_stack=1"
status=0
log "running the suites"
ctest --test-dir "$build" --output-on-failure -R '^(FunctionPoolTest|DataPlaneTest|OperationsTest)\.' "$@" || status=$?
if compgen -G "$reports/*" >/dev/null; then
  log "ThreadSanitizer reports:"
  for report in "$reports"/*; do
    echo "==== $report"
    head -80 "$report"
  done
  exit 1
fi
exit "$status"
