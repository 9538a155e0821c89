#!/usr/bin/env bash
# What `make bench` needs beyond scripts/deps.sh, installed idempotently:
#   - GNU time (Debian package `time`) for peak RSS (`/usr/bin/time -v`);
#   - a venv under the repo (.venv/) with psycopg 3 (`psycopg[binary]`, from PyPI) for the
#     Glue-style contender (batched INSERTs with executemany).
# Does nothing when all is present.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

if [ ! -x /usr/bin/time ]; then
  echo "installing: time"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends time >/dev/null
fi

venv=$root/.venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import psycopg, sys; sys.exit(0 if psycopg.__version__ >= "3.1" else 1)' 2>/dev/null; then
  echo "installing into .venv: psycopg[binary] 3.x"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check 'psycopg[binary]>=3.1,<4'
fi
