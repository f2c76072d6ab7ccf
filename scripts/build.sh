#!/usr/bin/env bash
# Configures and builds flatlink into build/ (or $BUILD_DIR).
# Extra arguments go to the CMake configure step, e.g.
#   scripts/build.sh -DFLATLINK_SANITIZE=ON
# ccache is used when installed (CMakeLists.txt picks it up).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 2)}"

cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$build_dir" --parallel "$jobs"
