#!/usr/bin/env bash
# The armhf (Raspberry Pi OS 32-bit) build, tested on this amd64 machine: scripts/cross.sh armhf
# (deps, cross build, unit tests under qemu-arm-static, .deb packages). See cross.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/cross.sh" armhf "$@"
