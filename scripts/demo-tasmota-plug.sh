#!/usr/bin/env bash
# A simulated Tasmota smart plug for the demo: speaks Tasmota's MQTT topics with the
# default FullTopic %prefix%/%topic%/ through mosquitto_pub/mosquitto_sub.
#
#   scripts/demo-tasmota-plug.sh HOST PORT [TOPIC]     (TOPIC default: demo-plug)
#
# It announces itself (tele/TOPIC/LWT "Online", retained; the broker publishes
# "Offline" when it goes), answers cmnd/TOPIC/POWER (ON, OFF, TOGGLE), STATE and
# STATUS 10 as a real plug does, and reports its power draw in tele/TOPIC/SENSOR
# every 5 s. Runs until killed.
set -euo pipefail

host="${1:?host}"
port="${2:?port}"
topic="${3:-demo-plug}"
work="$(mktemp -d "${TMPDIR:-/tmp}/flatlink-plug.XXXXXX")"
state_file="$work/power"
echo OFF >"$state_file"
mkfifo "$work/commands"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

pub() { mosquitto_pub -h "$host" -p "$port" -q 1 -t "$1" -m "$2" "${@:3}"; }

# Watts: a lamp on the plug draws about 40 W when on, a trickle when off.
watts() {
  if [[ "$(cat "$state_file")" == ON ]]; then
    printf '%d.%d' $((38 + RANDOM % 5)) $((RANDOM % 10))
  else
    printf '0.%d' $((RANDOM % 5))
  fi
}

# The LWT: retained "Online" now, "Offline" from the broker when this client goes.
mosquitto_sub -h "$host" -p "$port" -q 1 -t "cmnd/$topic/+" -v \
  --will-topic "tele/$topic/LWT" --will-payload Offline --will-retain --will-qos 1 \
  -i "flatlink-demo-plug-$$" >"$work/commands" &
pids+=($!)
while read -r t payload; do
  command="${t##*/}"
  case "${command^^}" in
    POWER | POWER1)
      now="$(cat "$state_file")"
      case "${payload^^}" in
        ON | 1) now=ON ;;
        OFF | 0) now=OFF ;;
        TOGGLE | 2) [[ "$now" == ON ]] && now=OFF || now=ON ;;
        "" | "(NULL)") ;; # mosquitto_sub -v shows an empty payload as (null)
        *) continue ;;
      esac
      echo "$now" >"$state_file"
      pub "stat/$topic/RESULT" "{\"POWER\":\"$now\"}"
      pub "stat/$topic/POWER" "$now"
      ;;
    STATE)
      pub "tele/$topic/STATE" "{\"POWER\":\"$(cat "$state_file")\"}"
      ;;
    STATUS)
      [[ "$payload" == 10 ]] && pub "stat/$topic/STATUS10" "{\"StatusSNS\":{\"ENERGY\":{\"Power\":$(watts)}}}"
      ;;
  esac
done <"$work/commands" &
pids+=($!)

sleep 0.3
pub "tele/$topic/LWT" Online -r
while true; do
  pub "tele/$topic/SENSOR" "{\"ENERGY\":{\"Power\":$(watts)}}"
  sleep 5 &
  wait $! || true
done
