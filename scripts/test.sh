#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test
# (doctest unit tests and the node integration tests) through ctest, then does it all
# again in a second build under the sanitizers (below).
# Exits non-zero on any failure. BUILD_DIR overrides the build folder,
# SANITIZE_BUILD_DIR the sanitizer build's (default: <build folder>-asan);
# SANITIZE=0 skips the sanitizer pass.
#
# The sanitizer pass: the whole project built by clang with AddressSanitizer (leaks
# included: LeakSanitizer) and UndefinedBehaviorSanitizer (-fno-sanitize-recover: the
# first report ends the process), plus libFuzzer coverage (FLATLINK_FUZZ=ON), and the
# whole ctest suite run there: the doctest binaries, the node integration and browser
# tests and the bench smoke start the sanitized daemons of that build, and each fuzz
# target replays its corpus and fuzzes for a few seconds. Every sanitizer report goes to
# <sanitizer build>/sanitizer-logs/ (log_path); any file there fails the run and is
# printed, so a leak at a daemon's exit fails even a test that does not check its exit
# code. Suppressions, each justified: tests/sanitizers/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build_dir="${BUILD_DIR:-$root/build}"
san_dir="${SANITIZE_BUILD_DIR:-$build_dir-asan}"
export BUILD_DIR="$build_dir"

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS
took() { printf '    (%d s so far)\n' "$((SECONDS - started))"; }

step "Dependencies"
scripts/install-deps.sh

step "Build ($build_dir)"
scripts/build.sh
took

# The sanitizer build (clang, ASan + LSan + UBSan, libFuzzer targets) runs in the background
# at the lowest CPU priority while the tests run: the tests mostly wait on their daemons and
# browsers, and the build takes only the CPU they leave, so its time overlaps theirs.
san_pid=""
san_log="$build_dir/sanitizer-build.log"
if [[ "${SANITIZE:-1}" != 0 ]]; then
  step "Sanitizer build ($san_dir) started in the background at nice 19: $san_log"
  CC=clang CXX=clang++ BUILD_DIR="$san_dir" setsid nice -n 19 scripts/build.sh -DFLATLINK_FUZZ=ON >"$san_log" 2>&1 &
  san_pid=$!
  # its own process group (setsid), so that a failing test run stops the whole build
  trap '[[ -n "$san_pid" ]] && kill -- "-$san_pid" 2>/dev/null; true' EXIT
fi

step "Tests"
# Includes the packages' tests (system_packaging: lintian, install/upgrade/purge) and, as
# root with mmdebstrap and systemd-nspawn (install-deps.sh installs them), the units booted
# under systemd in a container (system_nspawn, and system_firstrun: install, pair, devices
# seen; about two minutes each; skipped with the reason otherwise). Its Debian root is cached
# under /var/cache/flatlink-test/.
ctest --test-dir "$build_dir" --output-on-failure --timeout 300
took

if [[ -z "$san_pid" ]]; then
  echo "SANITIZE=0: sanitizer pass skipped"
  exit 0
fi

step "Sanitizer build: waiting for it to finish"
if ! wait "$san_pid"; then
  san_pid=""
  echo "test.sh: the sanitizer build failed; the end of $san_log:" >&2
  tail -n 80 "$san_log" >&2
  exit 1
fi
san_pid=""
tail -n 3 "$san_log"
took

step "Tests under the sanitizers"
logs="$san_dir/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
supp="$root/tests/sanitizers"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:log_path=$logs/report"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp:log_path=$logs/report"
status=0
ctest --test-dir "$san_dir" --output-on-failure --timeout 600 || status=1
reports=("$logs"/*)
if [[ -e "${reports[0]}" ]]; then
  echo "test.sh: ${#reports[@]} sanitizer report(s):" >&2
  for r in "${reports[@]}"; do
    printf '\n--- %s\n' "$r" >&2
    head -c 20000 "$r" >&2
  done
  status=1
else
  echo "test.sh: no sanitizer reports"
fi
took
exit "$status"
