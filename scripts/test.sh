#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, and the whole test suite.
# Installs what it needs first (scripts/setup.sh), so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "== guest tests (Node glue against real XState, native engine)"
scripts/test-guest.sh

echo "== cargo test"
cargo test --workspace -- --test-threads="${STATEWIRE_TEST_THREADS:-2}"
