// Every failure the actor kernel reports, one class per failure, each with a stable `name` and `code`.
// Callers branch on the class or on `name`, never on message text. Errors cross the wire as
// `{ name, code, message, data? }` (spec/actors.md, "Errors on the wire") and come back as an instance of
// the registered class with the same `name` (see core/wire-error.ts).
// identity/ already defines InvalidAddressError and CapabilityDeniedError: core uses those (one class per name).
export { InvalidAddressError, CapabilityDeniedError } from '../identity/index.ts'

/** JSON-safe extra detail carried by an error. */
export type ErrorData = Record<string, unknown>

/** Base of every typed error in NoirLedger's actor world. */
export class NoirError extends Error {
  /** Stable machine-readable code, e.g. `ACTOR_NOT_FOUND`. */
  readonly code: string
  readonly data: ErrorData | undefined

  constructor(message: string, code = 'ERR_NOIR', data?: ErrorData, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'NoirError'
    this.code = code
    this.data = data
  }
}

/** No actor lives at the address (never spawned, or already gone and its name released). */
export class ActorNotFoundError extends NoirError {
  constructor(address: string) {
    super(`no actor at ${address}`, 'ERR_ACTOR_NOT_FOUND', { address })
    this.name = 'ActorNotFoundError'
  }
}

/** The actor was stopped (by request, by its supervisor, or because its system is stopping). */
export class ActorStoppedError extends NoirError {
  constructor(address: string, reason?: string) {
    super(`actor ${address} is stopped${reason ? ` (${reason})` : ''}`, 'ERR_ACTOR_STOPPED', { address, ...(reason ? { reason } : {}) })
    this.name = 'ActorStoppedError'
  }
}

/** The actor crashed while handling the message (or before it could handle it). */
export class ActorCrashedError extends NoirError {
  constructor(address: string, cause?: unknown) {
    const why = cause instanceof Error ? cause.message : cause === undefined ? 'unknown' : String(cause)
    super(`actor ${address} crashed: ${why}`, 'ERR_ACTOR_CRASHED', { address, cause: why }, { cause })
    this.name = 'ActorCrashedError'
  }
}

/** An `ask` got no answer within its time-out. */
export class AskTimeoutError extends NoirError {
  constructor(address: string, behavior: string, timeoutMs: number) {
    super(`no answer from ${address} for ${behavior} within ${timeoutMs} ms`, 'ERR_ASK_TIMEOUT', { address, behavior, timeoutMs })
    this.name = 'AskTimeoutError'
  }
}

/** The receiver's mailbox is full: the message was not accepted (the sender may retry later). */
export class MailboxFullError extends NoirError {
  constructor(address: string, capacity: number) {
    super(`mailbox of ${address} is full (${capacity} messages)`, 'ERR_MAILBOX_FULL', { address, capacity })
    this.name = 'MailboxFullError'
  }
}

/** The receiver does not declare the behavior the message names. */
export class UnknownBehaviorError extends NoirError {
  constructor(address: string, behavior: string) {
    super(`actor ${address} has no behavior ${behavior}`, 'ERR_UNKNOWN_BEHAVIOR', { address, behavior })
    this.name = 'UnknownBehaviorError'
  }
}

/** The message body was refused by the behavior's `parse`. */
export class InvalidMessageError extends NoirError {
  constructor(behavior: string, why: string) {
    super(`invalid body for ${behavior}: ${why}`, 'ERR_INVALID_MESSAGE', { behavior, why })
    this.name = 'InvalidMessageError'
  }
}

/** An actor definition that cannot work (bad behavior path, no handler, bad supervision or mailbox settings). */
export class InvalidDefinitionError extends NoirError {
  constructor(message: string) {
    super(message, 'ERR_INVALID_DEFINITION')
    this.name = 'InvalidDefinitionError'
  }
}

/** A name is already registered in this system. */
export class NameTakenError extends NoirError {
  constructor(address: string) {
    super(`an actor is already registered at ${address}`, 'ERR_NAME_TAKEN', { address })
    this.name = 'NameTakenError'
  }
}

/** The ActorSystem is not running (not started yet, or stopped). */
export class SystemStoppedError extends NoirError {
  constructor(did: string) {
    super(`actor system ${did} is not running`, 'ERR_SYSTEM_STOPPED', { did })
    this.name = 'SystemStoppedError'
  }
}

/** No transport can reach the node. Transports reject `send` with this. */
export class UnreachableError extends NoirError {
  constructor(nodeDid: string, why?: string) {
    super(`node ${nodeDid} is unreachable${why ? `: ${why}` : ''}`, 'ERR_UNREACHABLE', { nodeDid, ...(why ? { why } : {}) })
    this.name = 'UnreachableError'
  }
}

/** The system has no transport, so a remote address cannot be served. */
export class NoTransportError extends NoirError {
  constructor(address: string) {
    super(`no transport configured to reach ${address}`, 'ERR_NO_TRANSPORT', { address })
    this.name = 'NoTransportError'
  }
}

/** No snapshot is stored under the key. */
export class SnapshotNotFoundError extends NoirError {
  constructor(key: string) {
    super(`no snapshot stored for ${key}`, 'ERR_SNAPSHOT_NOT_FOUND', { key })
    this.name = 'SnapshotNotFoundError'
  }
}

/** The snapshot belongs to another actor definition, or cannot be restored. */
export class SnapshotMismatchError extends NoirError {
  constructor(key: string, why: string) {
    super(`snapshot ${key} cannot be restored: ${why}`, 'ERR_SNAPSHOT_MISMATCH', { key, why })
    this.name = 'SnapshotMismatchError'
  }
}

/** The actor's persisted snapshot is not plain JSON (keep machine context serializable), or could not be saved. */
export class SnapshotNotSavedError extends NoirError {
  constructor(key: string, why: string) {
    super(`snapshot of ${key} was not saved: ${why}`, 'ERR_SNAPSHOT_NOT_SAVED', { key, why })
    this.name = 'SnapshotNotSavedError'
  }
}

/** A supervisor exceeded its restart intensity and gave up; carried to its parent (or reported at the root). */
export class RestartIntensityExceededError extends NoirError {
  constructor(address: string, maxRestarts: number, withinMs: number, cause?: unknown) {
    super(`${address} exceeded ${maxRestarts} restarts within ${withinMs} ms`, 'ERR_RESTART_INTENSITY', { address, maxRestarts, withinMs }, { cause })
    this.name = 'RestartIntensityExceededError'
  }
}

/** A reply envelope from a node that was not the one asked, or otherwise not matching. */
export class UnexpectedReplyError extends NoirError {
  constructor(why: string) {
    super(`unexpected reply: ${why}`, 'ERR_UNEXPECTED_REPLY', { why })
    this.name = 'UnexpectedReplyError'
  }
}

/** The envelope's sender DID is not the authenticated peer that delivered it, and no delegation allows it. */
export class SenderMismatchError extends NoirError {
  constructor(senderDid: string, peerDid: string) {
    super(`envelope from ${senderDid} arrived from peer ${peerDid} without a relay delegation`, 'ERR_SENDER_MISMATCH', { senderDid, peerDid })
    this.name = 'SenderMismatchError'
  }
}

/**
 * Too many inbound envelopes already wait for their signature checks (or their seals) before delivery: this
 * one is refused rather than kept (spec/actors.md, "Signature checks"). The sender may send it again later.
 */
export class UnverifiedBacklogError extends NoirError {
  constructor(waiting: number, limit: number) {
    super(`${waiting} envelopes already wait for their signature checks (limit ${limit})`, 'ERR_UNVERIFIED_BACKLOG', { waiting, limit })
    this.name = 'UnverifiedBacklogError'
  }
}

/** The envelope is addressed to another node. */
export class MisaddressedError extends NoirError {
  constructor(to: string, localDid: string) {
    super(`envelope for ${to} arrived at ${localDid}`, 'MISADDRESSED', { to, localDid })
    this.name = 'MisaddressedError'
  }
}

/**
 * An error received from elsewhere whose `name` has no registered class here: it keeps the remote
 * `name`, `code`, `message` and `data`, so callers can still branch on `name`.
 */
export class RemoteError extends NoirError {
  constructor(name: string, code: string, message: string, data?: ErrorData) {
    super(message, code, data)
    this.name = name
  }
}

/** True when `err` is an Error whose `name` is `name` (works across module copies and the wire). */
export function isErrorNamed(err: unknown, name: string): boolean {
  return err instanceof Error && err.name === name
}
