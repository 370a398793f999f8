#!/usr/bin/env bash
# Runs every test: Rust unit/integration tests, the client's type check, and
# the end-to-end tests in real headless Chromium. Installs what it needs first.
#
# Everything that opens sockets runs inside a private network namespace where
# only loopback exists, so no test can reach another machine.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test

echo "== build"
cargo build --workspace --all-targets --locked

echo "== client type check"
npx --no-install tsc --noEmit -p tsconfig.json

if ! unshare -n true 2>/dev/null; then
  echo "test: cannot create a private network namespace (unshare -n); run as root or with CAP_SYS_ADMIN" >&2
  exit 1
fi

echo "== tests (inside a loopback-only network namespace)"
export CONFCAST_BIN="$PWD/target/debug/confcast"
unshare -n bash -euo pipefail -c '
  ip link set lo up
  # Bounded, so a hung test fails the run instead of stalling it.
  timeout 1200 cargo test --workspace --locked --offline
  timeout 1200 node --test --test-concurrency=1 --test-timeout=300000 tests/e2e/*.test.mjs
'
