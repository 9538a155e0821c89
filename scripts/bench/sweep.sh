#!/usr/bin/env bash
# Loader settings side by side, on what `KEEP=1 make bench` left in .work/bench (the export, the
# plan, the PostgreSQL data directory): each argument is one set of `snap2dsql load` flags, loaded
# into a fresh database made from ddl.sql, REPEAT times (default 1). Prints seconds, rows/s and
# peak RSS per run; PERF=1 also records a system-wide perf profile of each run (.work/perf/N.data: outside .work/bench, which make bench empties).
#   scripts/bench/sweep.sh "" "--concurrency 2 --parallel-chunks 1" "--concurrency 8"
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$root/.work/bench
bin=${CARGO_TARGET_DIR:-$root/target}/release/snap2dsql
[ -d "$work/export" ] && [ -f "$work/pg/datadir" ] || { echo "run KEEP=1 make bench first" >&2; exit 1; }
"$root/scripts/pg.sh" stop "$work/pg" >/dev/null 2>&1 || true
port=$("$root/scripts/pg.sh" start "$work/pg")
trap '"$root/scripts/pg.sh" stop "$work/pg"' EXIT
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
now() { date +%s.%N; }
clk=$(getconf CLK_TCK)
server_cpu() {   # CPU seconds of the server's finished sessions (see bench.sh)
  sleep 0.3
  awk -v clk="$clk" '{sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13 + $14 + $15) / clk}' "/proc/$(head -n1 "$(cat "$work/pg/datadir")/data/postmaster.pid")/stat"
}
psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
i=0
printf '%-50s %8s %10s %8s %10s %10s  %s\n' flags seconds rows/s "RSS MiB" "client CPU" "server CPU" "load avg"
for flags in "$@"; do
  read -r -a f <<< "$flags"
  for _ in $(seq "${REPEAT:-1}"); do
    i=$((i + 1))
    psql_ -d postgres -c "DROP DATABASE IF EXISTS t_sweep" -c "CREATE DATABASE t_sweep"
    psql_ -d t_sweep -f "$work/plan/ddl.sql" >/dev/null
    psql_ -d postgres -c CHECKPOINT
    la=$(cut -d' ' -f1 /proc/loadavg)
    perf=()
    if [ "${PERF:-0}" = 1 ]; then
      mkdir -p "$root/.work/perf"
      perf=(perf record -q -a -g -o "$root/.work/perf/$i.data" --)
    fi
    c0=$(server_cpu) t0=$(now)
    "${perf[@]}" /usr/bin/time -v -o "$work/sweep.time" "$bin" load --export "$work/export" \
      --mapping "$work/plan/mapping.toml" --target "postgres://postgres@127.0.0.1:$port/t_sweep" \
      "${f[@]}" > "$work/sweep.out" 2>/dev/null
    s=$(echo "$(now) - $t0" | bc)
    scpu=$(echo "$(server_cpu) - $c0" | bc)
    n=$(psql_ -d t_sweep -At -c "SELECT (SELECT count(*) FROM sales.orders) + (SELECT count(*) FROM sales.customers)")
    cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$work/sweep.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print int($2 / 1024)}' "$work/sweep.time")
    printf '%-50s %8.2f %10.0f %8d %10.2f %10.2f  %s\n' "${flags:-(defaults)}" "$s" "$(echo "$n / $s" | bc -l)" "$rss" "$cpu" "$scpu" "$la"
  done
done
