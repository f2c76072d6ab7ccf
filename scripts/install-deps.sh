#!/usr/bin/env bash
# Installs what flatlink needs to build, test and run its demo on Debian 12 /
# Raspberry Pi OS (bookworm): Debian packages through apt, and the node tests'
# npm packages (tests/integration and tests/browser, each pinned by its
# package-lock.json). The browser tests drive Debian's chromium.
#
# Idempotent: apt runs only when a package is missing, npm only when a test
# folder's node_modules is missing or older than its lock file.
# Nothing is downloaded except through apt and npm.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  build-essential cmake pkg-config ccache
  libwebsockets-dev libmosquitto-dev nlohmann-json3-dev libserialport-dev
  libsqlite3-dev libssl-dev doctest-dev
  libuv1-dev libwebsockets-evlib-uv  # the cloud's libuv loop (common/uv_loop.cpp, lws' plugin)
  libargon2-dev  # Argon2id password hashes (cloud-server/auth.cpp)
  libpq-dev postgresql-15  # the cloud's store (PostgreSQL: tests start their own server)
  sqlite3  # tests read the store's file (tests/integration/frontdoor_rehash.test.mjs)
  clang libclang-rt-14-dev  # clang with libFuzzer and sanitizer runtimes: tests/fuzz/run.sh
  libasound2-dev libopus-dev  # device-adapters/audio (ALSA capture and playback, Opus)
  mosquitto mosquitto-clients socat openssl
  nats-server  # a 3-node broker cluster for the backplane test (tests/integration/backplane.test.mjs)
  python3  # test helpers: a unix datagram listener, a throttling TCP proxy
  chromium
  # The packages' checks (tests/integration/packaging.test.mjs, tests/system/nspawn.test.mjs):
  # lintian; a Debian root booted under systemd-nspawn; file tells a stripped binary.
  lintian mmdebstrap systemd-container file
  reprepro gnupg  # scripts/apt-repo.sh (a signed apt repository, installed from by nspawn.test.mjs)
)
# Node.js runs the integration tests. A node already on PATH (e.g. from
# NodeSource, with its own npm) is used as it is: Debian's nodejs would replace it.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-deps: not root and no sudo: install these as root: ${missing[*]}" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: Debian packages present"
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: node is on PATH but npm is not; install npm for that node" >&2
  exit 1
fi

# npm leaves node_modules/.package-lock.json behind after every install: it
# marks when node_modules was last brought in line with the lock file.
for name in integration browser; do
  dir="$root/tests/$name"
  [[ -f "$dir/package.json" ]] || continue
  marker="$dir/node_modules/.package-lock.json"
  if [[ ! -f "$dir/package-lock.json" ]]; then
    echo "install-deps: npm install in tests/$name (no lock file yet)"
    (cd "$dir" && npm install --no-audit --no-fund)
  elif [[ ! -f "$marker" || "$dir/package-lock.json" -nt "$marker" ]]; then
    echo "install-deps: npm ci in tests/$name"
    (cd "$dir" && npm ci --no-audit --no-fund)
  else
    echo "install-deps: tests/$name/node_modules up to date"
  fi
done
