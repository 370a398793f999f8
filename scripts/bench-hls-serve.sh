#!/usr/bin/env bash
# The LL-HLS serving benchmark of docs/BENCHMARKS.md ("Broadcast and LL-HLS
# serving"): one room on air, wrk against parts and playlists, then thousands
# of held blocking playlist requests, all on loopback inside a private
# network namespace. Each held request is one TCP connection, and both ends
# are on this machine, so the file descriptor limit is raised to the hard
# limit first (each process needs one descriptor per held request).
#
# Usage: scripts/bench-hls-serve.sh [confcast-bench hls-serve options]
#   e.g. scripts/bench-hls-serve.sh --held 10000 --seconds 10
set -euo pipefail
cd "$(dirname "$0")/.."

command -v wrk >/dev/null 2>&1 || { echo "bench: needs wrk (apt-get install wrk)" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p confcast-server -p confcast-bench

# New network, PID and mount namespaces: when the benchmark ends, however it
# ends, the kernel stops every process it started (the server included).
unshare -n -p -f -m --mount-proc bash -euo pipefail -c '
  ip link set lo up
  ulimit -n "$(ulimit -Hn)"
  bench=$1; shift
  exec "$bench" hls-serve "$@"
' hls-serve "$target/release/confcast-bench" --binary "$target/release/confcast" "$@"
