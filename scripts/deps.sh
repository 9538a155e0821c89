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
# Debian's postgresql package starts a cluster on 5432; the project never uses it.
exit 0
