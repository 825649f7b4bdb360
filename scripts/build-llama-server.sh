#!/usr/bin/env bash
# Build llama.cpp's `llama-server` (CPU) for ossa's llamacpp engine tests, once per version.
#
# llama.cpp's source with gpt-oss support ships inside the llama-cpp-python sdist on PyPI
# (vendor/llama.cpp, with convert_hf_to_gguf.py and gguf-py), so no git clone is needed.
# The build lands in ~/.cache/ossa/llama.cpp-<version>/ (override with OSSA_LLAMA_CACHE);
# a second run finds bin/llama-server there and does nothing. Prints the cache dir last.
#
#   bash scripts/build-llama-server.sh            # default version below
#   LLAMA_CPP_PYTHON_VERSION=0.3.36 bash scripts/build-llama-server.sh
set -euo pipefail

version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
root="${OSSA_LLAMA_CACHE:-$HOME/.cache/ossa}"
dest="$root/llama.cpp-$version"
jobs="${JOBS:-$(nproc)}"

if [[ -x "$dest/bin/llama-server" && -f "$dest/src/convert_hf_to_gguf.py" ]]; then
    echo "$dest"
    exit 0
fi

# build tools, on a machine that lacks them (Debian/Ubuntu, as root or through sudo)
if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null || ! command -v c++ >/dev/null; then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq cmake ninja-build g++ >&2
fi
# pip from the project's environment when there is one (Debian's python3 may have no pip)
here="$(cd "$(dirname "$0")/.." && pwd)"
python="python3"
[[ -x "$here/.venv/bin/python" ]] && python="$here/.venv/bin/python"

mkdir -p "$dest"
work="$dest/download"
mkdir -p "$work"
if ! ls "$work"/llama_cpp_python-"$version".tar.gz >/dev/null 2>&1; then
    "$python" -m pip download -q --no-deps --no-binary llama-cpp-python "llama-cpp-python==$version" -d "$work"
fi
if [[ ! -d "$dest/src" ]]; then
    tar -xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
    mv "$work/llama_cpp_python-$version/vendor/llama.cpp" "$dest/src"
    rm -rf "$work/llama_cpp_python-$version"
fi

cmake -S "$dest/src" -B "$dest/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >&2
cmake --build "$dest/build" --target llama-server -j "$jobs" >&2
mkdir -p "$dest/bin"
cp "$dest/build/bin/llama-server" "$dest/bin/llama-server"
echo "$dest"
