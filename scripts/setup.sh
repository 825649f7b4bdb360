#!/usr/bin/env bash
# Set up everything ossa and its tests need on a fresh Debian machine, as root:
# Docker (and gVisor where available), the Python packages, a running dockerd, the sandbox image.
# Safe to run again: each step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null || ! command -v tmux >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq docker.io debootstrap tmux >/dev/null
fi

# torch first, pinned: a looser requirement would download a multi-GB CUDA build.
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e '.[dev]'

bash scripts/install-runsc.sh || echo "gVisor (runsc) unavailable: the runsc tests will skip" >&2
bash scripts/start-dockerd.sh
ossa sandbox build
