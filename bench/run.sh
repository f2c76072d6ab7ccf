#!/bin/sh
# One command for every benchmark: bench/run.sh [--smoke] [options of bench/run.mjs]
# The soak (link drops under steady load, growth bounds): bench/run.sh soak [options of
# bench/soak.mjs], e.g. bench/run.sh soak --seconds 1800.
# bench/run.sh --audio [--smoke] [--seconds S]: the audio stream benchmark (bench/audio.mjs).
# bench/run.sh --backplane [--smoke] [options of bench/backplane.mjs]: cloud instances over an
# MQTT broker against one instance (bench/backplane.mjs).
# bench/run.sh --faults [--smoke] [options of bench/faults.mjs]: broker and instance faults across
# three cloud instances, statuses and commands counted at every browser and at the device
# (bench/faults.mjs).
# bench/run.sh --mqtt-command [--smoke] [--commands N]: a command's round trip through a Tasmota
# plug with Mosquitto's set_tcp_nodelay true against its default false (bench/mqtt_command.mjs).
# bench/run.sh --history [--smoke] [options of bench/history.mjs]: the cloud's history in the
# store, SQLite beside PostgreSQL, the drain with history on beside off, and the cloud's idle
# memory without a store, with SQLite and with PostgreSQL (--rss-only: that alone) (bench/history.mjs).
# bench/run.sh --gateway-memory: flatlinkd's idle RSS with the demo configuration beside an idle
# Mosquitto broker, and each mapped library's share (bench/gateway_memory.mjs).
# bench/run.sh --instances [--links N] [--clouds K] [--broker nats|mosquitto] [--no-storm]:
# N idle gateway links over K cloud instances on the backplane (default 100,000 over 6 on a
# 3-node nats-server cluster), then every instance killed and restarted (bench/instances.mjs).
# Installs the bench's peers from npm when missing (Node-RED 4, pinned in
# bench/package-lock.json; not needed by --smoke), then runs bench/run.mjs.
# Binaries from $FLATLINK_BUILD_DIR (default: <repo>/build).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
export FLATLINK_BUILD_DIR="${FLATLINK_BUILD_DIR:-$repo/build}"
if [ ! -d "$repo/tests/integration/node_modules/ws" ]; then
  (cd "$repo/tests/integration" && npm ci --no-audit --no-fund)
fi
if [ "${1:-}" = soak ]; then
  shift
  exec node "$here/soak.mjs" "$@"
fi
case " $* " in
  *" --audio "*)
    shift_args=""
    for a in "$@"; do [ "$a" = "--audio" ] || shift_args="$shift_args $a"; done
    # shellcheck disable=SC2086
    exec node "$here/audio.mjs" $shift_args ;;
esac
case " $* " in
  *" --backplane "*)
    shift_args=""
    for a in "$@"; do [ "$a" = "--backplane" ] || shift_args="$shift_args $a"; done
    # shellcheck disable=SC2086
    exec node "$here/backplane.mjs" $shift_args ;;
esac
case " $* " in
  *" --faults "*)
    shift_args=""
    for a in "$@"; do [ "$a" = "--faults" ] || shift_args="$shift_args $a"; done
    # shellcheck disable=SC2086
    exec node "$here/faults.mjs" $shift_args ;;
esac
case " $* " in
  *" --mqtt-command "*)
    shift_args=""
    for a in "$@"; do [ "$a" = "--mqtt-command" ] || shift_args="$shift_args $a"; done
    # shellcheck disable=SC2086
    exec node "$here/mqtt_command.mjs" $shift_args ;;
esac
case " $* " in
  *" --history "*)
    shift_args=""
    for a in "$@"; do [ "$a" = "--history" ] || shift_args="$shift_args $a"; done
    # shellcheck disable=SC2086
    exec node "$here/history.mjs" $shift_args ;;
esac
case " $* " in
  *" --instances "*)
    shift_args=""
    for a in "$@"; do [ "$a" = "--instances" ] || shift_args="$shift_args $a"; done
    # shellcheck disable=SC2086
    exec node "$here/instances.mjs" $shift_args ;;
esac
case " $* " in
  *" --gateway-memory "*) exec node "$here/gateway_memory.mjs" ;;
esac
case " $* " in
  *" --smoke "*|*" --no-nodered "*) ;;
  *) [ -f "$here/node_modules/node-red/red.js" ] || (cd "$here" && npm ci --no-audit --no-fund) ;;
esac
exec node "$here/run.mjs" "$@"
