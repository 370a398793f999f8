#!/usr/bin/env bash
# The glass-to-glass latency measurement of docs/BENCHMARKS.md ("Broadcast and
# LL-HLS serving"): a host's Chromium paints the clock into its camera, a
# viewer's Chromium plays the broadcast with hls.js (or, with --mode webrtc,
# the watch page's low-latency WebRTC/WHEP mode) and reads the clock back.
# The release server runs on loopback inside a private network namespace.
#
# Usage: scripts/bench-glass-to-glass.sh [--mode hls|webrtc]   (GLASS_SECONDS,
#   GLASS_WARMUP: see tests/e2e/glass-to-glass.bench.mjs)
set -euo pipefail
cd "$(dirname "$0")/.."

export GLASS_MODE=${GLASS_MODE:-hls}
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) GLASS_MODE=${2:?--mode needs hls or webrtc}; shift 2 ;;
    --mode=*) GLASS_MODE=${1#--mode=}; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

target=${CARGO_TARGET_DIR:-target}
cargo build --release -p confcast-server
export CONFCAST_BIN="$target/release/confcast"
unshare -n bash -euo pipefail -c 'ip link set lo up; exec node tests/e2e/glass-to-glass.bench.mjs'
