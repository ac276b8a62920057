#!/usr/bin/env bash
# Builds wasmlet with AddressSanitizer + UndefinedBehaviorSanitizer (build-sanitize/) and runs
# the whole CTest suite on it. The end-to-end tests start the sanitized `wasmlet` and shim as
# child processes, so every process writes its reports to one folder, and any report there
# fails the run (a child's report would otherwise only reach that child's log).
#
#   scripts/sanitize.sh [ctest arguments...]      e.g. scripts/sanitize.sh -R Hardening
#
# V8's WebAssembly trap handler (bounds checks by SIGSEGV) is not enabled by wasmlet: V8 then
# checks bounds with explicit compares, and ASan keeps its own SIGSEGV handler, so a wild
# access anywhere is reported. (Were the trap handler enabled, ASan would have to leave SIGSEGV
# to V8: ASAN_OPTIONS=allow_user_segv_handler=1:handle_segv=0.)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build-sanitize"
log() { printf '\033[1m[sanitize]\033[0m %s\n' "$*"; }

"$repo/scripts/setup.sh" --no-build
log "configuring $build"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWASMLET_SANITIZE=ON \
  -DWASMLET_BUILD_BENCH=OFF -DWASMLET_WERROR="${WASMLET_WERROR:-OFF}" >/dev/null
log "building"
cmake --build "$build" --parallel "$(nproc)"

reports="$build/sanitizer-reports"
rm -rf "$reports" && mkdir -p "$reports"
# detect_leaks=0: V8 and the engine's process-wide platform are torn down by the OS at exit on
# purpose; memory that grows while running is what the hardening tests measure instead.
export ASAN_OPTIONS="log_path=$reports/asan:halt_on_error=1:detect_leaks=0:abort_on_error=0"
export UBSAN_OPTIONS="log_path=$reports/ubsan:halt_on_error=1:print_stacktrace=1"
status=0
log "running the suite"
ctest --test-dir "$build" --output-on-failure "$@" || status=$?
if compgen -G "$reports/*" >/dev/null; then
  log "sanitizer reports:"
  for report in "$reports"/*; do
    echo "==== $report"
    head -60 "$report"
  done
  exit 1
fi
exit "$status"
