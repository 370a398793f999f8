#!/usr/bin/env bash
# The glass-to-glass latency measurement of docs/BENCHMARKS.md ("Broadcast and
# LL-HLS serving"): a host's Chromium paints the clock into its camera, a
# viewer's Chromium plays the broadcast with hls.js and reads the clock back.
# The release server runs on loopback inside a private network namespace.
#
# Usage: scripts/bench-glass-to-glass.sh   (GLASS_SECONDS, GLASS_WARMUP: see
#   tests/e2e/glass-to-glass.bench.mjs)
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
cargo build --release -p confcast-server
export CONFCAST_BIN="$target/release/confcast"
unshare -n bash -euo pipefail -c 'ip link set lo up; exec node tests/e2e/glass-to-glass.bench.mjs'
