#!/usr/bin/env bash
# Installs what the isolation tests need (Docker, gVisor's runsc, QEMU, a kernel, busybox, iproute2, PostgreSQL, Chromium, Prometheus), starts dockerd in the
# background when it is not running, and builds the local images (no image registry is reachable here).
# Runs as root on CI machines; elsewhere it does what it can and the tests that need more say why they skip.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v ip >/dev/null || missing+=(iproute2)
command -v iptables >/dev/null || missing+=(iptables)
command -v bwrap >/dev/null || missing+=(bubblewrap)
# gVisor: containers with runtime.checkpoint: process run under it, directly (no Docker runtime registration)
command -v runsc >/dev/null || missing+=(runsc)
command -v xz >/dev/null || missing+=(xz-utils)
command -v depmod >/dev/null || missing+=(kmod)
# mke2fs makes a microVM's state disk (appliance/executor/microvm, spec/microvm.md "State disk")
command -v mke2fs >/dev/null || [ -x /sbin/mke2fs ] || missing+=(e2fsprogs)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "cannot install ${missing[*]} (not root or no apt-get); tests that need them will say so"
  fi
fi
# the prometheus and postgresql packages start system services where systemd runs: the tests run their own
# on loopback (scripts/testing/postgres.ts makes a fresh cluster per test)
if command -v systemctl >/dev/null && systemctl is-enabled prometheus >/dev/null 2>&1; then
  systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null && systemctl is-enabled postgresql >/dev/null 2>&1; then
  systemctl disable --now postgresql >/dev/null 2>&1 || true
fi
bash "$here/start-dockerd.sh"
for s in "$here"/images/*.sh; do
  [ -e "$s" ] || continue
  echo "image: $(basename "$s")"
  bash "$s"
done
