#!/usr/bin/env bash
# Installs what building statewire needs. Idempotent; prints nothing when all is in place.
#
# - Debian packages: clang, lld, wasi-libc and libclang-rt-dev-wasm32 (QuickJS for
#   wasm32-wasip1), llvm (llvm-ar), and node/npm when missing;
# - the Debian package prometheus, for the metrics test (tests/metrics_prometheus.rs), which
#   starts its own Prometheus on loopback; the system service is never started;
# - the Rust target wasm32-wasip1;
# - the npm packages of guest/js (pinned by its package-lock.json);
# - the npm packages of tests/compat: smply, @statebacked/client and @statebacked/token, which
#   the compatibility tests run against the server (pinned by its package-lock.json).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

packages=(clang lld wasi-libc libclang-rt-dev-wasm32 llvm)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Prometheus: only the binary is wanted. A policy-rc.d that denies every action keeps the
# package's scripts from starting the system service (unless the machine already has its own
# policy), and recommends (node exporter, another service) are left out.
if ! command -v prometheus >/dev/null; then
  echo "setup: installing prometheus (the service is not started)"
  policy=/usr/sbin/policy-rc.d
  own_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    own_policy=1
    trap 'as_root rm -f "$policy"' EXIT
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus >/dev/null
  if [ -n "$own_policy" ]; then
    as_root rm -f "$policy"
    trap - EXIT
  fi
fi

if ! command -v rustup >/dev/null; then
  echo "setup: rustup is missing; install the Rust toolchain with rustup first" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-wasip1; then
  echo "setup: adding the Rust target wasm32-wasip1"
  rustup target add wasm32-wasip1 >/dev/null
fi

js="$repo/guest/js"
if [ ! -f "$js/node_modules/.package-lock.json" ] ||
  [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
  echo "setup: installing the npm packages of guest/js"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi

compat="$repo/tests/compat"
if [ ! -f "$compat/node_modules/.package-lock.json" ] ||
  [ "$compat/package-lock.json" -nt "$compat/node_modules/.package-lock.json" ]; then
  echo "setup: installing the npm packages of tests/compat"
  # Install scripts are skipped: esbuild's only checks its binary, and the one of smply's
  # dependency @deepkit/type-compiler would rewrite the installed TypeScript.
  (cd "$compat" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
