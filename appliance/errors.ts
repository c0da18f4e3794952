// Typed errors of the appliance: one class per failure, each with a stable `name` callers branch on.
// Every class carries the facts of the failure as fields so an API or a remote caller can report them.

/** Base class so callers can recognise any appliance error. */
export class ApplianceError extends Error {}

/** A share string or config value could not be parsed (`--share cpu=2,memory=4GiB`). */
export class InvalidShareError extends ApplianceError {
  override readonly name = 'InvalidShareError'
  readonly input: string
  constructor(input: string, why: string) {
    super(`invalid share '${input}': ${why}`)
    this.input = input
  }
}

/** A size such as `4GiB` could not be parsed. */
export class InvalidSizeError extends ApplianceError {
  override readonly name = 'InvalidSizeError'
  readonly input: string
  constructor(input: string) {
    super(`invalid size '${input}' (use a number with an optional unit: B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)`)
    this.input = input
  }
}

/** The owner shares more than the machine has. */
export class ShareExceedsHardwareError extends ApplianceError {
  override readonly name = 'ShareExceedsHardwareError'
  readonly resource: string
  readonly shared: number
  readonly available: number
  constructor(resource: string, shared: number, available: number) {
    super(`the share offers ${resource}=${shared} but this machine has only ${available}`)
    this.resource = resource
    this.shared = shared
    this.available = available
  }
}

/** A request asks for more than the owner's share leaves free (or than is really free on the machine). */
export class InsufficientCapacityError extends ApplianceError {
  override readonly name = 'InsufficientCapacityError'
  readonly resource: string
  readonly requested: number
  readonly free: number
  constructor(resource: string, requested: number, free: number) {
    super(`not enough ${resource}: requested ${requested}, free ${free}`)
    this.resource = resource
    this.requested = requested
    this.free = free
  }
}

/** A resource request is malformed (negative, not a number, unknown resource). */
export class InvalidResourceRequestError extends ApplianceError {
  override readonly name = 'InvalidResourceRequestError'
  constructor(why: string) {
    super(`invalid resource request: ${why}`)
  }
}

/** No port is left in the allocator's range. */
export class PortsExhaustedError extends ApplianceError {
  override readonly name = 'PortsExhaustedError'
  readonly requested: number
  readonly free: number
  constructor(requested: number, free: number) {
    super(`not enough ports in the range: requested ${requested}, free ${free}`)
    this.requested = requested
    this.free = free
  }
}

/** No reservation with this id (never made, released, or expired and reclaimed). */
export class ReservationNotFoundError extends ApplianceError {
  override readonly name = 'ReservationNotFoundError'
  readonly reservationId: string
  constructor(reservationId: string) {
    super(`no reservation '${reservationId}' (unknown, released, or expired)`)
    this.reservationId = reservationId
  }
}

/** The reservation's expiry passed before it was committed. */
export class ReservationExpiredError extends ApplianceError {
  override readonly name = 'ReservationExpiredError'
  readonly reservationId: string
  constructor(reservationId: string) {
    super(`reservation '${reservationId}' expired before it was committed`)
    this.reservationId = reservationId
  }
}

/** The container image is not present locally (images are never pulled). */
export class ImageNotFoundError extends ApplianceError {
  override readonly name = 'ImageNotFoundError'
  readonly image: string
  constructor(image: string) {
    super(`image '${image}' is not present on this node (images are never pulled; load or build it locally)`)
    this.image = image
  }
}

/** The executor does not know this handle (removed, or created by another node). */
export class UnknownInstanceError extends ApplianceError {
  override readonly name = 'UnknownInstanceError'
  readonly ref: string
  constructor(ref: string) {
    super(`no instance '${ref}' on this executor`)
    this.ref = ref
  }
}

/** The spec handed to an executor is not one it can run (wrong kind, bad limits, unreadable module). */
export class InvalidExecSpecError extends ApplianceError {
  override readonly name = 'InvalidExecSpecError'
  constructor(why: string) {
    super(`invalid exec spec: ${why}`)
  }
}

/** An allocation with this id already exists on this node (nothing runs twice). */
export class DuplicateAllocationError extends ApplianceError {
  override readonly name = 'DuplicateAllocationError'
  readonly allocationId: string
  constructor(allocationId: string) {
    super(`allocation '${allocationId}' already exists on this node`)
    this.allocationId = allocationId
  }
}

/** No allocation with this id on this node. */
export class AllocationNotFoundError extends ApplianceError {
  override readonly name = 'AllocationNotFoundError'
  readonly allocationId: string
  constructor(allocationId: string) {
    super(`no allocation '${allocationId}' on this node`)
    this.allocationId = allocationId
  }
}

/** No executor of this kind is configured or available on this node. */
export class ExecutorUnavailableError extends ApplianceError {
  override readonly name = 'ExecutorUnavailableError'
  readonly kind: string
  constructor(kind: string, why: string) {
    super(`executor '${kind}' is not available here: ${why}`)
    this.kind = kind
  }
}

/** An allocation request is malformed (bad id, unknown runtime kind, bad ports). */
export class InvalidAllocationError extends ApplianceError {
  override readonly name = 'InvalidAllocationError'
  constructor(why: string) {
    super(`invalid allocation: ${why}`)
  }
}
