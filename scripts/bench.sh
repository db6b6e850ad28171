#!/usr/bin/env bash
# Runs the benchmark set against servers it starts itself on loopback, writes every run's JSON
# report under target/bench/ and the tables into docs/benchmarks.md (between its generated
# markers). Each figure is measured beside its baseline in the same run:
#
#   a. fsync baseline: 1, 64 and 256 writers, one fdatasync per event;
#   b. durable events over HTTP, closed loop, 1, 64 and 256 instances (one connection each);
#   c. the same over WebSocket `send-event` commands;
#   d. fan-out of one instance to 1k and 10k subscribers, and the bare broadcast server;
#   e. memory per idle subscribed connection (measured by d).
#
# Durations are environment variables: BENCH_EVENTS_S (measured seconds per events run, 8),
# BENCH_WARMUP_S (2), BENCH_FSYNC_S (seconds per writer count, 3), BENCH_INSTANCES (1,64,256),
# BENCH_SUBSCRIBERS (1000,10000), BENCH_FANOUT_EVENTS (paced fan-out events, 100),
# BENCH_BURST (burst fan-out events, 300). BENCH_OUT moves the reports (target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."

events_s=${BENCH_EVENTS_S:-8}
warmup_s=${BENCH_WARMUP_S:-2}
fsync_s=${BENCH_FSYNC_S:-3}
instances=${BENCH_INSTANCES:-1,64,256}
subscribers=${BENCH_SUBSCRIBERS:-1000,10000}
fanout_events=${BENCH_FANOUT_EVENTS:-100}
burst=${BENCH_BURST:-300}
out=${BENCH_OUT:-target/bench}
target_dir=${CARGO_TARGET_DIR:-target}

scripts/setup.sh
echo "== building (release)"
cargo build --release -p statewire --bin statewire
cargo build --release -p statewire-load
cargo build --release --target wasm32-wasip1 --quiet \
  --manifest-path examples/raw-wasm-toggle/Cargo.toml \
  --target-dir "$target_dir/raw-wasm-toggle"

rm -rf "$out"
# Copies, so that a rebuild during the run cannot swap the binaries under it.
mkdir -p "$out/bin"
cp "$target_dir/release/statewire" "$target_dir/release/statewire-load" \
  "$target_dir/raw-wasm-toggle/wasm32-wasip1/release/raw_wasm_toggle.wasm" "$out/bin/"
statewire=$out/bin/statewire
load=$out/bin/statewire-load
machine=$out/bin/raw_wasm_toggle.wasm

# 10k subscribers need 10k descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Servers' data directories and the fsync files share one directory, so both see the same disk.
data=$out/data
mkdir -p "$data"

{
  echo "cpu:        $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "cores:      $(nproc)"
  echo "memory:     $(free -h | awk '/^Mem:/ {print $2}')"
  echo "kernel:     $(uname -sr)"
  echo "disk:       $(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$data" | head -1)"
  echo "build:      $(rustc --version), commit $(git rev-parse --short HEAD)"
  echo "date:       $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "durations:  events ${events_s} s + ${warmup_s} s warm-up, fsync ${fsync_s} s per writer count"
} >"$out/machine.txt"
cat "$out/machine.txt"

echo "== a. fsync baseline"
"$load" fsync-baseline --writers "$instances" --duration-s "$fsync_s" --dir "$data" \
  --report "$out/fsync.json"

for protocol in http ws; do
  for n in ${instances//,/ }; do
    echo "== events over $protocol, $n instances"
    "$load" events --spawn "$statewire" --machine "$machine" --protocol "$protocol" \
      --instances "$n" --duration-s "$events_s" --warmup-s "$warmup_s" --data-dir "$data" \
      --report "$out/events-$protocol-$n.json"
  done
done

echo "== fan-out and memory per connection"
"$load" fanout --statewire "$statewire" --machine "$machine" --subscribers "$subscribers" \
  --events "$fanout_events" --burst "$burst" --data-dir "$data" --report "$out/fanout.json"

"$load" bench-doc --reports "$out" --doc docs/benchmarks.md
