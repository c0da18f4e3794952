// The QEMU command line of one microVM instance, built from its ExecSpec (pure: unit-tested).
import type { ExecSpec } from '../executor.ts'
import { InvalidExecSpecError } from '../../errors.ts'
import { accelArgs, tcgKernelParams, type Accelerator } from './accel.ts'
import { incomingArgs } from './vm-state.ts'

/** The state disk's file in the state directory, and the saved VM state beside it (spec/microvm.md "State disk"). */
export const STATE_DISK_FILE = 'disk.img'
export const VM_STATE_FILE = 'vm.state'
/** The ext2 label the guest init finds the state disk by. */
export const STATE_DISK_LABEL = 'noir-state'

export interface QemuLaunch {
  accel: Accelerator
  kernel: string
  /** The instance's initramfs (the image's plus the workload archive), if any. */
  initrd?: string
  rootfs?: string
  /** The state disk (`<stateDir>/disk.img`): attached read-write instead of the 9p share of the state directory. */
  stateDisk?: string
  /** A QMP socket for this QEMU (save and resume). */
  qmp?: string
  /** A saved state file this QEMU loads before it runs (`-incoming`); it then waits, paused, for `cont`. */
  incoming?: string
  /** Kernel command line. */
  append: string
  memoryMiB: number
  cpus: number
}

/** QEMU -m in MiB for a memory limit in bytes (rounded up; QEMU's own overhead is outside it). */
export const memoryMiB = (bytes: number): number => Math.max(1, Math.ceil(bytes / (1024 * 1024)))

/** vCPUs for a CPU share: at least one, and the fractional part is enforced by the host cgroup quota. */
export const vcpus = (cpu: number): number => Math.max(1, Math.ceil(cpu))

/** QEMU option values separate fields with commas; a comma inside a value is doubled. */
const optValue = (s: string): string => s.replace(/,/g, ',,')

/** The kernel command line: console on the first serial port, no PCI (microvm has none), reboot ends QEMU. */
export function kernelCommandLine(spec: ExecSpec, accel: Accelerator): string {
  if (spec.runtime.kind !== 'microvm') throw new InvalidExecSpecError(`runtime kind '${spec.runtime.kind}' is not microvm`)
  // loglevel=2: only critical kernel messages reach the console, which is the workload's log.
  const state = spec.runtime.stateDiskBytes !== undefined ? 'disk' : '9p'
  const parts = ['console=ttyS0', 'loglevel=2', 'panic=-1', 'reboot=t', 'pci=off', `noir.state=${state}`]
  if (accel === 'tcg') parts.push(...tcgKernelParams())
  if (spec.network !== 'none') parts.push('noir.net=user')
  if (spec.runtime.append !== undefined && spec.runtime.append.trim() !== '') parts.push(spec.runtime.append.trim())
  return parts.join(' ')
}

export function qemuArgs(spec: ExecSpec, launch: QemuLaunch): string[] {
  const args = [
    '-name', `noir-${spec.allocationId}`,
    '-M', 'microvm',
    ...accelArgs(launch.accel),
    '-m', String(launch.memoryMiB),
    '-smp', String(launch.cpus),
    '-nodefaults', '-no-user-config', '-display', 'none',
    // The guest's reboot (its init's last act) ends QEMU instead of restarting the guest.
    '-no-reboot',
    '-serial', 'stdio',
    '-kernel', launch.kernel,
    '-append', launch.append,
  ]
  if (launch.initrd !== undefined) args.push('-initrd', launch.initrd)
  if (launch.rootfs !== undefined) {
    // snapshot=on: writes go to a temporary overlay, the image file is never changed.
    args.push('-drive', `id=rootfs,file=${optValue(launch.rootfs)},format=raw,if=none,snapshot=on`, '-device', 'virtio-blk-device,drive=rootfs')
  }
  if (launch.stateDisk !== undefined) {
    // read-write, no overlay: the disk is the guest's state; the guest is paused when it is saved or copied
    args.push('-drive', `id=state,file=${optValue(launch.stateDisk)},format=raw,if=none`, '-device', 'virtio-blk-device,drive=state')
  } else {
    args.push(
      '-fsdev', `local,id=state,path=${optValue(spec.stateDir)},security_model=none`,
      '-device', 'virtio-9p-device,fsdev=state,mount_tag=state',
    )
  }
  if (spec.network === 'none') {
    args.push('-nic', 'none')
  } else {
    // User-mode networking, restricted: the guest reaches nothing outside; only the published ports come in,
    // on 127.0.0.1.
    const fwd = spec.network.ports.map((p) => `hostfwd=${p.protocol}:127.0.0.1:${p.hostPort}-:${p.containerPort}`)
    args.push('-netdev', ['user', 'id=net0', 'restrict=on', ...fwd].join(','), '-device', 'virtio-net-device,netdev=net0')
  }
  if (launch.qmp !== undefined) args.push('-qmp', `unix:${optValue(launch.qmp)},server=on,wait=off`)
  if (launch.incoming !== undefined) args.push(...incomingArgs(launch.incoming))
  return args
}
