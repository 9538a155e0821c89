#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the demo and the benchmark: 127.0.0.1, a free port,
# trust auth. As root it runs as the `postgres` user (PostgreSQL refuses root), with its data
# under /tmp (a checkout under /root is not readable by that user); DIR records where.
#   scripts/pg.sh start DIR   -> prints the port
#   scripts/pg.sh stop DIR
#   scripts/pg.sh remove DIR  (stop, then delete the cluster's data)
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?directory}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -n "$bindir" ] || bindir=$(dirname "$(command -v initdb)")
as_pg() { if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/datadir" ] && [ -d "$(cat "$dir/datadir")" ]; then
    data=$(cat "$dir/datadir")
  elif [ "$(id -u)" -eq 0 ]; then
    data=$(mktemp -d /tmp/snap2dsql-pg.XXXXXX)
    chown postgres: "$data"
  else
    data=$dir
  fi
  echo "$data" > "$dir/datadir"
  if [ ! -f "$data/data/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -A trust -U postgres -E UTF8 --locale=C --no-sync -D "$data/data" >/dev/null
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg "$bindir/pg_ctl" -D "$data/data" -l "$data/server.log" -w -s \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB" start
  echo "$port" > "$dir/port"
  echo "$port"
  ;;
stop)
  [ -f "$dir/datadir" ] || exit 0
  data=$(cat "$dir/datadir")
  if [ -f "$data/data/postmaster.pid" ]; then
    as_pg "$bindir/pg_ctl" -D "$data/data" -m fast -w -s stop || true
  fi
  ;;
remove)
  "$0" stop "$dir"
  if [ -f "$dir/datadir" ]; then
    data=$(cat "$dir/datadir")
    if [ "$data" = "$dir" ]; then rm -rf "$dir/data" "$dir/server.log"; else rm -rf "$data"; fi
    rm -f "$dir/datadir"
  fi
  ;;
*) echo "usage: $0 start|stop|remove DIR" >&2; exit 2 ;;
esac
