#!/usr/bin/env bash
# Start dockerd if no daemon answers. Containers use --network none, so no bridge is needed.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
nohup dockerd --bridge=none --iptables=false >/var/log/ossa-dockerd.log 2>&1 &
for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 1
done
echo "dockerd did not start; see /var/log/ossa-dockerd.log" >&2
exit 1
