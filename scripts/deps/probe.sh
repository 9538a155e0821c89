#!/usr/bin/env bash
# Probes for what the build, the demo and the tests really load or run. Each probe checks the
# thing itself (a library that loads and exports the symbol bindgen calls, a program that runs),
# never a file that merely looks like it. Sourced by scripts/deps.sh; run directly to test:
#   scripts/deps/probe.sh NAME     exit 0 when NAME is usable, 1 when not (prints why on stderr)
# DEPS_ROOT (default /) is prefixed to every searched path, so a test can point the probes at a
# fake root (tests/it/deps.rs).
set -uo pipefail

DEPS_ROOT=${DEPS_ROOT:-}
DEPS_ROOT=${DEPS_ROOT%/}

# libclang as clang-sys (bindgen, pg_query's build script) finds it at build time: LIBCLANG_PATH,
# or llvm-config's prefix, or the system library directories; names libclang.so, libclang-N.so,
# libclang.so.N, libclang-N.so.N; never libclang-cpp (the C++ interface, another library).
# A candidate counts only when it loads and exports clang_createIndex.
libclang_candidates() {
  local dirs=() d
  if [ -n "${LIBCLANG_PATH:-}" ]; then
    dirs=("$DEPS_ROOT$LIBCLANG_PATH")
  else
    if [ -z "$DEPS_ROOT" ] && command -v llvm-config >/dev/null 2>&1; then
      d=$(llvm-config --prefix 2>/dev/null) && dirs+=("$d/lib" "$d/lib64")
    fi
    shopt -s nullglob
    dirs+=("$DEPS_ROOT"/usr/lib/llvm-*/lib "$DEPS_ROOT"/usr/local/llvm*/lib* "$DEPS_ROOT"/usr/local/lib*/*/*
      "$DEPS_ROOT"/usr/local/lib*/* "$DEPS_ROOT"/usr/local/lib* "$DEPS_ROOT"/usr/lib*/*/* "$DEPS_ROOT"/usr/lib*/*
      "$DEPS_ROOT"/usr/lib*)
    shopt -u nullglob
  fi
  local f
  for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    for f in "$d"/libclang.so "$d"/libclang-*.so "$d"/libclang.so.* "$d"/libclang-*.so.*; do
      [ -e "$f" ] || continue
      case ${f##*/} in *-cpp.*) continue ;; esac
      printf '%s\n' "$f"
    done
  done
}

loads_with_symbol() { # loads_with_symbol LIB SYMBOL
  python3 - "$1" "$2" <<'PY' 2>/dev/null
import ctypes, sys
try:
    getattr(ctypes.CDLL(sys.argv[1]), sys.argv[2])
except (OSError, AttributeError):
    sys.exit(1)
PY
}

probe_libclang() {
  local f
  while IFS= read -r f; do
    loads_with_symbol "$f" clang_createIndex && return 0
  done < <(libclang_candidates)
  echo "libclang: no loadable libclang.so / libclang-N.so* with clang_createIndex" >&2
  return 1
}

# The PostgreSQL server tools scripts/pg.sh and the test harness run: the newest
# /usr/lib/postgresql/N/bin, else the PATH.
pg_bindir() {
  local d
  d=$(ls -d "$DEPS_ROOT"/usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -z "$d" ] && [ -z "$DEPS_ROOT" ] && command -v initdb >/dev/null 2>&1; then
    d=$(dirname "$(command -v initdb)")
  fi
  printf '%s' "$d"
}
runs() { # runs PROGRAM ARGS...: the program starts and exits 0
  [ -x "$1" ] || command -v "$1" >/dev/null 2>&1 || return 1
  "$@" >/dev/null 2>&1
}
probe_pg_server() {
  local d
  d=$(pg_bindir)
  [ -n "$d" ] && runs "$d/initdb" --version && runs "$d/pg_ctl" --version && runs "$d/postgres" --version && return 0
  echo "pg_server: no initdb, pg_ctl and postgres that run" >&2
  return 1
}
client_tool() { # a PostgreSQL client tool as the scripts call it (PATH), or under the fake root
  if [ -n "$DEPS_ROOT" ]; then printf '%s' "$DEPS_ROOT/usr/bin/$1"; else printf '%s' "$1"; fi
}
probe_pg_client() {
  runs "$(client_tool psql)" --version && runs "$(client_tool pg_dump)" --version && return 0
  echo "pg_client: psql and pg_dump do not both run" >&2
  return 1
}
probe_python_venv() {
  [ -z "$DEPS_ROOT" ] && python3 -c 'import venv, ensurepip' >/dev/null 2>&1 && return 0
  echo "python_venv: python3 cannot make a venv with pip (import venv, ensurepip)" >&2
  return 1
}
probe_node() {
  runs "$(client_tool node)" --version && runs "$(client_tool npm)" --version && return 0
  echo "node: node and npm do not both run" >&2
  return 1
}
probe_openssl() {
  runs "$(client_tool openssl)" version && return 0
  echo "openssl: openssl does not run" >&2
  return 1
}
probe_ca_certificates() {
  [ -s "$DEPS_ROOT/etc/ssl/certs/ca-certificates.crt" ] && return 0
  echo "ca_certificates: no /etc/ssl/certs/ca-certificates.crt" >&2
  return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  name=${1:?usage: probe.sh libclang|pg_server|pg_client|python_venv|node|openssl|ca_certificates}
  "probe_$name"
fi
