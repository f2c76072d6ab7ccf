#!/bin/sh
# Runs inside the booted container (flatlink-check.service, tests/system/nspawn.test.mjs):
# checks both flatlink services under the real systemd and their shipped units, writes
# one line per check to /results/checks (`ok NAME detail` or `fail NAME detail`), the
# security scores to /results/security, then powers the container off.
# Bounded: each wait has a deadline; the whole run stays under about 90 s.
set -u
out=/results/checks
: >"$out"
pass() { echo "ok $1 $2" >>"$out"; }
fail() { echo "fail $1 $2" >>"$out"; }
prop() { systemctl show -P "$2" "$1"; }
# wait_until SECONDS COMMAND...: true once COMMAND succeeds, false at the deadline.
wait_until() {
  limit=$(( $(date +%s) + $1 )); shift
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$limit" ] && return 1
    sleep 0.2
  done
}
active() { [ "$(systemctl is-active "$1")" = active ]; }
journal_has() { journalctl -q -b -u "$1" --no-pager -o cat | grep -qi -- "$2"; }

finish() {
  journalctl -b --no-pager -o short-monotonic -u flatlinkd -u flatlink-cloud -u flatlink-fake-serial >/results/journal 2>&1
  echo done >>"$out"
  systemctl poweroff --no-block
  exit 0
}

# 1. Both services reach active through Type=notify (READY=1 from their loops).
for unit in flatlink-cloud flatlinkd; do
  if wait_until 30 active "$unit"; then
    pass "active-$unit" "Type=$(prop "$unit" Type) $(prop "$unit" ActiveState)/$(prop "$unit" SubState) status=\"$(prop "$unit" StatusText)\""
  else
    fail "active-$unit" "$(systemctl status --no-pager "$unit" 2>&1 | tail -n 15 | tr '\n' '|')"
  fi
done
[ "$(prop flatlinkd Type)" = notify ] && [ "$(prop flatlink-cloud Type)" = notify ] && pass type-notify "both Type=notify" || fail type-notify "not notify"

# 2. The host checks through the cloud (serial device status from the pty, an ALSA capture
# stream) while the daemons run undisturbed; it says so in /results/host-done.
if ! wait_until 60 test -e /results/host-done; then
  fail host-checks "the host did not finish within 60 s"
elif grep -q '^FAILED' /results/host-done; then
  fail host-checks "$(cat /results/host-done)"
else
  pass host-checks "$(cat /results/host-done)"
fi

# 3. The watchdog restarts a frozen daemon: SIGSTOP its main process (the loop stops
# pinging), systemd kills it after WatchdogSec and starts it again.
pid=$(prop flatlinkd MainPID)
restarts=$(prop flatlinkd NRestarts)
kill -STOP "$pid"
restarted() { [ "$(prop flatlinkd NRestarts)" -gt "$restarts" ] && active flatlinkd && [ "$(prop flatlinkd MainPID)" != "$pid" ]; }
if wait_until 40 restarted; then
  pass watchdog "pid $pid frozen; restarted as $(prop flatlinkd MainPID), NRestarts $restarts -> $(prop flatlinkd NRestarts), WatchdogUSec=$(prop flatlinkd WatchdogUSec)"
else
  fail watchdog "NRestarts $(prop flatlinkd NRestarts), state $(prop flatlinkd ActiveState)"
fi
journal_has flatlinkd 'Watchdog timeout' && pass watchdog-journal "systemd logged the watchdog timeout" || fail watchdog-journal "no 'Watchdog timeout' in the journal"

# 4. systemctl reload applies a change (ExecReload= sends SIGHUP; the daemon says RELOADING=1).
sed -i 's/"log_level": "info"/"log_level": "debug"/' /etc/flatlink/gateway.json
if systemctl reload flatlinkd && wait_until 10 journal_has flatlinkd 'reload applied: log_level debug'; then
  pass reload "gateway: reload applied: log_level debug, still $(systemctl is-active flatlinkd)"
else
  fail reload "$(journalctl -b -u flatlinkd -n 5 --no-pager -o cat | tr '\n' '|')"
fi
sed -i 's/"log_level": "info"/"log_level": "warn"/' /etc/flatlink/cloud.json
if systemctl reload flatlink-cloud && wait_until 10 journal_has flatlink-cloud 'reload applied: log_level warn'; then
  pass reload-cloud "cloud: reload applied: log_level warn"
else
  fail reload-cloud "$(journalctl -b -u flatlink-cloud -n 5 --no-pager -o cat | tr '\n' '|')"
fi

# 5. The sandbox as the running systemd sees it.
systemd-analyze security --no-pager flatlinkd.service flatlink-cloud.service >/results/security 2>&1
for unit in flatlinkd flatlink-cloud; do
  systemd-analyze security --no-pager "$unit.service" 2>&1 | grep 'Overall exposure level' >>/results/security-summary
done
pass security "$(tr '\n' ' ' </results/security-summary)"
finish
