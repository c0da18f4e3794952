#!/usr/bin/env bash
# The microVM test image: a Debian kernel (package linux-image-<version>-amd64) and an initramfs made of
# busybox-static, the few kernel modules the guest needs (virtio-mmio, 9p for the state share, virtio-blk and
# ext4 for a state disk, virtio-net)
# and the noir init (scripts/ci/images/microvm-init: no .sh suffix, since setup-system.sh runs every *.sh here).
# Debian packages only, no registry.
#
# Output: $NOIR_IMAGES/microvm/ (default /var/lib/noir/images/microvm/):
#   vmlinuz             the kernel as packaged (compressed bzImage)
#   vmlinux             the same kernel decompressed (ELF with a PVH entry): QEMU boots it directly, which
#                       saves the guest's decompression, seconds under software emulation (TCG)
#   initramfs.cpio.gz   busybox + modules + /init
#   image.env           KERNEL_VERSION=..., INIT_SHA256=..., what the image was built from
# Idempotent and quick: when image.env matches the kernel and the init script, nothing is rebuilt.
# The kernel comes from /boot + /lib/modules when that kernel is installed; otherwise the kernel package is
# fetched with `apt-get download` and unpacked with `dpkg-deb -x` (installing linux-image-amd64 would run
# update-initramfs, which is slow and useless here).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${NOIR_IMAGES:-/var/lib/noir/images}/microvm"
init_src="$here/microvm-init"
# Modules the init loads, in dependency order (closure computed from modules.dep below).
want=(virtio_mmio 9pnet_virtio 9p virtio_net virtio_blk crc32c_generic ext4)

mkdir -p "$out" 2>/dev/null && [ -w "$out" ] || { echo "microvm image: cannot write $out (run as root or set NOIR_IMAGES); skipping"; exit 0; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work" # apt-get download runs as _apt and must write here

# 1. Find a kernel with its modules: an installed one, or the Debian package unpacked into $work.
kver="" kroot=""
# NOIR_MICROVM_KERNEL=apt forces the download path (what a bare CI machine or a container without /boot does).
for k in /boot/vmlinuz-*-amd64; do
  [ "${NOIR_MICROVM_KERNEL:-}" = apt ] && break
  [ -e "$k" ] || continue
  v="${k#/boot/vmlinuz-}"
  if [ -r "$k" ] && [ -f "/lib/modules/$v/modules.dep" ]; then kver="$v" kroot=""; fi
done
if [ -z "$kver" ]; then
  command -v apt-get >/dev/null || { echo "microvm image: no kernel in /boot and no apt-get; skipping"; exit 0; }
  pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
  if [ -z "$pkg" ]; then apt-get update -qq; pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"; fi
  [ -n "$pkg" ] || { echo "microvm image: cannot resolve the kernel package behind linux-image-amd64"; exit 1; }
  (cd "$work" && apt-get download -qq "$pkg" >/dev/null)
  mkdir -p "$work/kernel"
  dpkg-deb -x "$work"/"$pkg"_*.deb "$work/kernel"
  kver="${pkg#linux-image-}"
  kroot="$work/kernel"
fi
vmlinuz="$kroot/boot/vmlinuz-$kver"
moddir="$kroot/lib/modules/$kver"
[ -d "$moddir" ] || moddir="$kroot/usr/lib/modules/$kver"
# A package unpacked with dpkg-deb has no modules.dep (depmod makes it at install time): make it here.
if [ ! -f "$moddir/modules.dep" ] && [ -n "$kroot" ] && command -v depmod >/dev/null; then
  depmod -b "$kroot" "$kver" 2>/dev/null || depmod -b "$kroot/usr" "$kver"
fi
[ -f "$vmlinuz" ] && [ -f "$moddir/modules.dep" ] || { echo "microvm image: kernel $kver incomplete"; exit 1; }

# 2. busybox-static (statically linked: it is the whole userland).
bb=/bin/busybox
if ! file -L "$bb" 2>/dev/null | grep -q 'statically linked' && ! ldd "$bb" 2>&1 | grep -q 'not a dynamic'; then
  command -v apt-get >/dev/null || { echo "microvm image: no busybox-static; skipping"; exit 0; }
  (cd "$work" && apt-get download -qq busybox-static >/dev/null)
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/bb"
  bb="$work/bb/bin/busybox"
fi

init_sum="$(sha256sum "$init_src" | cut -d' ' -f1)"
stamp="KERNEL_VERSION=$kver
INIT_SHA256=$init_sum
MODULES=${want[*]}"
if [ -f "$out/image.env" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/vmlinux" ] && [ -f "$out/initramfs.cpio.gz" ] && [ "$(cat "$out/image.env")" = "$stamp" ]; then
  echo "microvm image up to date in $out (kernel $kver)"
  exit 0
fi

# 3. The initramfs tree.
root="$work/root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,state,noir,etc,lib/modules}
cp "$bb" "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
cp "$init_src" "$root/init"
chmod 0755 "$root/init"
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
chmod 1777 "$root/tmp"

# Module closure, dependencies first (modules.dep lists a module's dependencies after the colon).
declare -A seen=()
order=()
visit() {
  local name="$1" line path deps d
  line="$(grep -E "/${name}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | head -1 || true)"
  if [ -z "$line" ]; then
    # Built into this kernel: nothing to load.
    grep -qE "/${name}\.ko" "$moddir/modules.builtin" && return 0
    echo "microvm image: module $name not found for $kver" >&2; exit 1
  fi
  path="${line%%:*}"
  [ -n "${seen[$path]:-}" ] && return 0
  seen[$path]=1
  deps="${line#*:}"
  for d in $deps; do visit "$(basename "$d" | sed -E 's/\.ko(\.[a-z]+)?$//')"; done
  order+=("$path")
}
for m in "${want[@]}"; do visit "$m"; done
: > "$root/lib/modules/load-order"
for p in "${order[@]}"; do
  f="$(basename "$p")"
  case "$f" in
    *.ko) cp "$moddir/$p" "$root/lib/modules/$f" ;;
    *.ko.xz) xz -dc "$moddir/$p" > "$root/lib/modules/${f%.xz}"; f="${f%.xz}" ;;
    *.ko.zst) zstd -qdc "$moddir/$p" > "$root/lib/modules/${f%.zst}"; f="${f%.zst}" ;;
    *.ko.gz) gzip -dc "$moddir/$p" > "$root/lib/modules/${f%.gz}"; f="${f%.gz}" ;;
  esac
  echo "$f" >> "$root/lib/modules/load-order"
done

# 4. Pack and install atomically.
mkdir -p "$out"
(cd "$root" && find . | "$root/bin/busybox" cpio -o -H newc 2>/dev/null) | gzip -6 > "$work/initramfs.cpio.gz"
cp "$vmlinuz" "$work/vmlinuz"
# Decompress the bzImage payload (xz on Debian; gzip and zstd handled too) into an ELF vmlinux when the
# kernel has a PVH entry (CONFIG_PVH=y); otherwise vmlinux is a copy of vmlinuz and the guest decompresses.
config="$kroot/boot/config-$kver"
extract() {
  local magic="$1" tool="$2" off
  off="$(grep -abo -m1 "$magic" "$vmlinuz" | head -1 | cut -d: -f1 || true)"
  [ -n "$off" ] || return 1
  tail -c +"$((off + 1))" "$vmlinuz" | $tool > "$work/vmlinux" 2>/dev/null || true
  head -c 4 "$work/vmlinux" | grep -q 'ELF'
}
if grep -q '^CONFIG_PVH=y' "$config" 2>/dev/null && \
   { { command -v xz >/dev/null && extract $'\xfd7zXZ\x00' 'xz -dc --single-stream'; } || \
     { command -v zstd >/dev/null && extract $'\x28\xb5\x2f\xfd' 'zstd -qdc'; } || \
     extract $'\x1f\x8b\x08' 'gzip -dc'; }; then
  echo "microvm image: kernel decompressed to vmlinux (PVH boot)"
else
  cp "$vmlinuz" "$work/vmlinux"
fi
chmod 0644 "$work/vmlinuz" "$work/vmlinux" "$work/initramfs.cpio.gz"
mv -f "$work/vmlinuz" "$out/vmlinuz"
mv -f "$work/vmlinux" "$out/vmlinux"
mv -f "$work/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
printf '%s\n' "$stamp" > "$out/image.env"
echo "built microvm image in $out (kernel $kver, modules: $(tr '\n' ' ' < "$root/lib/modules/load-order"))"
