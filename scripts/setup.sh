#!/usr/bin/env bash
# Set up ossa on a fresh Debian or Ubuntu machine. Safe to run again: each step skips or
# repeats cheaply what is already there.
#
#   bash scripts/setup.sh                everything below, as root (or with sudo)
#   bash scripts/setup.sh --python-only  only the virtual environment and the `ossa` link
#   bash scripts/setup.sh --print-torch  say which torch build would be installed, and stop
#
# Steps:
#  1. Debian packages: docker.io, debootstrap, tmux, gcc (the engine's C kernel), and
#     python3-venv where the interpreter lacks venv's pip bootstrap.
#  2. A virtual environment in <repo>/.venv with torch and ossa (editable, with its test
#     dependencies). Debian 12 and Ubuntu 24.04 refuse pip in the system python3 (PEP 668),
#     so nothing is installed there.
#  3. `ossa` on PATH: a link in /usr/local/bin as root, in ~/.local/bin otherwise.
#  4. gVisor's runsc where apt has it, a running dockerd, the sandbox image.
#
# Environment:
#   OSSA_PYTHON           interpreter the environment is made from (default: python3, >= 3.11)
#   OSSA_TORCH_INDEX      package index torch comes from (unset: chosen for the machine;
#                         empty: pip's default), e.g. https://download.pytorch.org/whl/cu126
#   OSSA_TORCH_CPU_INDEX  the CPU index tried on machines without an NVIDIA GPU
#                         (default https://download.pytorch.org/whl/cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
VENV=$REPO/.venv
TORCH=torch==2.13.0
CPU_INDEX=${OSSA_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
export DEBIAN_FRONTEND=noninteractive

say() { printf 'setup: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "needs root: $*"
    fi
}

apt_updated=
apt_install() {  # Debian packages, installed only when one is missing
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return
    command -v apt-get >/dev/null || die "install ${missing[*]} first (no apt-get here)"
    say "apt-get install ${missing[*]}"
    if [ -z "$apt_updated" ]; then
        as_root apt-get update -qq >/dev/null
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

system_packages() {
    # By command, not package: Docker from docker.com's own packages must not meet docker.io.
    local packages=()
    command -v dockerd >/dev/null || packages+=(docker.io)
    command -v debootstrap >/dev/null || packages+=(debootstrap)
    command -v tmux >/dev/null || packages+=(tmux)
    command -v cc >/dev/null || packages+=(gcc libc6-dev)
    [ -n "${OSSA_PYTHON:-}" ] || command -v python3 >/dev/null || packages+=(python3)
    [ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"
}

base_python() {  # the interpreter the environment is made from, checked
    local python=${OSSA_PYTHON:-python3}
    if ! command -v "$python" >/dev/null; then
        [ -z "${OSSA_PYTHON:-}" ] || die "OSSA_PYTHON=$python: no such interpreter"
        apt_install python3
    fi
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "ossa needs Python 3.11 or newer; $python is $("$python" -V 2>&1). Set OSSA_PYTHON."
    printf '%s\n' "$python"
}

make_venv() {
    local python=$1
    if "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        return  # already made; a venv whose interpreter has gone is made again below
    fi
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian and Ubuntu ship venv's pip bootstrap in a separate package.
        apt_install "$("$python" -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])')"
    fi
    say "creating $VENV from $("$python" -c 'import sys; print(sys.executable)')"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
}

has_nvidia_gpu() {
    if command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
        return 0
    fi
    [ -e /proc/driver/nvidia/version ]  # a loaded driver without nvidia-smi
}

index_answers() {  # a short probe, so an unreachable index costs seconds, not pip's retries
    "$1" - "$2" <<'PY'
import os, ssl, sys, urllib.request
# Trust what pip trusts: a machine without ca-certificates still has pip's own bundle.
context = ssl.create_default_context()
try:
    from pip._vendor import certifi
    context.load_verify_locations(certifi.where())
except ImportError:
    pass
if os.environ.get("PIP_CERT"):
    context.load_verify_locations(os.environ["PIP_CERT"])
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5, context=context).close()
except Exception:
    sys.exit(1)
PY
}

torch_index() {  # prints the extra index torch comes from; nothing for pip's default
    local python=$1
    if [ -n "${OSSA_TORCH_INDEX+set}" ]; then
        say "torch from ${OSSA_TORCH_INDEX:-the default index} (OSSA_TORCH_INDEX)"
        printf '%s\n' "$OSSA_TORCH_INDEX"
    elif has_nvidia_gpu; then
        say "NVIDIA GPU found: torch's default (CUDA) build"
    elif index_answers "$python" "$CPU_INDEX"; then
        say "no NVIDIA GPU: torch's CPU build from $CPU_INDEX"
        printf '%s\n' "$CPU_INDEX"
    else
        say "no NVIDIA GPU, and $CPU_INDEX does not answer: torch from pip's configured indexes"
    fi
}

install_python_packages() {
    local index pip=("$VENV/bin/python" -m pip install -q)
    index=$(torch_index "$VENV/bin/python")
    # torch first, pinned: --upgrade swaps a build of the same version for the chosen one
    # (2.13.0+cpu sorts above 2.13.0), and the project's own install then leaves it alone.
    "${pip[@]}" --upgrade "$TORCH" ${index:+--extra-index-url "$index"}
    "${pip[@]}" -e "$REPO[dev]"
    check_torch_build
}

check_torch_build() {
    local cuda
    cuda=$("$VENV/bin/python" -c 'import torch; print(torch.version.cuda or "")')
    if [ -n "$cuda" ] && ! has_nvidia_gpu; then
        say "warning: torch's CUDA $cuda build is installed on a machine without an NVIDIA GPU;" \
            "for the much smaller CPU build, rerun with OSSA_TORCH_INDEX=https://download.pytorch.org/whl/cpu"
    elif [ -z "$cuda" ] && has_nvidia_gpu; then
        say "warning: torch's CPU build is installed on a machine with an NVIDIA GPU;" \
            "run \`$VENV/bin/python -m pip uninstall -y torch\` and this script again"
    else
        say "torch: ${cuda:+CUDA $cuda build}${cuda:-CPU build}"
    fi
}

link_command() {  # put the environment's `ossa` on PATH
    local dir found
    if [ "$(id -u)" = 0 ]; then dir=/usr/local/bin; else dir=$HOME/.local/bin; fi
    mkdir -p "$dir"
    if [ -e "$dir/ossa" ] && [ ! -L "$dir/ossa" ]; then
        say "$dir/ossa is a file not made by this script: left alone; run $VENV/bin/ossa"
        return
    fi
    ln -sfn "$VENV/bin/ossa" "$dir/ossa"
    found=$(command -v ossa || true)
    if [ -z "$found" ]; then
        say "linked $dir/ossa; add $dir to PATH to run it as \`ossa\`"
    elif [ "$found" != "$dir/ossa" ]; then
        say "linked $dir/ossa, but \`ossa\` on PATH is $found, which comes first"
    else
        say "linked $dir/ossa -> $VENV/bin/ossa"
    fi
}

python_part() {
    local python
    python=$(base_python)
    make_venv "$python"
    install_python_packages
    link_command
}

docker_part() {
    as_root bash scripts/install-runsc.sh || say "gVisor (runsc) unavailable: the runsc tests will skip"
    as_root bash scripts/start-dockerd.sh
    as_root "$VENV/bin/ossa" sandbox build
}

case "${1:-}" in
    "")
        system_packages
        python_part
        docker_part
        ;;
    --python-only) python_part ;;
    --print-torch)
        python=$(base_python)
        index=$(torch_index "$python")
        printf '%s\n' "$TORCH${index:+ --extra-index-url $index}"
        ;;
    *) die "usage: bash scripts/setup.sh [--python-only | --print-torch]" ;;
esac
