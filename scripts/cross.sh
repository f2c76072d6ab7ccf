#!/usr/bin/env bash
# A Raspberry Pi build, tested on this amd64 machine, in one command:
#
#   scripts/cross.sh arm64      # 64-bit Raspberry Pi OS / Debian (scripts/arm64.sh)
#   scripts/cross.sh armhf      # 32-bit Raspberry Pi OS (scripts/armhf.sh)
#
# 1. `dpkg --add-architecture ARCH`, then installs Debian's cross toolchain
#    (crossbuild-essential-ARCH), qemu-user-static and the ARCH libraries that
#    co-install beside the native ones (libmosquitto-dev, libserialport-dev,
#    libsqlite3-dev, libssl-dev, libcap-dev for libwebsockets.pc, libwebsockets17,
#    libopus-dev and libasound2-dev for the audio adapter, libpq-dev, libargon2-dev and
#    libuv1-dev for the cloud, and libstdc++6 for qemu: the cross toolchain's own copy is
#    not where `-L /` looks).
#    Every install is simulated first (`apt-get -s`) and refused if it would remove a
#    package: the machine's own build must keep working.
# 2. libwebsockets-dev:ARCH is NEVER installed (it conflicts with the native
#    libwebsockets-dev: lws_config.h differs, and installing it removes the native one):
#    it is downloaded (`apt-get download`) and unpacked (`dpkg-deb -x`) into
#    $BUILD_DIR/sysroot, whose libwebsockets.pc is pointed at that folder.
# 3. Configures $BUILD_DIR (default build-ARCH/) with cmake/<triplet>.cmake and
#    CMAKE_CROSSCOMPILING_EMULATOR="qemu-<cpu>-static -L /", builds (JOBS, default 2,
#    at nice 19), and runs the doctest unit tests and the fuzz corpus replays through
#    ctest under qemu (the node integration/browser tests and the bench are not: they
#    start the native tools around the daemons).
# 4. Packages: `cpack -G DEB` gives flatlink-gateway_<v>_ARCH.deb and
#    flatlink-cloud_<v>_ARCH.deb (and their -dbgsym .ddeb); their architecture and
#    dependencies are printed.
#
# Not part of scripts/test.sh (a third full build: about 10 more minutes of CI on two
# cores per architecture); its results are recorded in docs/operations.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
arch="${1:-}"
case "$arch" in
  arm64) triplet=aarch64-linux-gnu qemu=qemu-aarch64-static ;;
  armhf) triplet=arm-linux-gnueabihf qemu=qemu-arm-static ;;
  *) echo "usage: scripts/cross.sh arm64|armhf" >&2; exit 2 ;;
esac
build_dir="${BUILD_DIR:-$root/build-$arch}"
jobs="${JOBS:-2}"
sysroot="$build_dir/sysroot"

step() { printf '\n==> %s\n' "$*"; }

sudo=()
if [[ "$(id -u)" != 0 ]]; then sudo=(sudo); fi
apt() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

step "$arch packages"
if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
  "${sudo[@]}" dpkg --add-architecture "$arch"
  apt update -q
fi
packages=("crossbuild-essential-$arch" qemu-user-static)
for p in libmosquitto-dev libserialport-dev libsqlite3-dev libssl-dev libcap-dev libwebsockets17 \
         libstdc++6 libopus-dev libasound2-dev libpq-dev libargon2-dev libuv1-dev; do
  packages+=("$p:$arch")
done
missing=()
for p in "${packages[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  # A package list that cannot co-install would show up as removals: refuse those.
  if ! plan="$(apt -s install -y -q --no-install-recommends "${missing[@]}" 2>&1)"; then
    apt update -q
    plan="$(apt -s install -y -q --no-install-recommends "${missing[@]}")"
  fi
  if grep -q '^Remv' <<<"$plan"; then
    echo "cross.sh: installing ${missing[*]} would remove packages; refusing:" >&2
    grep '^Remv' <<<"$plan" >&2
    exit 1
  fi
  apt install -y -q --no-install-recommends "${missing[@]}"
else
  echo "cross.sh: $arch packages present"
fi

step "libwebsockets-dev:$arch into $sysroot (not installed)"
lws_version="$(dpkg-query -W -f='${Version}' libwebsockets17:$arch)"
if [[ ! -f "$sysroot/.lws-$lws_version" ]]; then
  rm -rf "$sysroot"
  mkdir -p "$sysroot" "$build_dir/debs"
  # (apt's sandbox user must be able to write there: a root-only build folder would do,
  # with a warning, but a temp folder handed to _apt keeps apt quiet.)
  tmp="$(mktemp -d)"
  chmod 755 "$tmp"
  (cd "$tmp" && chown _apt "$tmp" 2>/dev/null; apt-get download -q "libwebsockets-dev:$arch=$lws_version")
  mv "$tmp"/*.deb "$build_dir/debs/"
  rmdir "$tmp"
  dpkg-deb -x "$build_dir/debs/libwebsockets-dev_${lws_version//:/%3a}_$arch.deb" "$sysroot"
  # Its .pc names /usr: point it at the sysroot, so pkg-config hands CMake the $arch
  # lws_config.h and libwebsockets.so (whose target, libwebsockets.so.17, the
  # libwebsockets17:ARCH package installed in /usr/lib/<triplet>).
  pc="$sysroot/usr/lib/$triplet/pkgconfig/libwebsockets.pc"
  sed -i "s#^prefix=.*#prefix=$sysroot/usr#" "$pc"
  ln -sf "/usr/lib/$triplet/libwebsockets.so.17" \
    "$sysroot/usr/lib/$triplet/libwebsockets.so"
  touch "$sysroot/.lws-$lws_version"
fi

step "Cross build ($build_dir)"
nice -n 19 cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/$triplet.cmake" \
  -DFLATLINK_SYSROOT="$sysroot" \
  "-DCMAKE_CROSSCOMPILING_EMULATOR=$qemu;-L;/"
nice -n 19 cmake --build "$build_dir" --parallel "$jobs"
file "$build_dir/gateway/flatlinkd" "$build_dir/cloud-server/flatlink-cloud"
"$qemu" -L / "$build_dir/gateway/flatlinkd" --version

step "Unit tests under $qemu"
# Every test but the ones that drive node, Chromium or the bench (label bench).
nice -n 19 ctest --test-dir "$build_dir" --output-on-failure --timeout 600 \
  -E '^(integration|browser)$' -LE bench

step "Packages"
(cd "$build_dir" && nice -n 19 cpack -G DEB)
for deb in "$build_dir"/flatlink-*_"$arch".deb; do
  printf '%s  %s bytes\n' "$(basename "$deb")" "$(stat -c %s "$deb")"
  dpkg-deb -f "$deb" Package Version Architecture Depends
done
