#!/usr/bin/env bash
# `make demo`: the seed's storefront migration rehearsed locally, end to end, no AWS account.
# A throwaway PostgreSQL holds the source database; the target is the DSQL stand-in
# (`snap2dsql standin`) in front of the same server's `postgres` database: it answers like Aurora
# DSQL (its limits, its refusals, CREATE INDEX ASYNC and sys.jobs, optimistic conflicts at COMMIT),
# so the tool speaks the DSQL dialect to it as to a real cluster.
# Sizes: CUSTOMERS, ORDERS (default 10,000 and 100,000).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/.work/demo
bin=${SNAP2DSQL_BIN:-${CARGO_TARGET_DIR:-$root/target}/${PROFILE_DIR:-debug}/snap2dsql}
customers=${CUSTOMERS:-10000}
orders=${ORDERS:-100000}

"$root/scripts/pg.sh" remove "$work/pg" >/dev/null 2>&1 || true
rm -rf "$work"
mkdir -p "$work"
port=$("$root/scripts/pg.sh" start "$work/pg")
standin_pid=
cleanup() {
  [ -z "$standin_pid" ] || kill "$standin_pid" 2>/dev/null || true
  "$root/scripts/pg.sh" remove "$work/pg"
}
trap cleanup EXIT
src="postgres://postgres@127.0.0.1:$port/storefront"
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }

# The DSQL stand-in, with DSQL's limits (3,000 rows, 10 MiB, 300 s a transaction; connection
# count, rate and age), 5% of commits failed with an injected optimistic conflict (40001 OC000)
# and a 20 ms commit latency. It prints the URL to connect to.
# shellcheck source=scripts/standin.sh
source "$root/scripts/standin.sh"
start_standin "$bin" "$port" "$work" --inject-conflicts 0.05 --commit-latency-ms 20
dst=$standin_url

echo "== 1. the source: storefront with $customers customers and $orders orders (PostgreSQL on 127.0.0.1:$port)"
psql_ -d postgres -c "CREATE DATABASE storefront"
psql_ -d storefront -v customers="$customers" -v orders="$orders" -f "$root/scripts/storefront.sql" >/dev/null
# The schema as a DBA would hand it over: a pg_dump --schema-only file.
pg_dump -h 127.0.0.1 -p "$port" -U postgres --schema-only storefront > "$work/storefront-schema.sql"
# One orphan order, as real databases have (a foreign key dropped long ago): its fate is the
# user's choice (on_orphan in mapping.toml), never a silent drop.
psql_ -d storefront -c "ALTER TABLE sales.orders DROP CONSTRAINT orders_customer_id_fkey" \
      -c "UPDATE sales.orders SET customer_id = customer_id + 1000000000 WHERE id = 7"

echo "== 2. snapshot export, rehearsed: snap2dsql local-export"
"$bin" local-export --source "$src" --out "$work/export" --export-id storefront-demo \
  --rows-per-file 40000 --rows-per-row-group 10000

echo
echo "== 3. plan: snap2dsql plan (constraints from the pg_dump --schema-only file)"
"$bin" plan --export "$work/export" --source-schema "$work/storefront-schema.sql" --out "$work/plan"
echo "-- ddl.sql:"; cat "$work/plan/ddl.sql"
echo "-- ddl-post-load.sql:"; cat "$work/plan/ddl-post-load.sql"
# The reviewer's decision for the orphan order: load it with a NULL customer, and report it.
sed -i 's/^on_orphan = "fail"/on_orphan = "null"/' "$work/plan/mapping.toml"

echo
echo "== 4. run: load into the DSQL stand-in ($dst), 5% of commits failing with an optimistic conflict"
"$bin" run --export "$work/export" --mapping "$work/plan/mapping.toml" --target "$dst" \
  --create-tables --report "$work/report.json"

echo
echo "== 5. rerun: the ledger makes it a no-op"
"$bin" run --export "$work/export" --mapping "$work/plan/mapping.toml" --target "$dst" --report "$work/report-rerun.json" | tail -n 4
echo
echo "== 6. verify: every row of the export against the target (counts, NULLs, row fingerprints)"
"$bin" verify --export "$work/export" --mapping "$work/plan/mapping.toml" --target "$dst" \
  --report "$work/verify.json"
echo
echo "== 7. damage one order (its timestamp off by one microsecond): verify names the row"
psql -X -q -v ON_ERROR_STOP=1 "$dst" -c "UPDATE sales.orders SET order_timestamp = order_timestamp + interval '1 microsecond' WHERE old_id = 42"
if "$bin" verify --export "$work/export" --mapping "$work/plan/mapping.toml" --target "$dst" \
  --tables sales.orders --report "$work/verify-damaged.json"; then
  echo "error: verify did not find the damaged row" >&2
  exit 1
fi
echo
echo "a customer's new key: snap2dsql key --table sales.customers --old 42 ->" \
  "$("$bin" key --mapping "$work/plan/mapping.toml" --table sales.customers --old 42)"
echo "reports: $work/report.json, $work/verify.json, $work/verify-damaged.json"
