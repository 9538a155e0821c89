#!/usr/bin/env bash
# `make bench`, second part: the loader against DSQL's commit latency, through the DSQL stand-in
# (`snap2dsql standin --commit-latency-ms 50`, DSQL's median) in the DSQL dialect. Prints
# figures; asserts nothing.
#
#   1. rows/s of `snap2dsql load --concurrency N --parallel-chunks 1` for N in CONNECTIONS, beside
#      the bound a latency sets: N connections x rows per batch / commit latency (each connection
#      commits one batch per latency at best). Goal: at least 0.8 of the bound until a CPU
#      saturates; the machine's CPU use during each load says when one does.
#   2. each load format (--load-format binary, text, insert) at FORMAT_CONNECTIONS connections:
#      rows/s and client CPU (user + system of the snap2dsql process) per row.
#
# Every load starts from empty tables (dropped upstream, created by `load --create-tables`).
# rows/s is the load phase's own (the report's rows_per_second, table creation excluded); client
# CPU is the whole `snap2dsql load` process (getrusage via /usr/bin/time).
#
# Sizes: ORDERS (500,000), CUSTOMERS (2,000). Knobs: CONNECTIONS ("1 4 16 64"), FORMATS ("binary
# text insert"), FORMAT_CONNECTIONS (16), COMMIT_LATENCY_MS (50), BATCH_ROWS (the loader's default,
# 2,500), BENCH_WORK (.work/bench-connections, emptied first), KEEP=1 keeps it, SNAP2DSQL_BIN (the
# release build).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${BENCH_WORK:-$root/.work/bench-connections}
bin=${SNAP2DSQL_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/snap2dsql}
orders=${ORDERS:-500000}
customers=${CUSTOMERS:-2000}
latency_ms=${COMMIT_LATENCY_MS:-50}
batch_rows=${BATCH_ROWS:-2500}
read -r -a connections <<< "${CONNECTIONS:-1 4 16 64}"
read -r -a formats <<< "${FORMATS:-binary text insert}"
format_connections=${FORMAT_CONNECTIONS:-16}

[ -x "$bin" ] || { echo "no release build at $bin: run make build-release" >&2; exit 1; }
"$root/scripts/pg.sh" remove "$work/pg" >/dev/null 2>&1 || true
rm -rf "$work"
mkdir -p "$work"
port=$("$root/scripts/pg.sh" start "$work/pg")
standin_pid=
cleanup() {
  [ -z "$standin_pid" ] || kill "$standin_pid" 2>/dev/null || true
  "$root/scripts/pg.sh" stop "$work/pg"
  [ "${KEEP:-0}" = 1 ] || { "$root/scripts/pg.sh" remove "$work/pg"; rm -rf "$work"; }
}
trap cleanup EXIT
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
psql_ -d postgres -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
clk=$(getconf CLK_TCK)
# Busy and total jiffies of all cores (/proc/stat's first line).
cpu_jiffies() { awk '/^cpu / {busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6}' /proc/stat; }
# user + system seconds of a process (/proc/PID/stat fields 14 and 15).
proc_cpu() { awk -v clk="$clk" '{sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / clk}' "/proc/$1/stat"; }

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $(psql --version | awk '{print $3}')" \
  "on 127.0.0.1:$port (fsync=off), snap2dsql $("$bin" --version | awk '{print $2}')"
echo "== source: storefront with $customers customers and $orders orders"
psql_ -d postgres -c "CREATE DATABASE storefront" -c "CREATE DATABASE target"
psql_ -d storefront -v customers="$customers" -v orders="$orders" -f "$root/scripts/storefront.sql" >/dev/null
# One part file a table, one chunk a table: --parallel-chunks 1 loads one table at a time with
# exactly N writers.
"$bin" local-export --source "postgres://postgres@127.0.0.1:$port/storefront" --out "$work/export" \
  --export-id storefront-bench --rows-per-file $((orders + customers + 1)) --rows-per-row-group 100000 \
  >"$work/export.log" 2>&1
"$bin" plan --source-schema "postgres://postgres@127.0.0.1:$port/storefront" --export "$work/export" \
  --out "$work/plan" >/dev/null
schemas=$(awk -F'"' '/^target_schema/ {print $2}' "$work/plan/mapping.toml" | sort -u)

# shellcheck source=scripts/standin.sh
source "$root/scripts/standin.sh"
start_standin "$bin" "$port" "$work" --commit-latency-ms "$latency_ms" --connection-rate off
dst=$standin_url
dst=${dst%/postgres}/target
echo "== target: the DSQL stand-in ($dst), ${latency_ms} ms a COMMIT, in front of the same server"

# One load from empty tables; sets rps, cpu_us (client CPU µs a row), busy (machine CPU %),
# standin_cpu (the stand-in's CPU seconds), format.
load() {   # connections load_format
  local n=$1 fmt=$2 s
  for s in $schemas snap2dsql; do psql_ -d target -c "DROP SCHEMA IF EXISTS \"$s\" CASCADE" 2>/dev/null; done
  local sc0 j0 j1
  sc0=$(proc_cpu "$standin_pid")
  read -r -a j0 <<< "$(cpu_jiffies)"
  /usr/bin/time -f '%e %U %S' -o "$work/load.time" "$bin" load --export "$work/export" \
    --mapping "$work/plan/mapping.toml" --target "$dst" --create-tables --concurrency "$n" \
    --parallel-chunks 1 --batch-rows "$batch_rows" --load-format "$fmt" \
    --report "$work/load.json" > "$work/load-$n-$fmt.out" 2> "$work/load-$n-$fmt.log"
  read -r -a j1 <<< "$(cpu_jiffies)"
  read -r _ user sys < "$work/load.time"
  read -r rps written format < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["rows_per_second"], sum(t["rows_written"] for t in r["tables"]), r["load_format"]["format"])' "$work/load.json")
  [ "$written" = $((orders + customers)) ] || { echo "error: $written rows written, expected $((orders + customers))" >&2; exit 1; }
  cpu_us=$(echo "($user + $sys) * 1000000 / $written" | bc -l)
  busy=$(echo "100 * (${j1[0]} - ${j0[0]}) / (${j1[1]} - ${j0[1]})" | bc -l)
  standin_cpu=$(echo "$(proc_cpu "$standin_pid") - $sc0" | bc -l)
}

echo
echo "== rows/s against the bound: N connections x $batch_rows rows a batch / ${latency_ms} ms (binary COPY, --parallel-chunks 1)"
printf '%12s %10s %12s %7s %14s %12s %14s\n' connections rows/s bound ratio "client µs/row" "machine CPU" "stand-in CPU"
for n in "${connections[@]}"; do
  load "$n" binary
  bound=$(echo "$n * $batch_rows * 1000 / $latency_ms" | bc -l)
  printf '%12d %10.0f %12.0f %7.2f %14.2f %11.0f%% %13.2fs\n' "$n" "$rps" "$bound" "$(echo "$rps / $bound" | bc -l)" \
    "$cpu_us" "$busy" "$standin_cpu"
done
echo "(machine CPU: all $(nproc) cores busy during the load, everything on the machine included: snap2dsql, the stand-in, PostgreSQL, other tenants)"

echo
echo "== each load format at $format_connections connections"
printf '%-8s %-8s %10s %14s %12s\n' asked used rows/s "client µs/row" "machine CPU"
for fmt in "${formats[@]}"; do
  load "$format_connections" "$fmt"
  printf '%-8s %-8s %10.0f %14.2f %11.0f%%\n' "$fmt" "$format" "$rps" "$cpu_us" "$busy"
done
