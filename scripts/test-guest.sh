#!/usr/bin/env bash
# Tests the JavaScript guest: the glue under Node against the real XState packages
# (guest/js/test), then the engine compiled natively (guest/src/tests.rs).
# Uses the same guest target directory as scripts/build-guest.sh.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
guest_target=${STATEWIRE_GUEST_TARGET_DIR:-${CARGO_TARGET_DIR:-$repo/target}/guest}
js="$repo/guest/js"

if [ ! -f "$js/node_modules/.package-lock.json" ] ||
  [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi
(cd "$js" && npm test)

mkdir -p "$guest_target"
exec {lock_fd}>"$guest_target/.build-guest.lock"
flock "$lock_fd"
node "$js/build.mjs" "$guest_target/js-assets"
STATEWIRE_GUEST_JS_DIR="$guest_target/js-assets" CARGO_TARGET_DIR="$guest_target" \
  "${CARGO:-cargo}" test --locked --manifest-path "$repo/guest/Cargo.toml"
