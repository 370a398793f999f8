#!/usr/bin/env bash
# Installs what building and testing confcast needs on a Debian machine with
# a Rust toolchain. Usage: scripts/setup.sh run|test
# Idempotent: anything already present is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

purpose=${1:-run}

# command-to-check:debian-package pairs.
needs=(cmake:cmake pkg-config:pkg-config cc:gcc)
if [ "$purpose" = test ]; then
  needs+=(chromium:chromium ffmpeg:ffmpeg ffprobe:ffmpeg ip:iproute2 unshare:util-linux node:nodejs npm:npm python3:python3 nginx:nginx openssl:openssl nft:nftables turnserver:coturn whip-client:simple-whip-client)
fi

missing=()
for pair in "${needs[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# OpenSSL's headers: the server's WebRTC peers do their DTLS handshake with OpenSSL.
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl; }; then
  missing+=(libssl-dev)
fi
# The WHIP test's encoder (aiortc) lives in a virtual environment.
if [ "$purpose" = test ] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
  # De-duplicate package names.
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "setup: missing ${missing[*]}; install them (apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo (Rust 1.94 or newer) is required: https://rustup.rs" >&2; exit 1; }

if [ "$purpose" = test ]; then
  # Browser-test tooling from the npm registry, pinned by package-lock.json.
  # Playwright is used only as a driver: it never downloads a browser.
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
  fi
  # aiortc, an independent WebRTC stack, as a WHIP encoder (tests/e2e/whip.test.mjs),
  # pinned by tests/e2e/requirements.txt, from PyPI.
  venv=target/e2e-venv
  if [ ! -x "$venv/bin/python" ] || [ tests/e2e/requirements.txt -nt "$venv/installed" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
    touch "$venv/installed"
  fi
fi
