#!/usr/bin/env bash
# Install gVisor's runsc (Debian package) and register it with Docker as the "runsc" runtime.
# Run as root. Containers under runsc get no network (--network=none), which the sandbox
# wants anyway; dockerd is told to reload its runtimes, so running containers are untouched.
set -euo pipefail

if ! command -v runsc >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq runsc >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq runsc >/dev/null || {
            echo "runsc is not in the apt sources; see https://gvisor.dev/docs/user_guide/install/" >&2
            exit 1
        }
    fi
fi

mkdir -p /etc/docker
python3 - "$(command -v runsc)" <<'PY'
import json, pathlib, sys
path = pathlib.Path("/etc/docker/daemon.json")
config = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else {}
config.setdefault("runtimes", {})["runsc"] = {"path": sys.argv[1], "runtimeArgs": ["--network=none"]}
path.write_text(json.dumps(config, indent=2) + "\n")
PY

if pid=$(pidof dockerd); then
    kill -HUP "$pid"  # dockerd reloads its runtimes on SIGHUP
    for _ in $(seq 20); do
        docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q runsc && exit 0
        sleep 0.5
    done
    echo "dockerd did not pick up runsc; restart it" >&2
    exit 1
fi
