#!/usr/bin/env bash
# Starts dockerd in the background (no systemd here) unless one already answers, and waits for its socket.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
command -v dockerd >/dev/null || { echo "no dockerd installed"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "not root: cannot start dockerd"; exit 0; }
nohup dockerd >/var/log/noir-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && { echo "dockerd up"; exit 0; }
  sleep 0.5
done
echo "dockerd did not come up; see /var/log/noir-dockerd.log" >&2
tail -20 /var/log/noir-dockerd.log >&2 || true
exit 1
