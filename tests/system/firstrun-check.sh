#!/bin/sh
# Runs inside the booted container (flatlink-firstrun.service, tests/system/firstrun.test.mjs):
# a new user's first run after `apt install` of both packages, as docs/operations.md "First
# run" tells it. The operator's cloud.json (TLS, the store) and the gateway's adapters were
# written before the boot; nothing else is. Writes one line per step to /results/checks (`ok
# NAME detail` or `fail NAME detail`), then powers the container off. Bounded: each wait has
# a deadline; the whole run stays under about 120 s.
set -u
. /root/firstrun.env  # PORT, PASSWORD (the test's)
out=/results/checks
: >"$out"
pass() { echo "ok $1 $2" >>"$out"; }
fail() { echo "fail $1 $2" >>"$out"; }
one_line() { tr '\n' '|' | cut -c1-600; }
wait_until() {
  limit=$(( $(date +%s) + $1 )); shift
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$limit" ] && return 1
    sleep 0.2
  done
}
active() { [ "$(systemctl is-active "$1")" = active ]; }
# The admin command as the cloud's own user, so that the store's files stay the service's.
cloud_admin() { runuser -u flatlink-cloud -- flatlink-cloud --config /etc/flatlink/cloud.json admin "$@"; }

finish() {
  [ -e /results/paired ] || echo "not paired: $(grep '^fail' "$out" | head -n 1)" >/results/paired
  journalctl -b --no-pager -o short-monotonic -u flatlinkd -u flatlink-cloud >/results/journal 2>&1
  echo done >>"$out"
  systemctl poweroff --no-block
  exit 0
}

# 1. The cloud, started by the operator.
systemctl enable --now flatlink-cloud >/dev/null 2>&1
if wait_until 30 active flatlink-cloud; then
  pass cloud-active "$(systemctl show -P StatusText flatlink-cloud)"
else
  fail cloud-active "$(systemctl status --no-pager flatlink-cloud 2>&1 | tail -n 15 | one_line)"
  finish
fi

# 2. The operator's flat, its user and a one-time pairing code.
if r=$(cloud_admin flat add flat-n "Flat N" 2>&1) &&
   r=$(printf '%s\n' "$PASSWORD" | cloud_admin user add alice 2>&1) &&
   r=$(cloud_admin member add flat-n alice owner 2>&1); then
  pass accounts "flat-n, alice (owner)"
else
  fail accounts "$(echo "$r" | one_line)"
  finish
fi
# The code alone on standard output; what to do with it on standard error.
if code=$(cloud_admin pair-code flat-n 2>/results/pair-code.err) && echo "$code" | grep -Eqx '[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}'; then
  pass pair-code "$(sed "s/$code/CODE/" /results/pair-code.err | one_line)"
else
  fail pair-code "$(echo "$code" | one_line) $(one_line </results/pair-code.err)"
  finish
fi

# 3. On the Pi: flatlinkd pair writes the flat, the cloud URL and the token, and starts flatlinkd.
if r=$(flatlinkd pair --ca /root/cloud-ca.pem "https://127.0.0.1:$PORT" "$code" 2>&1); then
  pass pair "$(echo "$r" | one_line)"
else
  fail pair "exit $?: $(echo "$r" | one_line)"
  finish
fi
if wait_until 30 active flatlinkd; then
  pass gateway-active "enabled=$(systemctl is-enabled flatlinkd) $(systemctl show -P StatusText flatlinkd)"
else
  fail gateway-active "$(systemctl status --no-pager flatlinkd 2>&1 | tail -n 15 | one_line)"
fi
token=/etc/flatlink/gateway-token.txt
perm=$(stat -c '%a %U' "$token" 2>&1)
[ "$perm" = "600 flatlink" ] && pass token-file "$token $perm" || fail token-file "$token $perm"
linked() { flatlinkd status 2>&1 | grep -q '(flat flat-n): link up'; }
if wait_until 20 linked; then
  pass status "$(flatlinkd status 2>&1 | one_line)"
  echo ok >/results/paired
else
  fail status "$(flatlinkd status 2>&1 | one_line)"
  finish
fi

# 4. Told so by /results/paired, the host logs in as alice and sees the sim devices and their
# statuses through the cloud; it says so in /results/host-done.
if ! wait_until 60 test -e /results/host-done; then
  fail host-checks "the host did not finish within 60 s"
elif grep -q '^FAILED' /results/host-done; then
  fail host-checks "$(cat /results/host-done)"
else
  pass host-checks "$(cat /results/host-done)"
fi
finish
