#!/usr/bin/env bash
# Install Codex CLI (npm's @openai/codex, which carries its own binary) for ossa's serve tests:
# `codex exec` is driven against `ossa serve`. Lands in ~/.cache/ossa/codex (OSSA_CODEX_CACHE
# moves it); a second run finds it there and does nothing. Node.js and npm come from Debian's
# packages where they are missing.
set -euo pipefail

version="${CODEX_VERSION:-0.171.0}"
dest="${OSSA_CODEX_CACHE:-$HOME/.cache/ossa/codex}"

if [[ -x "$dest/node_modules/.bin/codex" ]] \
    && grep -q "\"version\": \"$version\"" "$dest/node_modules/@openai/codex/package.json" 2>/dev/null; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >&2
fi
mkdir -p "$dest"
npm install --silent --no-audit --no-fund --prefix "$dest" "@openai/codex@$version" >&2
