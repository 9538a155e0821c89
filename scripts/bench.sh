#!/usr/bin/env bash
# `make bench`: how fast snap2dsql loads, beside the limit and beside the Glue job's way, and how
# much memory it takes. Prints figures; it is not a test (`make test` never runs it).
#
# One throwaway PostgreSQL (scripts/pg.sh, 127.0.0.1) holds the source and one target database
# per contender, each made from the plan's ddl.sql (primary keys only: the secondary indexes of
# ddl-post-load.sql are not built, no guard triggers). Contenders, one after the other:
#   limit      the rows snap2dsql converted, dumped once with COPY (FORMAT binary), split into
#              COPY_ROWS-row files, sent by one psql session with one `\copy` per file (each its
#              own transaction): the server's own speed at DSQL-sized binary COPY transactions.
#   glue       the same rows as batched INSERTs, GLUE_BATCH rows per executemany + COMMIT
#              (psycopg 3; what Spark's JDBC writer does), one connection.
#   snap2dsql  `snap2dsql load --mapping` from the export through the DSQL stand-in (DSQL dialect,
#              no injected conflicts or latency), with its defaults (or LOAD_FLAGS).
#   (info)     the limit's files again over LIMIT_SESSIONS concurrent psql sessions: what the
#              server takes from several writers, as snap2dsql uses (4 per chunk, 2 chunks).
# Then the memory of one large part file against a small one of the same shape (BIG_FILE=1).
#
# Sizes: ORDERS (2,000,000), CUSTOMERS (100,000), ROWS_PER_FILE (1,000,000),
#        BIG_ROWS (1,400,000 rows of ~1 KiB random base64: a ~1 GiB part file), SMALL_ROWS (10,000).
# Knobs: LOAD_FLAGS (extra `snap2dsql load` flags, e.g. "--concurrency 2 --parallel-chunks 1"),
#        COPY_ROWS (3,000), GLUE_BATCH (2,500), BIG_FILE (1; 0 skips the file-size case),
#        MID_ROWS (200,000: a third file, same row-group size as the big one, far smaller),
#        LIMIT_SESSIONS (4: the limit's files also sent by this many concurrent psql sessions,
#        shown for information; 1 skips it),
#        SKIP_GLUE (0; 1 skips the slow Glue-style contender), KEEP=1 keeps the scratch directory,
#        BENCH_WORK (.work/bench: the scratch directory, emptied first; one run at a time each),
#        ROUNDS (3: each contender loads this many times into its emptied tables; the best
#        round counts, every round is printed: the machine may be shared), GLUE_ROUNDS (ROUNDS).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_WORK:-$root/.work/bench}   # one run at a time per directory
bin=${CARGO_TARGET_DIR:-$root/target}/release/snap2dsql
py=$root/.venv/bin/python
orders=${ORDERS:-2000000}
customers=${CUSTOMERS:-100000}
rows_per_file=${ROWS_PER_FILE:-1000000}
copy_rows=${COPY_ROWS:-3000}
glue_batch=${GLUE_BATCH:-2500}
big_file=${BIG_FILE:-1}
big_rows=${BIG_ROWS:-1400000}
small_rows=${SMALL_ROWS:-10000}
skip_glue=${SKIP_GLUE:-0}
limit_sessions=${LIMIT_SESSIONS:-4}
rounds=${ROUNDS:-3}
glue_rounds=${GLUE_ROUNDS:-$rounds}
mid_rows=${MID_ROWS:-200000}
read -r -a load_flags <<< "${LOAD_FLAGS:-}"

bash "$root/scripts/bench/deps.sh"
[ -x "$bin" ] || { echo "no release build at $bin: run make build" >&2; exit 1; }

"$root/scripts/pg.sh" remove "$work/pg" >/dev/null 2>&1 || true
rm -rf "$work"
mkdir -p "$work"
port=$("$root/scripts/pg.sh" start "$work/pg")
# At the end the server stops, and its data and the files go unless KEEP=1 (scripts/bench/sweep.sh
# reuses them).
standin_pid=
trap '[ -z "$standin_pid" ] || kill "$standin_pid" 2>/dev/null; "$root/scripts/pg.sh" stop "$work/pg"; [ "${KEEP:-0}" = 1 ] || { "$root/scripts/pg.sh" remove "$work/pg"; rm -rf "$work"; }' EXIT
psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" >/dev/null
url() { echo "postgres://postgres@127.0.0.1:$port/$1"; }
# snap2dsql loads through the DSQL stand-in in the DSQL dialect, as everywhere (DSQL's limits,
# no injected conflicts, no added latency: the server's speed is what is compared); the limit
# and Glue-style contenders write to the same PostgreSQL directly.
# shellcheck source=scripts/standin.sh
source "$root/scripts/standin.sh"
start_standin "$bin" "$port" "$work"
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
now() { date +%s.%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# CPU seconds the server's finished sessions used: the postmaster's reaped children (cutime +
# cstime, /proc/PID/stat), read after the contender's sessions ended. Load-independent where
# wall time is not (the machine may be shared). Background processes (checkpointer, WAL writer)
# are not counted; autovacuum is off for the benchmark so that no worker lands in a window.
clk=$(getconf CLK_TCK)
server_cpu() {
  sleep 0.3   # let the postmaster reap the sessions that just closed
  local pm
  pm=$(head -n1 "$(cat "$work/pg/datadir")/data/postmaster.pid")
  awk -v clk="$clk" '{sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13 + $14 + $15) / clk}' "/proc/$pm/stat"
}
# user + system seconds from a `/usr/bin/time` output file (-v, or -f '%U %S').
time_cpu() { awk -F': ' '/User time|System time/ {t += $2} /^[0-9.]+ [0-9.]+$/ {split($0, a, " "); t += a[1] + a[2]} END {printf "%.2f", t}' "$@"; }
# Peak RSS in KiB from a `/usr/bin/time -v` output file.
rss_kib() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
declare -A secs rows

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load average $(loadavg)," \
  "PostgreSQL $(psql --version | awk '{print $3}') on 127.0.0.1:$port (fsync=off), snap2dsql $("$bin" --version | awk '{print $2}')"

echo "== source: storefront with $customers customers and $orders orders"
t0=$(now)
psql_ -d postgres -c "CREATE DATABASE storefront"
psql_ -d storefront -v customers="$customers" -v orders="$orders" -f "$root/scripts/storefront.sql" >/dev/null
"$bin" local-export --source "$(url storefront)" --out "$work/export" --export-id storefront-bench \
  --rows-per-file "$rows_per_file" --rows-per-row-group 100000 >"$work/export.log" 2>&1
"$bin" plan --source-schema "$(url storefront)" --export "$work/export" --out "$work/plan" >/dev/null
echo "   export: $(find "$work/export" -name '*.parquet' | wc -l) part files, $(du -sh "$work/export" | cut -f1);" \
  "built in $(printf %.0f "$(echo "$(now) - $t0" | bc)") s"

# The target tables: one database per contender, same DDL (ddl.sql: tables and primary keys).
for db in t_snap t_copy t_copyn t_glue; do
  psql_ -d postgres -c "CREATE DATABASE $db"
  psql_ -d "$db" -f "$work/plan/ddl.sql" >/dev/null
done
# schema.table and its columns in order, from the target's catalog (the plan's DDL made them).
mapfile -t tables < <(psql_ -d t_snap -At -c "
  SELECT table_schema || '.' || table_name || ':' || string_agg(column_name, ',' ORDER BY ordinal_position)
  FROM information_schema.columns
  WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'snap2dsql')
  GROUP BY table_schema, table_name ORDER BY 1")
qcols() { echo "\"${1//,/\", \"}\""; }   # a,b -> "a", "b"
qname() { echo "\"${1%%.*}\".\"${1#*.}\""; }
count_rows() {
  local n=0 spec
  for spec in "${tables[@]}"; do
    n=$((n + $(psql_ -d "$1" -At -c "SELECT count(*) FROM $(qname "${spec%%:*}")")))
  done
  echo "$n"
}
expected=$((orders + customers))
empty() {   # db: the contender's tables emptied (TRUNCATE: fresh storage, same DDL)
  local list=() spec
  for spec in "${tables[@]}"; do list+=("$(qname "${spec%%:*}")"); done
  psql_ -d "$1" -c "TRUNCATE $(IFS=,; echo "${list[*]}")"
}
declare -A all scpu ccpu
record() {   # contender seconds server_cpu client_cpu: remembers every round, keeps the best
  all[$1]+="$(printf %.2f "$2") "
  if [ -z "${secs[$1]:-}" ] || [ "$(echo "$2 < ${secs[$1]}" | bc)" = 1 ]; then
    secs[$1]=$2 scpu[$1]=$3 ccpu[$1]=$4
  fi
}

echo "== snap2dsql load (release build${LOAD_FLAGS:+, $LOAD_FLAGS}) -> t_snap   [load average $(loadavg)]"
snap_rss=0
for ((r = 1; r <= rounds; r++)); do
  empty t_snap
  psql_ -d t_snap -c "TRUNCATE snap2dsql.ledger" 2>/dev/null || true   # absent before the first load
  psql_ -d postgres -c CHECKPOINT
  c0=$(server_cpu) t0=$(now)
  /usr/bin/time -v -o "$work/snap.time" "$bin" load --export "$work/export" --mapping "$work/plan/mapping.toml" \
    --target "$(standin_db t_snap)" --report "$work/snap-report.json" "${load_flags[@]}" > "$work/snap.out"
  t1=$(now)
  record snap "$(echo "$t1 - $t0" | bc)" "$(echo "$(server_cpu) - $c0" | bc)" "$(time_cpu "$work/snap.time")"
  rss=$(rss_kib "$work/snap.time")
  [ "$rss" -gt "$snap_rss" ] && snap_rss=$rss
done
rows[snap]=$(count_rows t_snap)
load_phase=$("$py" -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["rows_per_second"]))' "$work/snap-report.json")
echo "   ${rows[snap]} rows; seconds per round: ${all[snap]}(best $(printf %.2f "${secs[snap]}")); last round: its own load-phase rate ${load_phase} rows/s," \
  "CPU user $(awk -F': ' '/User time/ {print $2}' "$work/snap.time") s, system $(awk -F': ' '/System time/ {print $2}' "$work/snap.time") s"

echo "== limit: the converted rows, $copy_rows-row binary COPY files, one psql session of \\copy -> t_copy"
mkdir -p "$work/copy"
: > "$work/copy/load.sql"
for spec in "${tables[@]}"; do
  name=${spec%%:*} cols=${spec#*:}
  psql_ -d t_snap -c "COPY (SELECT $(qcols "$cols") FROM $(qname "$name")) TO STDOUT (FORMAT binary)" > "$work/copy/$name.all"
  read -r n files < <("$py" "$root/scripts/bench/copy_split.py" "$work/copy/$name.all" "$work/copy/$name" "$copy_rows")
  rm "$work/copy/$name.all"
  echo "   $name: $n rows in $files files"
  for f in "$work/copy/$name".[0-9]*.bin; do
    echo "\\copy $(qname "$name") ($(qcols "$cols")) FROM '$f' (FORMAT binary)" >> "$work/copy/load.sql"
  done
done
psql_ -d postgres -c CHECKPOINT
for ((r = 1; r <= rounds; r++)); do
  empty t_copy
  psql_ -d postgres -c CHECKPOINT
  c0=$(server_cpu) t0=$(now)
  /usr/bin/time -f '%U %S' -o "$work/copy/psql.time" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres \
    -d t_copy -f "$work/copy/load.sql"
  t1=$(now)
  record limit "$(echo "$t1 - $t0" | bc)" "$(echo "$(server_cpu) - $c0" | bc)" "$(time_cpu "$work/copy/psql.time")"
done
rows[limit]=$(count_rows t_copy)
echo "   ${rows[limit]} rows; seconds per round: ${all[limit]}(best $(printf %.2f "${secs[limit]}"))"

if [ "$limit_sessions" -gt 1 ]; then
  echo "== limit, $limit_sessions sessions: the same files, round-robin over $limit_sessions concurrent psql sessions -> t_copyn"
  for ((k = 0; k < limit_sessions; k++)); do
    awk -v n="$limit_sessions" -v k="$k" 'NR % n == k' "$work/copy/load.sql" > "$work/copy/load-$k.sql"
  done
  for ((r = 1; r <= rounds; r++)); do
    empty t_copyn
    psql_ -d postgres -c CHECKPOINT
    c0=$(server_cpu) t0=$(now)
    pids=()
    for ((k = 0; k < limit_sessions; k++)); do
      /usr/bin/time -f '%U %S' -o "$work/copy/psql-$k.time" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
        -U postgres -d t_copyn -f "$work/copy/load-$k.sql" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    t1=$(now)
    record limitn "$(echo "$t1 - $t0" | bc)" "$(echo "$(server_cpu) - $c0" | bc)" "$(time_cpu "$work/copy"/psql-*.time)"
  done
  rows[limitn]=$(count_rows t_copyn)
  echo "   ${rows[limitn]} rows; seconds per round: ${all[limitn]}(best $(printf %.2f "${secs[limitn]}"))"
fi

if [ "$skip_glue" != 1 ]; then
  echo "== Glue-style: batched INSERTs, $glue_batch rows per executemany + COMMIT -> t_glue   [load average $(loadavg)]"
  psql_ -d postgres -c CHECKPOINT
  read -r _ secs[glue] glue_all scpu[glue] ccpu[glue] < <("$py" "$root/scripts/bench/glue_insert.py" "$(url t_snap)" "$(url t_glue)" \
    "$glue_batch" "$glue_rounds" "${tables[@]}")
  rows[glue]=$(count_rows t_glue)
  echo "   ${rows[glue]} rows; seconds per round (inserts only): ${glue_all//,/ } (best $(printf %.2f "${secs[glue]}"))"
fi

for c in snap limit limitn glue; do
  if [ -n "${rows[$c]:-}" ] && [ "${rows[$c]}" != "$expected" ]; then
    echo "error: $c loaded ${rows[$c]} rows, expected $expected" >&2
    exit 1
  fi
done

rate() { echo "${rows[$1]} / ${secs[$1]}" | bc -l; }
ratio() { if [ -n "${secs[$2]:-}" ]; then printf '%.2f' "$(echo "$(rate "$1") / $(rate "$2")" | bc -l)"; else echo -; fi; }
verdict() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo met; else echo MISSED; fi; }
echo
echo "== results: $expected rows ($customers customers + $orders orders), best of $rounds rounds each (Glue-style: $glue_rounds), load average now $(loadavg)"
printf '%-30s %9s %8s %9s %9s %8s  %11s %11s %10s\n' contender rows seconds rows/s "vs limit" "vs glue" "server CPU" "client CPU" "rows/CPU-s"
for c in limit limitn glue snap; do
  [ -n "${secs[$c]:-}" ] || continue
  label=$c
  [ "$c" = limitn ] && label="limit, $limit_sessions sessions (info)"
  [ "$c" = limit ] && label="limit (psql \\copy binary)"
  [ "$c" = glue ] && label="Glue-style (INSERT batches)"
  [ "$c" = snap ] && label="snap2dsql load"
  printf '%-30s %9d %8.2f %9.0f %9s %8s  %10.2fs %10.2fs %10.0f\n' "$label" "${rows[$c]}" "${secs[$c]}" "$(rate "$c")" \
    "$(ratio "$c" limit)" "$(ratio "$c" glue)" "${scpu[$c]}" "${ccpu[$c]}" "$(echo "${rows[$c]} / (${scpu[$c]} + ${ccpu[$c]})" | bc -l)"
done
echo "(seconds: wall time of the best round; CPU: user + system seconds of that round, server = the PostgreSQL sessions, client = psql / python / snap2dsql)"
echo "snap2dsql peak RSS: $((snap_rss / 1024)) MiB (highest of the rounds)"
echo "targets: snap2dsql >= 0.8 x limit: $(ratio snap limit) ($(verdict "$(rate snap) >= 0.8 * $(rate limit)"));" \
  "$([ -n "${secs[glue]:-}" ] && echo ">= 5 x Glue-style: $(ratio snap glue) ($(verdict "$(rate snap) >= 5 * $(rate glue)"));")" \
  "peak RSS < 256 MiB: $((snap_rss / 1024)) MiB ($(verdict "$snap_rss < 262144"))"

if [ "$big_file" = 1 ]; then
  echo
  echo "== memory against file size: one part file each, same shape (id, ~1 KiB random text), 100,000-row row groups"
  for size in small mid big; do
    n=$small_rows
    [ "$size" = mid ] && n=$mid_rows
    [ "$size" = big ] && n=$big_rows
    psql_ -d postgres -c "CREATE DATABASE blob_$size" -c "CREATE DATABASE t_blob_$size"
    psql_ -d "blob_$size" -c "CREATE EXTENSION pgcrypto" -c "CREATE SCHEMA bench" \
      -c "CREATE TABLE bench.blob (id bigint PRIMARY KEY, payload text NOT NULL)" \
      -c "INSERT INTO bench.blob SELECT g, encode(gen_random_bytes(768), 'base64') FROM generate_series(1, $n) g"
    "$bin" local-export --source "$(url "blob_$size")" --out "$work/blob-$size" --export-id "blob-$size" \
      --rows-per-file $((n + 1)) --rows-per-row-group 100000 >"$work/blob-$size-export.log" 2>&1
    "$bin" plan --source-schema "$(url "blob_$size")" --export "$work/blob-$size" --out "$work/blob-$size-plan" >/dev/null
    psql_ -d "t_blob_$size" -f "$work/blob-$size-plan/ddl.sql" >/dev/null
    psql_ -d postgres -c "DROP DATABASE blob_$size" -c CHECKPOINT
    t0=$(now)
    /usr/bin/time -v -o "$work/blob-$size.time" "$bin" load --export "$work/blob-$size" \
      --mapping "$work/blob-$size-plan/mapping.toml" --target "$(standin_db "t_blob_$size")" "${load_flags[@]}" >/dev/null
    s=$(echo "$(now) - $t0" | bc)
    files=$(find "$work/blob-$size" -name '*.parquet')
    [ "$(echo "$files" | wc -l)" = 1 ] || { echo "error: expected one part file, got: $files" >&2; exit 1; }
    bytes=$(stat -c %s "$files")
    printf -v "line_$size" '%-6s %10d rows  %8.1f MiB part file  %6.1f s  peak RSS %4d MiB' \
      "$size" "$n" "$(echo "$bytes / 1048576" | bc -l)" "$s" $(($(rss_kib "$work/blob-$size.time") / 1024))
    psql_ -d postgres -c "DROP DATABASE t_blob_$size"
    [ "${KEEP:-0}" = 1 ] || rm -rf "$work/blob-$size"
  done
  echo "$line_small"
  echo "$line_mid"
  echo "$line_big"
  echo "(local part files are read page by page; the peak follows the chunks in flight (--parallel-chunks, 256 MiB of compressed data a chunk) and the COPY batches queued per chunk, not the file size)"
fi
