#!/usr/bin/env bash
# The demo: builds flatlink, then runs a cloud server and a gateway with
# simulated devices on this machine, until Ctrl-C. With Mosquitto installed, a
# broker and a simulated Tasmota plug join in, through the gateway's MQTT adapter.
#
#   ./scripts/demo.sh                          cloud on 127.0.0.1:8080
#   FLATLINK_DEMO_PORT=9090 ./scripts/demo.sh  another port
#   FLATLINK_DEMO_MQTT_PORT=1885 ...           another port for the broker (default 1884)
#   FLATLINK_DEMO_MQTT=0 ...                   without the broker and the plug
#   BUILD_DIR=/tmp/b ./scripts/demo.sh         another build folder
#   FLATLINK_DEMO_SKIP_BUILD=1 FLATLINK_BUILD_DIR=/tmp/b ./scripts/demo.sh
#                                              run what /tmp/b already holds: no
#                                              install, no build (the test suite)
#
# The cloud serves the dashboard from cloud-server/dashboard/ (its built-in default).
# Configuration: config/examples/demo-cloud.json and demo-gateway.json, or
# demo-gateway-mqtt.json with the plug (the gateway's token is in
# config/examples/gateway-token.txt).
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
gateway_mqtt_config="$examples/demo-gateway-mqtt.json"

for f in "$cloud_bin" "$gateway_bin"; do
  [[ -x "$f" ]] || fail "$f was not built"
done
for f in "$cloud_config" "$gateway_config" "$token_file"; do
  [[ -f "$f" ]] || fail "$f is missing"
done

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= 65535)); }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

default_port=8080
port="${FLATLINK_DEMO_PORT:-$default_port}"
is_port "$port" || fail "FLATLINK_DEMO_PORT must be a TCP port number (1-65535), got '$port'"
if listening "$port"; then
  fail "something already listens on 127.0.0.1:$port; stop it or choose another port: FLATLINK_DEMO_PORT=9090 $0"
fi

# The MQTT part (a Mosquitto broker and a simulated Tasmota plug, reached through the
# gateway's MQTT adapter) runs when Mosquitto's programs are installed and this build
# has the MQTT adapter. FLATLINK_DEMO_MQTT=0 leaves it out.
default_mqtt_port=1884
mqtt_port="${FLATLINK_DEMO_MQTT_PORT:-$default_mqtt_port}"
is_port "$mqtt_port" || fail "FLATLINK_DEMO_MQTT_PORT must be a TCP port number (1-65535), got '$mqtt_port'"
mosquitto_bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
mqtt=""
if [[ "${FLATLINK_DEMO_MQTT:-1}" == 0 ]]; then
  echo "demo: MQTT part off (FLATLINK_DEMO_MQTT=0)"
elif [[ ! -x "$mosquitto_bin" ]] || ! command -v mosquitto_pub >/dev/null || ! command -v mosquitto_sub >/dev/null; then
  echo "demo: no Mosquitto (packages mosquitto, mosquitto-clients): running without the MQTT plug"
elif ! "$gateway_bin" --config "$gateway_mqtt_config" --check-config >/dev/null 2>&1; then
  echo "demo: this flatlinkd has no MQTT adapter: running without the MQTT plug"
elif listening "$mqtt_port"; then
  echo "demo: something already listens on 127.0.0.1:$mqtt_port: running without the MQTT plug" \
    "(another port: FLATLINK_DEMO_MQTT_PORT=1885)"
else
  mqtt=1
  gateway_config="$gateway_mqtt_config"
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/flatlink-demo.XXXXXX")"
cleanup() { rm -rf "$workdir"; }
trap cleanup EXIT

# The token is a secret: the gateway warns about a token file others may read.
# (Git keeps no read permissions, so a fresh clone has it world-readable.)
chmod 600 "$token_file" 2>/dev/null || true

if [[ "$port" != "$default_port" || ("$mqtt" && "$mqtt_port" != "$default_mqtt_port") ]]; then
  # Same demo on other ports: copies of the examples with the ports rewritten,
  # and a state folder of its own, so that it can run beside the default demo.
  sed -E -e "s/(\"port\"[[:space:]]*:[[:space:]]*)[0-9]+/\1$port/" \
    -e "s#(\"path\"[[:space:]]*:[[:space:]]*)\"[^\"]*\"#\1\"cloud.db\"#" \
    "$cloud_config" >"$workdir/demo-cloud.json"
  sed -E -e "s#(\"wss?://[^/\":]+):[0-9]+#\1:$port#" \
    -e "s#(\"port\"[[:space:]]*:[[:space:]]*)$default_mqtt_port\b#\1$mqtt_port#" \
    -e "s#(\"state_dir\"[[:space:]]*:[[:space:]]*)\"[^\"]*\"#\1\"state\"#" \
    "$gateway_config" >"$workdir/demo-gateway.json"
  install -m 600 "$token_file" "$workdir/$(basename "$token_file")"
  grep -Eq "\"port\"[[:space:]]*:[[:space:]]*$port\b" "$workdir/demo-cloud.json" ||
    fail "could not set the port in a copy of $cloud_config"
  grep -Eq "\"wss?://[^/\":]+:$port[/\"]" "$workdir/demo-gateway.json" ||
    fail "could not set the port in the cloud URL of a copy of $gateway_config"
  if [[ "$mqtt" ]]; then
    grep -Eq "\"port\"[[:space:]]*:[[:space:]]*$mqtt_port\b" "$workdir/demo-gateway.json" ||
      fail "could not set the MQTT port in a copy of $gateway_config"
  fi
  # Relative paths in the copies (token_file, state_dir) resolve against the
  # copies' folder, which is removed when the demo ends.
  cloud_config="$workdir/demo-cloud.json"
  gateway_config="$workdir/demo-gateway.json"
fi

# The processes of the demo, in start order: pids and names.
pids=()
declare -A names=()
started() {
  pids+=("$1")
  names[$1]="$2"
}

# Stops everything, the last started first: SIGTERM, SIGKILL after 10 s. Bash may
# have reaped one already (a Ctrl-C reaches them too); `wait` still gives its code.
stop_all() {
  local i pid code
  ((${#pids[@]})) || return 0
  say "Stopping"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[i]}"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "${names[$pid]} did not stop within 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    code=0
    wait "$pid" 2>/dev/null || code=$?
    echo "${names[$pid]} stopped (exit code $code)"
  done
  pids=()
}

on_signal() {
  trap - INT TERM HUP
  stop_all
  exit 0
}
trap on_signal INT TERM HUP

# Waits until something listens on $1, while process $2 ($3) still runs.
await_port() {
  local code
  for _ in $(seq 100); do
    listening "$1" && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      code=0
      wait "$2" || code=$?
      unset 'pids[-1]'
      stop_all
      fail "$3 exited early (exit code $code)"
    fi
    sleep 0.1
  done
  stop_all
  fail "$3 is not listening on 127.0.0.1:$1 after 10 s"
}

if [[ "$mqtt" ]]; then
  say "Starting Mosquitto on 127.0.0.1:$mqtt_port, and a simulated Tasmota plug"
  cat >"$workdir/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 10000
# Without it a command's round trip through the plug waits ~40 ms for a delayed ACK
# (Nagle's algorithm in the broker); docs/adapters/mqtt.md, "Connection".
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
EOF
  "$mosquitto_bin" -c "$workdir/mosquitto.conf" &
  started $! mosquitto
  await_port "$mqtt_port" $! mosquitto
  "$root/scripts/demo-tasmota-plug.sh" 127.0.0.1 "$mqtt_port" demo-plug &
  started $! "Tasmota plug (simulated)"
fi

say "Starting flatlink-cloud on 127.0.0.1:$port"
"$cloud_bin" --config "$cloud_config" &
started $! flatlink-cloud
cloud_pid=$!
# The gateway would retry until the cloud is up; waiting keeps the log tidy.
await_port "$port" "$cloud_pid" flatlink-cloud

say "Starting flatlinkd (simulated devices${mqtt:+, and the plug over MQTT})"
"$gateway_bin" --config "$gateway_config" &
started $! flatlinkd
gateway_pid=$!

{
  echo
  echo "==> The demo is running"
  for pid in "${pids[@]}"; do printf '    %-26s pid %s\n' "${names[$pid]}" "$pid"; done
  echo "    configuration: $cloud_config, $gateway_config"
  echo
  echo "    Dashboard:  http://127.0.0.1:$port/   (open it in a browser)"
  echo "    Log in:     flat \"flat-a\", user \"demo\", password \"demo\""
  if [[ "$mqtt" ]]; then
    echo "    MQTT:       a Tasmota plug \"demo-plug\" on the broker at 127.0.0.1:$mqtt_port"
    echo "                (watch it: mosquitto_sub -p $mqtt_port -t '+/demo-plug/#' -v)"
  fi
  echo
  echo "    They all log below. Press Ctrl-C to stop them."
  echo
}

# Until Ctrl-C (the trap) or one of them ends by itself.
exited=""
code=0
wait -n -p exited "${pids[@]}" || code=$?
trap - INT TERM HUP
if [[ -n "$exited" ]]; then
  echo
  echo "demo: ${names[$exited]} exited early (exit code $code)" >&2
  for i in "${!pids[@]}"; do
    [[ "${pids[i]}" == "$exited" ]] && unset 'pids[i]'
  done
  pids=("${pids[@]}")
  stop_all
  exit 1
fi
stop_all
