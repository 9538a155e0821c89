#!/usr/bin/env bash
# Figures, not a test: the cold start of one function under `cargo lambda watch`.
# Starts the Lambda runtime API (`cargo lambda watch --only-lambda-apis`), then the function's
# binary, and at once sends it an invocation; then a second one. The first latency is init +
# handling, the second handling alone: init ≈ first - second. The invocation is a poll-export
# without an export task, which fails at once in the handler (no AWS call).
# Usage: scripts/lambda-init.sh [BINARY] [RUNS]   (default: the release poll-export, 5 runs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/snap2dsql-target}
bin=${1:-$target/release/poll-export}
runs=${2:-5}
[ -x "$bin" ] || { echo "missing $bin: cargo build --release -p poll-export" >&2; exit 2; }
name=$(basename "$bin")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cd "$root"
.venv-lambda/bin/cargo-lambda lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >/dev/null 2>&1 &
watch=$!
trap 'kill $watch 2>/dev/null; kill $fn 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
invoke() {
  curl -s -o /dev/null -w '%{time_total}' -X POST \
    "http://127.0.0.1:$port/2015-03-31/functions/$name/invocations" \
    -d '{"execution":"init-time","state":{}}'
}
echo "binary: $bin ($(du -h "$bin" | cut -f1))"
printf '%-4s %12s %12s %12s\n' run "cold ms" "warm ms" "init ms"
for i in $(seq "$runs"); do
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt/$name" AWS_LAMBDA_FUNCTION_NAME="$name" \
    AWS_LAMBDA_FUNCTION_VERSION='$LATEST' AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024 \
    AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_LAMBDA_LOG_FORMAT=JSON \
    "$bin" >/dev/null 2>&1 &
  fn=$!
  cold=$(invoke)
  warm=$(invoke)
  kill $fn; wait $fn 2>/dev/null || true
  awk -v i="$i" -v c="$cold" -v w="$warm" 'BEGIN { printf "%-4s %12.1f %12.1f %12.1f\n", i, c*1000, w*1000, (c-w)*1000 }'
done
