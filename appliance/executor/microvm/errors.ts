// Typed errors of the microvm executor (stable `name`s; callers branch on the class or the name).
// Generic executor failures (unknown instance, invalid spec, executor unavailable) are appliance/errors.ts'.
import { ApplianceError } from '../../errors.ts'

/** The kernel, initramfs or rootfs named by the spec does not exist on this host. */
export class MicrovmImageNotFoundError extends ApplianceError {
  override readonly name = 'MicrovmImageNotFoundError'
  readonly path: string
  constructor(path: string, what: string) {
    super(`microVM ${what} '${path}' does not exist on this node (build it with scripts/ci/images/microvm.sh)`)
    this.path = path
  }
}

/** The guest ended (or QEMU failed) before its init reported that the workload started. */
export class MicrovmBootError extends ApplianceError {
  override readonly name = 'MicrovmBootError'
  readonly allocationId: string
  constructor(allocationId: string, why: string) {
    super(`microVM '${allocationId}' did not boot: ${why}`)
    this.allocationId = allocationId
  }
}

/** The accelerator asked for (e.g. kvm) cannot run a guest on this host. */
export class AcceleratorUnavailableError extends ApplianceError {
  override readonly name = 'AcceleratorUnavailableError'
  readonly accel: string
  constructor(accel: string, why: string) {
    super(`accelerator '${accel}' is not usable here: ${why}`)
    this.accel = accel
  }
}

/** QMP refused a command, or saving/resuming a guest's state did not complete. */
export class VmStateError extends ApplianceError {
  override readonly name = 'VmStateError'
}
