// Typed errors of the appliance: one class per failure, each with a stable `name` callers branch on.
// Every class carries the facts of the failure as fields so an API or a remote caller can report them.

/**
 * Base class so callers can recognise any appliance error. `status` is the HTTP status the local API answers
 * with, `code` a stable machine code, `data` the facts (both in the API's error document).
 */
export class ApplianceError extends Error {
  readonly status: number = 400
  readonly code: string = 'ERR_APPLIANCE'
  data?: Record<string, unknown>
}

/** A share string or config value could not be parsed (`--share cpu=2,memory=4GiB`). */
export class InvalidShareError extends ApplianceError {
  override readonly name = 'InvalidShareError'
  override readonly status = 400
  override readonly code = 'ERR_INVALID_SHARE'
  readonly input: string
  constructor(input: string, why: string) {
    super(`invalid share '${input}': ${why}`)
    this.input = input
  }
}

/** A size such as `4GiB` could not be parsed. */
export class InvalidSizeError extends ApplianceError {
  override readonly name = 'InvalidSizeError'
  override readonly status = 400
  override readonly code = 'ERR_INVALID_SIZE'
  readonly input: string
  constructor(input: string) {
    super(`invalid size '${input}' (use a number with an optional unit: B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)`)
    this.input = input
  }
}

/** The owner shares more than the machine has. */
export class ShareExceedsHardwareError extends ApplianceError {
  override readonly name = 'ShareExceedsHardwareError'
  override readonly status = 400
  override readonly code = 'ERR_SHARE_EXCEEDS_HARDWARE'
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
  override readonly status = 409
  override readonly code = 'ERR_INSUFFICIENT_CAPACITY'
  readonly resource: string
  readonly requested: number
  readonly free: number
  constructor(resource: string, requested: number, free: number) {
    super(`not enough ${resource}: requested ${requested}, free ${free}`)
    this.resource = resource
    this.requested = requested
    this.free = free
    this.data = { resource, requested, free }
  }
}

/** A resource request is malformed (negative, not a number, unknown resource). */
export class InvalidResourceRequestError extends ApplianceError {
  override readonly name = 'InvalidResourceRequestError'
  override readonly status = 400
  override readonly code = 'ERR_INVALID_RESOURCE_REQUEST'
  constructor(why: string) {
    super(`invalid resource request: ${why}`)
  }
}

/** No port is left in the allocator's range. */
export class PortsExhaustedError extends ApplianceError {
  override readonly name = 'PortsExhaustedError'
  override readonly status = 409
  override readonly code = 'ERR_PORTS_EXHAUSTED'
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
  override readonly status = 404
  override readonly code = 'ERR_RESERVATION_NOT_FOUND'
  readonly reservationId: string
  constructor(reservationId: string) {
    super(`no reservation '${reservationId}' (unknown, released, or expired)`)
    this.reservationId = reservationId
  }
}

/** The reservation's expiry passed before it was committed. */
export class ReservationExpiredError extends ApplianceError {
  override readonly name = 'ReservationExpiredError'
  override readonly status = 410
  override readonly code = 'ERR_RESERVATION_EXPIRED'
  readonly reservationId: string
  constructor(reservationId: string) {
    super(`reservation '${reservationId}' expired before it was committed`)
    this.reservationId = reservationId
  }
}

/** The container image is not present locally (images are never pulled). */
export class ImageNotFoundError extends ApplianceError {
  override readonly name = 'ImageNotFoundError'
  override readonly status = 400
  override readonly code = 'ERR_IMAGE_NOT_FOUND'
  readonly image: string
  constructor(image: string) {
    super(`image '${image}' is not present on this node (images are never pulled; load or build it locally)`)
    this.image = image
  }
}

/** The executor does not know this handle (removed, or created by another node). */
export class UnknownInstanceError extends ApplianceError {
  override readonly name = 'UnknownInstanceError'
  override readonly status = 404
  override readonly code = 'ERR_UNKNOWN_INSTANCE'
  readonly ref: string
  constructor(ref: string) {
    super(`no instance '${ref}' on this executor`)
    this.ref = ref
  }
}

/** The spec handed to an executor is not one it can run (wrong kind, bad limits, unreadable module). */
export class InvalidExecSpecError extends ApplianceError {
  override readonly name = 'InvalidExecSpecError'
  override readonly status = 400
  override readonly code = 'ERR_INVALID_EXEC_SPEC'
  constructor(why: string) {
    super(`invalid exec spec: ${why}`)
  }
}

/** An allocation with this id already exists on this node (nothing runs twice). */
export class DuplicateAllocationError extends ApplianceError {
  override readonly name = 'DuplicateAllocationError'
  override readonly status = 409
  override readonly code = 'ERR_DUPLICATE_ALLOCATION'
  readonly allocationId: string
  constructor(allocationId: string) {
    super(`allocation '${allocationId}' already exists on this node`)
    this.allocationId = allocationId
  }
}

/** No allocation with this id on this node. */
export class AllocationNotFoundError extends ApplianceError {
  override readonly name = 'AllocationNotFoundError'
  override readonly status = 404
  override readonly code = 'ERR_ALLOCATION_NOT_FOUND'
  readonly allocationId: string
  constructor(allocationId: string) {
    super(`no allocation '${allocationId}' on this node`)
    this.allocationId = allocationId
  }
}

/** No executor of this kind is configured or available on this node. */
export class ExecutorUnavailableError extends ApplianceError {
  override readonly name = 'ExecutorUnavailableError'
  override readonly status = 400
  override readonly code = 'ERR_EXECUTOR_UNAVAILABLE'
  readonly kind: string
  constructor(kind: string, why: string) {
    super(`executor '${kind}' is not available here: ${why}`)
    this.kind = kind
  }
}

/** An allocation request is malformed (bad id, unknown runtime kind, bad ports). */
export class InvalidAllocationError extends ApplianceError {
  override readonly name = 'InvalidAllocationError'
  override readonly status = 400
  override readonly code = 'ERR_INVALID_ALLOCATION'
  constructor(why: string) {
    super(`invalid allocation: ${why}`)
  }
}

/** A workload names a catalog entry this node's owner has not installed (or a name that cannot be one). */
export class CatalogEntryNotFoundError extends ApplianceError {
  override readonly name = 'CatalogEntryNotFoundError'
  override readonly status = 404
  override readonly code = 'ERR_CATALOG_ENTRY_NOT_FOUND'
  constructor(kind: string, entry: string) {
    // Says nothing about the node's disk: only that the owner has not made this name available.
    super(`this node's catalog has no ${kind} named '${entry.slice(0, 64)}' (its owner adds one with \`noir catalog add ${kind} NAME FILE\`)`)
    this.data = { kind, entry: entry.slice(0, 64) }
  }
}

/** A catalog entry's bytes no longer match the digest recorded when the owner added it. */
export class CatalogEntryCorruptError extends ApplianceError {
  override readonly name = 'CatalogEntryCorruptError'
  override readonly status = 500
  override readonly code = 'ERR_CATALOG_ENTRY_CORRUPT'
}

/** `noir catalog` was given a kind, name or file it cannot take. */
export class InvalidCatalogEntryError extends ApplianceError {
  override readonly name = 'InvalidCatalogEntryError'
  override readonly status = 400
  override readonly code = 'ERR_INVALID_CATALOG_ENTRY'
}
