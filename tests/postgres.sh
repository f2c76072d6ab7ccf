#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, from Debian's postgresql package; never the
# system's cluster on 5432. As root, initdb and the server run as the `postgres` user.
#   tests/postgres.sh available          exit 0 if the server's binaries are installed
#   tests/postgres.sh start DIR PORT     initdb in DIR, listen on 127.0.0.1:PORT (and a socket in DIR)
#   tests/postgres.sh stop DIR           stop it and remove DIR
#   tests/postgres.sh halt DIR           stop the server, keep its data (an outage)
#   tests/postgres.sh resume DIR PORT    start a halted server again
# Connect with "host=127.0.0.1 port=PORT user=flatlink dbname=postgres" (trust, loopback only).
set -euo pipefail

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  available)
    [[ -n "$bin" && -x "$bin/initdb" && -x "$bin/pg_ctl" ]]
    ;;
  start | resume)
    dir="$2" port="$3"
    if [[ "$1" == start ]]; then
      mkdir -p "$dir"
      chmod 700 "$dir"
      if [[ "$(id -u)" == 0 ]]; then chown postgres: "$dir"; fi
      as_pg "$bin/initdb" -D "$dir/data" -A trust -U flatlink >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50" start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    ;;
  halt)
    as_pg "$bin/pg_ctl" -D "$2/data" -m fast -w -t 30 stop >/dev/null
    ;;
  stop)
    dir="$2"
    [[ -d "$dir/data" ]] && as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 available | start DIR PORT | halt DIR | resume DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
