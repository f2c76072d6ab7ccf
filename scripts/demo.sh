#!/usr/bin/env bash
# The demo: builds flatlink, then runs a cloud server and a gateway with
# simulated devices on this machine, until Ctrl-C.
#
#   ./scripts/demo.sh                          cloud on 127.0.0.1:8080
#   FLATLINK_DEMO_PORT=9090 ./scripts/demo.sh  another port
#   BUILD_DIR=/tmp/b ./scripts/demo.sh         another build folder
#   FLATLINK_DEMO_SKIP_BUILD=1 FLATLINK_BUILD_DIR=/tmp/b ./scripts/demo.sh
#                                              run what /tmp/b already holds: no
#                                              install, no build (the test suite)
#
# The cloud serves the dashboard from cloud-server/dashboard/ (its built-in default).
# Configuration: config/examples/demo-cloud.json and demo-gateway.json (with the
# gateway's token in config/examples/gateway-token.txt).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build_dir="${FLATLINK_BUILD_DIR:-${BUILD_DIR:-$root/build}}"
export BUILD_DIR="$build_dir"

say() { printf '\n==> %s\n' "$*"; }
fail() {
  printf 'demo: %s\n' "$*" >&2
  exit 1
}

if [[ "${FLATLINK_DEMO_SKIP_BUILD:-}" == 1 ]]; then
  say "Using the binaries in $build_dir (FLATLINK_DEMO_SKIP_BUILD=1)"
else
  say "Dependencies"
  scripts/install-deps.sh
  say "Build ($build_dir)"
  scripts/build.sh
fi

cloud_bin="$build_dir/cloud-server/flatlink-cloud"
gateway_bin="$build_dir/gateway/flatlinkd"
examples="$root/config/examples"
cloud_config="$examples/demo-cloud.json"
gateway_config="$examples/demo-gateway.json"
token_file="$examples/gateway-token.txt"

for f in "$cloud_bin" "$gateway_bin"; do
  [[ -x "$f" ]] || fail "$f was not built"
done
for f in "$cloud_config" "$gateway_config" "$token_file"; do
  [[ -f "$f" ]] || fail "$f is missing"
done

default_port=8080
port="${FLATLINK_DEMO_PORT:-$default_port}"
[[ "$port" =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) ||
  fail "FLATLINK_DEMO_PORT must be a TCP port number (1-65535), got '$port'"

workdir=""
cleanup() { if [[ -n "$workdir" ]]; then rm -rf "$workdir"; fi; }
trap cleanup EXIT

# The token is a secret: the gateway warns about a token file others may read.
# (Git keeps no read permissions, so a fresh clone has it world-readable.)
chmod 600 "$token_file" 2>/dev/null || true

if [[ "$port" != "$default_port" ]]; then
  # Same demo on another port: copies of the examples with the port rewritten,
  # and a state folder of its own, so that it can run beside the default demo.
  workdir="$(mktemp -d "${TMPDIR:-/tmp}/flatlink-demo.XXXXXX")"
  sed -E "s/(\"port\"[[:space:]]*:[[:space:]]*)[0-9]+/\1$port/" "$cloud_config" >"$workdir/demo-cloud.json"
  sed -E -e "s#(\"wss?://[^/\":]+):[0-9]+#\1:$port#" \
    -e "s#(\"state_dir\"[[:space:]]*:[[:space:]]*)\"[^\"]*\"#\1\"state\"#" \
    "$gateway_config" >"$workdir/demo-gateway.json"
  install -m 600 "$token_file" "$workdir/$(basename "$token_file")"
  grep -Eq "\"port\"[[:space:]]*:[[:space:]]*$port\b" "$workdir/demo-cloud.json" ||
    fail "could not set the port in a copy of $cloud_config"
  grep -Eq "\"wss?://[^/\":]+:$port[/\"]" "$workdir/demo-gateway.json" ||
    fail "could not set the port in the cloud URL of a copy of $gateway_config"
  # Relative paths in the copies (token_file, state_dir) resolve against the
  # copies' folder, which is removed when the demo ends.
  cloud_config="$workdir/demo-cloud.json"
  gateway_config="$workdir/demo-gateway.json"
fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if listening "$port"; then
  fail "something already listens on 127.0.0.1:$port; stop it or choose another port: FLATLINK_DEMO_PORT=9090 $0"
fi

cloud_pid=""
gateway_pid=""

name_of() { [[ "$1" == "$cloud_pid" ]] && echo flatlink-cloud || echo flatlinkd; }

# Sends SIGTERM to both and waits for them (SIGKILL after 10 s). Bash may have
# reaped one already (a Ctrl-C reaches them too); `wait` still gives its code.
stop_all() {
  local pid code pids=()
  for pid in "$gateway_pid" "$cloud_pid"; do
    if [[ -n "$pid" ]]; then pids+=("$pid"); fi
  done
  ((${#pids[@]})) || return 0
  say "Stopping"
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$(name_of "$pid") did not stop within 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    code=0
    wait "$pid" 2>/dev/null || code=$?
    echo "$(name_of "$pid") stopped (exit code $code)"
  done
  gateway_pid=""
  cloud_pid=""
}

on_signal() {
  trap - INT TERM HUP
  stop_all
  exit 0
}
trap on_signal INT TERM HUP

say "Starting flatlink-cloud on 127.0.0.1:$port"
"$cloud_bin" --config "$cloud_config" &
cloud_pid=$!

# The gateway would retry until the cloud is up; waiting keeps the log tidy.
for _ in $(seq 100); do
  listening "$port" && break
  if ! kill -0 "$cloud_pid" 2>/dev/null; then
    code=0
    wait "$cloud_pid" || code=$?
    cloud_pid=""
    fail "flatlink-cloud exited early (exit code $code)"
  fi
  sleep 0.1
done
listening "$port" || {
  stop_all
  fail "flatlink-cloud is not listening on 127.0.0.1:$port after 10 s"
}

say "Starting flatlinkd (simulated devices)"
"$gateway_bin" --config "$gateway_config" &
gateway_pid=$!

cat <<EOF

==> The demo is running
    flatlink-cloud  pid $cloud_pid   $cloud_config
    flatlinkd       pid $gateway_pid   $gateway_config

    Dashboard:  http://127.0.0.1:$port/   (open it in a browser)
    Log in:     flat "flat-a", user "demo", password "demo"

    Both processes log below. Press Ctrl-C to stop them.

EOF

# Until Ctrl-C (the trap) or one of them ends by itself.
exited=""
code=0
wait -n -p exited "$cloud_pid" "$gateway_pid" || code=$?
trap - INT TERM HUP
if [[ -n "$exited" ]]; then
  echo
  echo "demo: $(name_of "$exited") exited early (exit code $code)" >&2
  [[ "$exited" == "$cloud_pid" ]] && cloud_pid="" || gateway_pid=""
  stop_all
  exit 1
fi
stop_all
