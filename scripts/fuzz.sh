#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang-19, AddressSanitizer and
# UndefinedBehaviorSanitizer in their own tree (build-fuzz/), then, for each target, replays the
# inputs of tests/fuzz/regressions/TARGET/ and fuzzes for FUZZ_SECONDS from a copy of its seed
# corpus (tests/fuzz/corpus/TARGET/, left unchanged). See tests/fuzz/README.md.
#
#   scripts/fuzz.sh [--build-only | --no-build]
#
# Environment: FUZZ_SECONDS (60) per target; FUZZ_TARGETS ("fuzz_module fuzz_pairs ...", all by
# default) picks some; FUZZ_UBSAN_SUPPRESSIONS=FILE passes over UB already reported (while it is
# being fixed) so that fuzzing can go further; FUZZ_FLAGS adds libFuzzer flags (e.g. "-fork=1
# -ignore_crashes=1" to keep going past crashes).
#
# Prints the seconds and executions of each target and exits non-zero if a regression input
# still fails or a target failed (crash, sanitizer report, leak, timeout, out of memory), naming
# the reproducer it wrote. Replay one from the repository root: build-fuzz/tests/fuzz/TARGET FILE
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir="$repo/build-fuzz"
do_build=1
do_run=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) do_run=0; shift ;;
    --no-build) do_build=0; shift ;;
    *) echo "fuzz.sh: unknown option '$1' (see the comment at the top of the script)" >&2; exit 2 ;;
  esac
done

all_targets="fuzz_module fuzz_pairs fuzz_config fuzz_ttrpc fuzz_admin fuzz_guest fuzz_dapr_http"
targets=${FUZZ_TARGETS:-$all_targets}
seconds=${FUZZ_SECONDS:-60}

log() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }

if [ "$do_build" -eq 1 ]; then
  # Packages (clang-19, libclang-rt-19-dev) and V8, unpacked into build/_v8 where cmake/V8.cmake looks.
  # -O1 -g1: line tables are all a crash's stack needs, full debug info costs the build most, and
  # -O1 builds in about 60% of the time of -O2; a 30 s campaign loses little to the slower code.
  "$repo/scripts/setup.sh" --no-build
  log "configuring $build_dir"
  cmake -S "$repo" -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
    -DWASMLET_FUZZ=ON -DWASMLET_BUILD_TESTS=OFF -DWASMLET_BUILD_BENCH=OFF >/dev/null
  log "building the fuzz targets"
  start=$(date +%s)
  cmake --build "$build_dir" --target wasmlet_fuzzers --parallel "$(nproc)"
  log "built in $(($(date +%s) - start)) s"
fi
[ "$do_run" -eq 1 ] || exit 0

# Any sanitizer report ends the run and leaves a reproducer.
symbolizer=/usr/lib/llvm-19/bin/llvm-symbolizer
[ -x "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$symbolizer"
asan_options="halt_on_error=1"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
[ -n "${FUZZ_UBSAN_SUPPRESSIONS:-}" ] && UBSAN_OPTIONS="$UBSAN_OPTIONS:suppressions=$FUZZ_UBSAN_SUPPRESSIONS"
export UBSAN_OPTIONS

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts="$build_dir/fuzz-artifacts"
logs="$build_dir/fuzz-logs"
mkdir -p "$artifacts" "$logs"

summary=()
failed=0
for target in $targets; do
  binary="$build_dir/tests/fuzz/$target"
  [ -x "$binary" ] || { echo "fuzz.sh: $binary is missing (build first)" >&2; exit 1; }
  # Per target: libFuzzer's time limit for one input, and whether leaks are checked.
  timeout=10
  options="$asan_options"
  case "$target" in
    # V8 keeps allocations LeakSanitizer cannot see referenced (from its heap pages), and every
    # host callback runs below V8 frames, so no suppression tells the two apart: no leak checks.
    fuzz_admin) timeout=120 options="$options:detect_leaks=0" ;;  # an answer is awaited up to 60 s
    fuzz_guest) timeout=30 options="$options:detect_leaks=0" ;;
    fuzz_dapr_http) timeout=30 options="$options:detect_leaks=0" ;;  # its server lives as long as the fuzzer
  esac
  # The inputs that found bugs first: each must run clean once its bug is fixed.
  regressions=("$repo/tests/fuzz/regressions/$target"/*)
  replay_log="$logs/$target.regressions.log"
  if [ -e "${regressions[0]}" ]; then
    if ! (cd "$repo" && ASAN_OPTIONS="$options" "$binary" "${regressions[@]}") >"$replay_log" 2>&1; then
      failed=1
      input=$(grep -o 'Running: .*' "$replay_log" | tail -1 | sed 's/Running: //')
      line="$target: the regression input $input still fails (log $replay_log)"
      log "$line"
      summary+=("$line")
    fi
  fi
  cp -r "$repo/tests/fuzz/corpus/$target" "$work/$target"
  mkdir -p "$artifacts/$target"
  log "$target: ${seconds} s"
  start=$(date +%s)
  status=0
  fuzz_log="$logs/$target.log"
  # From the repository root: fuzz_admin's seeds name modules by paths relative to it.
  (cd "$repo" && ASAN_OPTIONS="$options" "$binary" -max_total_time="$seconds" -timeout="$timeout" \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$artifacts/$target/" ${FUZZ_FLAGS:-} \
    "$work/$target") >"$fuzz_log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - start))
  # libFuzzer's final count, or (in -fork mode, which prints none) its last status line's.
  execs=$(grep -o 'number_of_executed_units: [0-9]*' "$fuzz_log" | tail -1 | grep -o '[0-9]*$' || true)
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$fuzz_log" | tail -1 | tr -d '#' || true)
  line=$(printf '%-12s %5s s %10s executions' "$target" "$elapsed" "${execs:-?}")
  if [ "$status" -ne 0 ]; then
    failed=1
    reproducer=$(grep -o 'Test unit written to .*' "$fuzz_log" | tail -1 | sed 's/.* to //' || true)
    line="$line  FAILED (exit $status): ${reproducer:-no reproducer written}, log $fuzz_log"
    # What went wrong, in a line or two: the sanitizer's report, UB, an uncaught exception, a check.
    what='ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|terminate called|what\(\):'
    grep -m2 -E "$what|^fuzz_[a-z]+: " "$fuzz_log" | sed 's/^/    /' || true
  fi
  log "$line"
  summary+=("$line")
done

echo
printf '%s\n' "${summary[@]}"
exit "$failed"
