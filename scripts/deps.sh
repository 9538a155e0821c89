#!/usr/bin/env bash
# Installs what a goal needs, idempotently, and only that; does nothing when all is present.
#   scripts/deps.sh demo   the CLI's build and the local rehearsal (make demo, make bench):
#                          libclang (pg_query's bindgen), the PostgreSQL server and client tools
#   scripts/deps.sh all    everything (make test, make deps): the above, plus the AWS emulator
#                          (moto), the SAM CLI and cfn-lint, cargo-lambda and zig, checkov, and the
#                          npm tools (asl-validator; the CDK app under infra/cdk)
# Presence is decided by scripts/deps/probe.sh, which loads or runs each thing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scope=${1:-all}
case $scope in demo | all) ;; *) echo "usage: $0 [demo|all]" >&2; exit 2 ;; esac
# shellcheck source=scripts/deps/probe.sh
source "$root/scripts/deps/probe.sh"

apt_install() {
  [ $# -gt 0 ] || return 0
  echo "installing (Debian): $*"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need=()
probe_libclang 2>/dev/null || need+=(libclang-dev)
probe_pg_server 2>/dev/null || need+=(postgresql)
probe_pg_client 2>/dev/null || need+=(postgresql-client)
probe_python_venv 2>/dev/null || need+=(python3 python3-venv)
if [ "$scope" = all ]; then
  probe_openssl 2>/dev/null || need+=(openssl)
  probe_ca_certificates 2>/dev/null || need+=(ca-certificates)
  probe_node 2>/dev/null || need+=(nodejs npm)
fi
apt_install "${need[@]}"
# Each must now hold: a package that installed but does not provide the thing is an error here,
# not a build failure minutes later.
for p in libclang pg_server pg_client python_venv; do "probe_$p"; done
[ "$scope" = demo ] && exit 0
for p in openssl ca_certificates node; do "probe_$p"; done

# Python tools, each in its own venv under the repo, pinned; a venv is (re)installed only when a
# pinned package is missing or at another version.
venv_pinned() { # venv_pinned DIR NAME==VERSION...
  local dir=$1
  shift
  [ -x "$dir/bin/python" ] || return 1
  "$dir/bin/python" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    name = name.split("[")[0]
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
# The AWS API emulator (moto) for the S3 tests and the emulated pipeline; psycopg for the
# DSQL stand-in's client tests (standin/tests/clients.rs).
ensure_venv .venv "moto[server]==5.2.5" "psycopg[binary]==3.3.9"
# The AWS deployment tools (README "Deploying on AWS", scripts/infra-check.sh): SAM CLI + cfn-lint;
# cargo-lambda + zig for the arm64 cross build; checkov.
ensure_venv .venv-sam aws-sam-cli==1.170.0 cfn-lint==1.58.0
ensure_venv .venv-lambda cargo-lambda==1.9.2 ziglang==0.17.1
ensure_venv .venv-checkov checkov==3.3.30

# npm tools, pinned by each package.json and its lockfile: `npm ci` when node_modules is missing
# or older than the lockfile.
npm_ci() { # npm_ci DIR
  local dir=$root/$1
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "installing npm packages of ${1} into ${1%/.}/node_modules"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}
npm_ci .
npm_ci infra/cdk
exit 0
