#!/usr/bin/env bash
# The audio-mixing benchmark of docs/BENCHMARKS.md ("Audio mixing"): confcast
# at several room sizes and Janus AudioBridge at the same load, all inside a
# private network namespace that only this script's processes share.
#
# Janus's ICE library ignores loopback addresses, so the namespace gets a
# veth pair with two test addresses (10.77.0.1 for Janus, 10.77.0.2 for the
# client peers). Both ends stay inside the namespace: nothing can leave it.
# Janus sends out of the veth end of its address, so the pair must accept
# packets whose source is an address of the same namespace (accept_local).
#
# Usage: scripts/bench-audio-mix.sh [confcast-bench audio-mix options]
#   e.g. scripts/bench-audio-mix.sh --sizes 10,100,1000 --seconds 20
#        scripts/bench-audio-mix.sh --talk speech --sizes 100 --seconds 20
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v janus >/dev/null 2>&1; then
  echo "bench: installing janus (Debian package)"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q janus iproute2
fi

# `--talk speech` synthesises the talkers' speech with espeak-ng.
if [[ " $* " == *" speech "* || " $* " == *"--talk=speech"* ]] && ! command -v espeak-ng >/dev/null 2>&1; then
  echo "bench: installing espeak-ng (Debian package)"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q espeak-ng
fi

target=${CARGO_TARGET_DIR:-target}
cargo build --release -p confcast-server -p confcast-bench

# New network, PID and mount namespaces: when the benchmark ends, however it
# ends, the kernel stops every process it started (servers included).
unshare -n -p -f -m --mount-proc bash -euo pipefail -c '
  ip link set lo up
  ip link add t0 type veth peer name t1
  ip addr add 10.77.0.1/24 dev t0
  ip addr add 10.77.0.2/24 dev t1
  ip link set t0 up
  ip link set t1 up
  sysctl -qw net.ipv4.conf.t0.accept_local=1 net.ipv4.conf.t1.accept_local=1
  bench=$1; shift
  exec "$bench" audio-mix "$@"
' audio-mix "$target/release/confcast-bench" --binary "$target/release/confcast" \
  --janus-ip 10.77.0.1 --client-ip 10.77.0.2 "$@"
