#!/usr/bin/env bash
# Builds the JavaScript machine module (guest/) and copies the .wasm to the given path.
#
#   scripts/build-guest.sh OUT_WASM_PATH
#
# Steps: npm ci in guest/js when its lock file changed, the JS assets (glue and pinned XState)
# with esbuild, then the guest crate for wasm32-wasip1 with Debian's clang for QuickJS.
# The guest's cargo target directory is STATEWIRE_GUEST_TARGET_DIR if set, else
# "${CARGO_TARGET_DIR:-<repo>/target}/guest". Run scripts/setup.sh once to install what this
# needs.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_WASM_PATH" >&2
  exit 2
fi
out_wasm=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
guest_target=${STATEWIRE_GUEST_TARGET_DIR:-${CARGO_TARGET_DIR:-$repo/target}/guest}
cargo_bin=${CARGO:-cargo}

fail() {
  echo "build-guest: $1" >&2
  echo "build-guest: run scripts/setup.sh to install what building the guest needs" >&2
  exit 1
}

command -v clang >/dev/null || fail "clang is missing"
command -v llvm-ar >/dev/null || fail "llvm-ar is missing"
command -v node >/dev/null || fail "node is missing"
command -v npm >/dev/null || fail "npm is missing"
command -v flock >/dev/null || fail "flock is missing"
[ -f /usr/include/wasm32-wasi/stdlib.h ] || fail "the wasi-libc headers are missing"
[ -f "$(clang --target=wasm32-wasi --print-libgcc-file-name)" ] ||
  fail "clang's runtime library for wasm32 is missing"
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip1; then
  fail "the Rust target wasm32-wasip1 is missing"
fi

js="$repo/guest/js"
if [ ! -f "$js/node_modules/.package-lock.json" ] ||
  [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# Checkouts that share a target directory would otherwise overwrite each other's assets and
# wasm between building and copying.
mkdir -p "$guest_target"
exec {lock_fd}>"$guest_target/.build-guest.lock"
flock "$lock_fd"

assets="$guest_target/js-assets"
node "$js/build.mjs" "$assets"

# When run from a build script, the outer cargo's settings must not reach the guest build.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET \
  CARGO_BUILD_TARGET_DIR RUSTC_WORKSPACE_WRAPPER CARGO_PRIMARY_PACKAGE CLIPPY_ARGS \
  TARGET HOST OUT_DIR PROFILE OPT_LEVEL DEBUG NUM_JOBS RUSTC RUSTDOC RUSTC_LINKER \
  CARGO_MANIFEST_DIR CARGO_MANIFEST_PATH CARGO_PKG_NAME CARGO_CRATE_NAME \
  CARGO_ENCODED_RUSTDOCFLAGS CARGO_TARGET_DIR
for name in $(compgen -e); do
  case $name in
    CARGO_CFG_* | CARGO_FEATURE_* | CARGO_PKG_* | DEP_*) unset "$name" ;;
  esac
done

export CARGO_TARGET_DIR="$guest_target"
export STATEWIRE_GUEST_JS_DIR="$assets"
export RQUICKJS_SYS_NO_WASI_SDK=1
export CC_wasm32_wasip1=clang
export AR_wasm32_wasip1=llvm-ar
# clang 14 does not know the wasip1 triple; this later --target wins over the one cc passes.
# The prelude turns QuickJS's stack limit on (see the header); its hash is passed along so that
# QuickJS is rebuilt when the prelude changes. cc splits CFLAGS on spaces: the repository path
# must not contain any.
prelude="$repo/guest/c/quickjs-wasi.h"
prelude_hash=$(sha256sum "$prelude" | cut -c1-16)
export CFLAGS_wasm32_wasip1="--target=wasm32-wasi -include $prelude -DSTATEWIRE_PRELUDE=$prelude_hash"

"$cargo_bin" build --release --locked --quiet --target wasm32-wasip1 \
  --manifest-path "$repo/guest/Cargo.toml"

built="$guest_target/wasm32-wasip1/release/statewire_guest.wasm"
mkdir -p "$(dirname "$out_wasm")"
if ! cmp -s "$built" "$out_wasm"; then
  cp "$built" "$out_wasm"
fi
