#!/usr/bin/env bash
# Sets up this machine (scripts/setup.sh), builds statewire in release mode, and serves on the
# embedded store. Extra arguments go to `statewire serve` (e.g. --port 9000 --data-dir /var/lib/sw).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release --bin statewire
exec "${CARGO_TARGET_DIR:-target}/release/statewire" serve "$@"
