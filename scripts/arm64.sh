#!/usr/bin/env bash
# The arm64 (Raspberry Pi, 64-bit) build, tested on this amd64 machine: scripts/cross.sh arm64
# (deps, cross build, unit tests under qemu-aarch64-static, .deb packages). See cross.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/cross.sh" arm64 "$@"
