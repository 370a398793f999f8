#!/usr/bin/env bash
# Builds and runs confcast with its defaults: SQLite and recordings in ./data,
# HTTP on 127.0.0.1:8080. Extra arguments go to `confcast serve`
# (see `scripts/run.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
exec cargo run --release --locked --bin confcast -- serve "$@"
