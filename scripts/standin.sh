# Sourced by the scripts that load (demo.sh, bench.sh, bench/connections.sh): the DSQL stand-in.
#   start_standin BIN PORT DIR [stand-in flags...]
# starts `snap2dsql standin` in front of the PostgreSQL on 127.0.0.1:PORT, writing its URL and log
# into DIR, and sets standin_pid and standin_url (postgres://admin@127.0.0.1:P/postgres, the URL a
# DSQL cluster has); the caller kills standin_pid when it ends. `standin_db NAME` is the URL of
# database NAME through it.
start_standin() {
  local bin=$1 port=$2 dir=$3
  shift 3
  "$bin" standin --upstream "postgres://postgres@127.0.0.1:$port/postgres" --listen 127.0.0.1:0 "$@" \
    > "$dir/standin.url" 2> "$dir/standin.log" &
  standin_pid=$!
  for _ in $(seq 100); do [ -s "$dir/standin.url" ] && break; sleep 0.1; done
  standin_url=$(head -n 1 "$dir/standin.url")
  [ -n "$standin_url" ] || { echo "error: the DSQL stand-in did not start: $(cat "$dir/standin.log")" >&2; exit 1; }
}
standin_db() { echo "${standin_url%/*}/$1"; }
