#!/usr/bin/env bash
# Installs what the build, the tests and the demo need, idempotently: PostgreSQL server binaries
# and libclang (for the pg_query crate) from Debian's packages. Does nothing when all is present.
set -euo pipefail

need=()
have_pg_server() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
have_pg_server || need+=(postgresql postgresql-client)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
# bindgen (pg_query's build) loads libclang.so at build time.
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 \
  || need+=(libclang-dev)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
dpkg -s ca-certificates >/dev/null 2>&1 || need+=(ca-certificates)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The AWS API emulator (moto) for the S3 tests, in a venv under the repo, pinned.
root=$(cd "$(dirname "$0")/.." && pwd)
MOTO_VERSION=5.2.5
if [ ! -x "$root/.venv/bin/moto_server" ] || ! "$root/.venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "installing moto[server]==$MOTO_VERSION into .venv"
  python3 -m venv "$root/.venv"
  "$root/.venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

# The AWS deployment tools (README "Deploying on AWS", scripts/infra-check.sh), each in its own
# venv under the repo, pinned: SAM CLI + cfn-lint; cargo-lambda + zig for the arm64 cross build;
# checkov. Each venv is (re)installed only when a pinned package is missing or at another version.
venv_pinned() { # venv_pinned DIR NAME==VERSION...
  local dir=$1
  shift
  [ -x "$dir/bin/python" ] || return 1
  "$dir/bin/python" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}
ensure_venv() { # ensure_venv DIR NAME==VERSION...
  local dir=$root/$1
  shift
  if ! venv_pinned "$dir" "$@"; then
    echo "installing $* into ${dir#"$root"/}"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  fi
}
ensure_venv .venv-sam aws-sam-cli==1.170.0 cfn-lint==1.58.0
ensure_venv .venv-lambda cargo-lambda==1.9.2 ziglang==0.17.1
ensure_venv .venv-checkov checkov==3.3.30

# asl-validator (npm), pinned in package.json and package-lock.json, into node_modules.
if ! command -v npm >/dev/null 2>&1; then
  echo "installing: nodejs npm"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
asl_want=$(sed -n 's/.*"asl-validator": *"\([^"]*\)".*/\1/p' "$root/package.json" | head -1)
asl_have=$(sed -n 's/^  "version": *"\([^"]*\)".*/\1/p' "$root/node_modules/asl-validator/package.json" 2>/dev/null | head -1 || true)
if [ ! -x "$root/node_modules/.bin/asl-validator" ] || [ "$asl_have" != "$asl_want" ]; then
  echo "installing asl-validator@$asl_want into node_modules"
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# Debian's postgresql package starts a cluster on 5432; the project never uses it.
exit 0
