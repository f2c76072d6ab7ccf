#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan; a separate build folder) and runs
# each for N seconds (default 10) from its seed corpus in fuzz/corpus/<target>/.
#
#   fuzz/run.sh [seconds] [target...]      e.g. fuzz/run.sh 600 protocol config
#
# New inputs that reach new code go to $FUZZ_BUILD_DIR/found/<target>/, never into
# the checked-in corpus; a crash leaves crash-* in $FUZZ_BUILD_DIR/artifacts/<target>/
# and stops the script with a non-zero exit. Minimise one with
#   $FUZZ_BUILD_DIR/fuzz/fuzz_<target> -minimize_crash=1 -runs=100000 <crash file>
# and add it to fuzz/corpus/<target>/ as a regression seed (docs/fuzzing.md).
#
# Everything runs at nice 19 with one build job unless JOBS / NICE say otherwise:
# the build box is small and shared.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${1:-10}"
shift || true
jobs="${JOBS:-1}"
nice_level="${NICE:-19}"
all=(protocol streams config serial_line mqtt_payload mqtt_sources wifly_markers wifly_hixie wifly_handshake)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")

run() { nice -n "$nice_level" "$@"; }

CC=clang CXX=clang++ run cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFLATLINK_FUZZ=ON -DFLATLINK_TESTS=OFF >/dev/null
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
run cmake --build "$build_dir" --parallel "$jobs" "${build_targets[@]}"

# Keep symbolized reports; fail hard on any UBSan report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

status=0
for t in "${targets[@]}"; do
  corpus="$root/fuzz/corpus/$t"
  found="$build_dir/found/$t"
  artifacts="$build_dir/artifacts/$t"
  mkdir -p "$found" "$artifacts"
  printf '\n==> fuzz_%s for %ss\n' "$t" "$seconds"
  dict=()
  [[ -f "$root/fuzz/$t.dict" ]] && dict=(-dict="$root/fuzz/$t.dict")
  if ! run "$build_dir/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$found" "$corpus"; then
    echo "fuzz/run.sh: fuzz_$t failed; see $artifacts/" >&2
    status=1
  fi
done
exit "$status"
