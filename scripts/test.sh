#!/usr/bin/env bash
# Runs the whole test suite: unit, doc, compile-fail (trybuild), behaviour, and integration
# tests against throwaway redis-server processes that the tests start themselves.
#
# Installs redis-server, redis-cli (which forms the test clusters; Debian's redis-tools) and
# openssl (for the TLS test's certificate) from apt when missing, on Debian/Ubuntu.
# Elsewhere, install them yourself first (macOS: `brew install redis`).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing: ${need[*]}; install them with your package manager (macOS: brew install redis openssl)" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "missing: ${need[*]}; run as root or install sudo" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "installing ${need[*]} from apt"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# One target dir for every package keeps the build lean on small machines.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
cargo test --workspace --all-features "$@"
