#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan; a separate build folder) and runs
# each for N seconds (default 10) from its seed corpus in tests/fuzz/corpus/<target>/,
# with its dictionary (tests/fuzz/<target>.dict) when it has one.
#
#   tests/fuzz/run.sh [seconds] [target...]      e.g. tests/fuzz/run.sh 600 protocol config
#
# The adapter targets (serial_line, mqtt_*, wifly_*) run with -max_len=MAX_LEN (default 1 MiB,
# at least that: deep nesting and huge values only show in long inputs; issue #18);
# the others with libFuzzer's default.
# RUNS=N also stops a target after N executions (the long run: RUNS=10000000 with 600 s);
# PARALLEL=N runs N targets at a time (default 1); BUILD=0 uses the binaries as they are. Each target's output goes to
# $FUZZ_BUILD_DIR/logs/<target>.log; a table of the figures (executions, exec/s, coverage,
# features, corpus) is printed at the end.
#
# FUZZ_BUILD_DIR (default build-fuzz/) may be an existing FLATLINK_FUZZ=ON build, e.g.
# scripts/test.sh's sanitizer build (build-asan/): it is then only brought up to date.
# New inputs that reach new code go to $FUZZ_BUILD_DIR/found/<target>/, never into
# the checked-in corpus; a crash leaves crash-* in $FUZZ_BUILD_DIR/artifacts/<target>/
# and the script exits non-zero. Minimise one with
#   $FUZZ_BUILD_DIR/tests/fuzz/fuzz_<target> -minimize_crash=1 -runs=100000 <crash file>
# and add it to tests/fuzz/corpus/<target>/ as a regression seed (docs/fuzzing.md).
#
# Everything runs at nice 19 with one build job unless JOBS / NICE say otherwise:
# the build box is small and shared.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${1:-10}"
shift || true
jobs="${JOBS:-1}"
nice_level="${NICE:-19}"
runs="${RUNS:--1}"
parallel="${PARALLEL:-1}"
max_len="${MAX_LEN:-1048576}"
all=(protocol streams config backplane serial_line mqtt_payload mqtt_sources wifly_markers wifly_hixie wifly_handshake)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")

run() { nice -n "$nice_level" "$@"; }

if [[ "${BUILD:-1}" != 0 ]]; then
  if ! grep -q '^FLATLINK_FUZZ:BOOL=ON' "$build_dir/CMakeCache.txt" 2>/dev/null; then
    CC=clang CXX=clang++ run cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DFLATLINK_FUZZ=ON -DFLATLINK_TESTS=OFF >/dev/null
  fi
  build_targets=()
  for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
  run cmake --build "$build_dir" --parallel "$jobs" "${build_targets[@]}"
fi

# Keep symbolized reports; fail hard on any UBSan report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

fuzz_one() {
  local t="$1"
  local corpus="$root/tests/fuzz/corpus/$t"
  local found="$build_dir/found/$t"
  local artifacts="$build_dir/artifacts/$t"
  local logfile="$build_dir/logs/$t.log"
  mkdir -p "$found" "$artifacts" "$build_dir/logs"
  local dict=()
  [[ -f "$root/tests/fuzz/$t.dict" ]] && dict=(-dict="$root/tests/fuzz/$t.dict")
  local len=()
  case "$t" in serial_line | mqtt_* | wifly_*) len=(-max_len="$max_len") ;; esac
  printf '==> fuzz_%s: %ss, at most %s runs (log: %s)\n' "$t" "$seconds" "$runs" "$logfile"
  if ! run "$build_dir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -runs="$runs" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "${len[@]}" \
      "$found" "$corpus" >"$logfile" 2>&1; then
    echo "tests/fuzz/run.sh: fuzz_$t failed; see $logfile and $artifacts/" >&2
    tail -n 40 "$logfile" >&2
    return 1
  fi
}

status=0
pids=()
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  pids+=($!)
  if ((${#pids[@]} >= parallel)); then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done

# The figures, from libFuzzer's last status line and its final stats.
printf '\n| target | seconds | executions | exec/s | coverage (edges) | features | corpus (inputs/size) | crashes |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for t in "${targets[@]}"; do
  logfile="$build_dir/logs/$t.log"
  last="$(grep -E '^#[0-9]+' "$logfile" | tail -n 1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: //p' "$logfile" | tail -n 1)"
  rate="$(sed -n "s/^stat::average_exec_per_sec: *//p" "$logfile" | tail -n 1)"
  secs="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$logfile" | tail -n 1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corp="$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")"
  crashes="$(find "$build_dir/artifacts/$t" -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' | wc -l)"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "${secs:-?}" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
done
exit "$status"
