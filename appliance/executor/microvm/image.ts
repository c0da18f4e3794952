// Where the noir microVM image lives (built by scripts/ci/images/microvm.sh):
// $NOIR_IMAGES/microvm/{vmlinuz,initramfs.cpio.gz}, NOIR_IMAGES defaulting to /var/lib/noir/images.
import { existsSync } from 'node:fs'
import { join } from 'node:path'

export interface MicrovmImage {
  kernel: string
  initrd: string
}

export function imagesRoot(): string {
  return process.env.NOIR_IMAGES ?? '/var/lib/noir/images'
}

/** The noir test image: a Debian kernel and a busybox initramfs whose init runs `command` (spec/microvm.md). */
export function defaultMicrovmImage(): MicrovmImage {
  const dir = join(imagesRoot(), 'microvm')
  // vmlinux (decompressed, PVH entry) boots seconds faster under TCG than the packaged bzImage.
  const vmlinux = join(dir, 'vmlinux')
  return { kernel: existsSync(vmlinux) ? vmlinux : join(dir, 'vmlinuz'), initrd: join(dir, 'initramfs.cpio.gz') }
}
