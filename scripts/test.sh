#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test
# (doctest unit tests and the node integration tests) through ctest.
# Exits non-zero on any failure. BUILD_DIR overrides the build folder.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build_dir="${BUILD_DIR:-$root/build}"
export BUILD_DIR="$build_dir"

step() { printf '\n==> %s\n' "$*"; }

step "Dependencies"
scripts/install-deps.sh

step "Build ($build_dir)"
scripts/build.sh

step "Tests"
ctest --test-dir "$build_dir" --output-on-failure --timeout 300
