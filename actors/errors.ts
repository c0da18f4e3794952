// Every failure the orchestration layer reports, one class each, with a stable `name` and `code`.
// Callers branch on the class or `name`, never on message text. `data` carries what a CLI or a remote
// caller needs to explain the failure (it crosses the wire as `{ name, code, message, data }`).

export class OrchestrationError extends Error {
  override name = 'OrchestrationError'
  readonly code: string = 'ORCHESTRATION'
  /** The HTTP status a local API answers with. */
  readonly status: number = 409
  readonly data: Record<string, unknown> | undefined
  constructor(message: string, data?: Record<string, unknown>) {
    super(message)
    this.data = data
  }
  toJSON(): { name: string; code: string; message: string; data?: Record<string, unknown> } {
    return { name: this.name, code: this.code, message: this.message, ...(this.data ? { data: this.data } : {}) }
  }
}

/** One problem found in a workload object: a JSON path (`$.resources.cpu`) and the reason. */
export interface WorkloadIssue {
  path: string
  reason: string
}

/** The workload text is not YAML/JSON at all. */
export class WorkloadParseError extends OrchestrationError {
  override name = 'WorkloadParseError'
  override readonly code = 'WORKLOAD_PARSE'
  override readonly status = 400
}

/** The workload parsed but breaks the schema or a rule; `issues` lists every problem with its path. */
export class InvalidWorkloadError extends OrchestrationError {
  override name = 'InvalidWorkloadError'
  override readonly code = 'WORKLOAD_INVALID'
  override readonly status = 400
  readonly issues: WorkloadIssue[]
  constructor(issues: WorkloadIssue[]) {
    super(issues.map((i) => `${i.path}: ${i.reason}`).join('; '), { issues })
    this.issues = issues
  }
}

/** No node can satisfy the request; `data` names the constraint no node met and the nearest candidate. */
export class InfeasibleError extends OrchestrationError {
  override name = 'InfeasibleError'
  override readonly code = 'INFEASIBLE'
  override readonly status = 422
}

/** A bid, bid request or contract whose signature does not verify, or is signed by the wrong party. */
export class InvalidSignatureError extends OrchestrationError {
  override name = 'InvalidSignatureError'
  override readonly code = 'INVALID_SIGNATURE'
  override readonly status = 400
}

/** A signed object that is malformed, expired, or whose terms do not match what was proposed. */
export class InvalidTermsError extends OrchestrationError {
  override name = 'InvalidTermsError'
  override readonly code = 'INVALID_TERMS'
  override readonly status = 400
}

/** Contract terms of a version this node no longer accepts (v1, whose price was a float): `data.required` is the version to send. */
export class UnsupportedTermsVersionError extends OrchestrationError {
  override name = 'UnsupportedTermsVersionError'
  override readonly code = 'UNSUPPORTED_TERMS_VERSION'
  override readonly status = 400
}

/** An owner's price policy (config `orchestration.price`) with a field that is not a whole non-negative number of its unit; `data.field`, `data.unit`. */
export class InvalidPricePolicyError extends OrchestrationError {
  override name = 'InvalidPricePolicyError'
  override readonly code = 'PRICE_POLICY_INVALID'
  override readonly status = 400
}

/** The provider could not reserve what it bid for (two-phase reservation refused). */
export class ReservationFailedError extends OrchestrationError {
  override name = 'ReservationFailedError'
  override readonly code = 'RESERVATION_FAILED'
}

/** The bid request's workload does not fit this node; `data.reasons` says why. */
export class WillNotBidError extends OrchestrationError {
  override name = 'WillNotBidError'
  override readonly code = 'WILL_NOT_BID'
}

/** A contract with an epoch older than the one this node already holds for the same slot. */
export class StaleEpochError extends OrchestrationError {
  override name = 'StaleEpochError'
  override readonly code = 'STALE_EPOCH'
}

/** The provider could not start the work of a contract; its reservation was released at once. */
export class WorkloadStartError extends OrchestrationError {
  override name = 'WorkloadStartError'
  override readonly code = 'WORKLOAD_START'
}

/** A fence (or other slot operation) for a slot this node holds no contract of the sender's for. */
export class UnknownSlotError extends OrchestrationError {
  override name = 'UnknownSlotError'
  override readonly code = 'UNKNOWN_SLOT'
  override readonly status = 404
}

export class DeploymentNotFoundError extends OrchestrationError {
  override name = 'DeploymentNotFoundError'
  override readonly code = 'DEPLOYMENT_NOT_FOUND'
  override readonly status = 404
}

/** A node could not stop (or could not confirm it stopped) an instance it runs under a contract. */
export class StopFailedError extends OrchestrationError {
  override name = 'StopFailedError'
  override readonly code = 'STOP_FAILED'
}

export class ContractNotFoundError extends OrchestrationError {
  override name = 'ContractNotFoundError'
  override readonly code = 'CONTRACT_NOT_FOUND'
  override readonly status = 404
}

/** An event the deployment state machine cannot take in its current state. */
export class InvalidTransitionError extends OrchestrationError {
  override name = 'InvalidTransitionError'
  override readonly code = 'INVALID_TRANSITION'
}

/** The orchestration of a deployment was handed over to a standby orchestrator: the sender no longer acts for it. */
export class HandedOverError extends OrchestrationError {
  override name = 'HandedOverError'
  override readonly code = 'HANDED_OVER'
}

/** A node sent deployment snapshots or a takeover to a node that is not its named standby (or without the capability). */
export class NotStandbyError extends OrchestrationError {
  override name = 'NotStandbyError'
  override readonly code = 'NOT_STANDBY'
  override readonly status = 403
}

/** A lease renewal (or a question about contracts) from a node that does not act for the contract's consumer. */
export class NotContractConsumerError extends OrchestrationError {
  override name = 'NotContractConsumerError'
  override readonly code = 'NOT_CONTRACT_CONSUMER'
  override readonly status = 403
}

/** A contract whose lease ran out (its consumer stopped renewing it): the work was stopped and its hold released. */
export class LeaseExpiredError extends OrchestrationError {
  override name = 'LeaseExpiredError'
  override readonly code = 'LEASE_EXPIRED'
}

/** A create retried with an idempotency key that named a different workload (or a malformed key). */
export class IdempotencyConflictError extends OrchestrationError {
  override name = 'IdempotencyConflictError'
  override readonly code = 'IDEMPOTENCY_CONFLICT'
}

/**
 * A heartbeat body the capacity index will not take (actors/placement/capacity-report.ts): a field missing,
 * of the wrong type or out of range, or a body naming another node than its signer. `issues` lists every
 * problem with its JSON path, as InvalidWorkloadError does. Nothing of a refused body is indexed.
 */
export class InvalidHeartbeatError extends OrchestrationError {
  override name = 'InvalidHeartbeatError'
  override readonly code = 'HEARTBEAT_INVALID'
  override readonly status = 400
  readonly issues: WorkloadIssue[]
  constructor(issues: WorkloadIssue[]) {
    super(issues.map((i) => `${i.path}: ${i.reason}`).join('; '), { issues })
    this.issues = issues
  }
}

/** The capacity index holds its most nodes and none of them is stale: a new node is not taken. */
export class CapacityIndexFullError extends OrchestrationError {
  override name = 'CapacityIndexFullError'
  override readonly code = 'CAPACITY_INDEX_FULL'
  override readonly status = 503
}

/**
 * The consumer's wallet cannot hold what the work would cost (spec/ledger.md "Escrow"): refused before
 * placement (an estimate at create) or at commit (the hold itself), never after the work ran.
 * `data: { needed, available }` in µNLC (decimal strings).
 */
export class InsufficientFundsError extends OrchestrationError {
  override name = 'InsufficientFundsError'
  override readonly code = 'INSUFFICIENT_FUNDS'
  override readonly status = 402
}

/** A usage record refused before it is judged: malformed, forged, not for a contract of this consumer with its sender. */
export class InvalidUsageError extends OrchestrationError {
  override name = 'InvalidUsageError'
  override readonly code = 'INVALID_USAGE'
  override readonly status = 400
}

/** A usage record whose (contract, seq) was answered before with other content, or that overlaps an answered one. */
export class UsageConflictError extends OrchestrationError {
  override name = 'UsageConflictError'
  override readonly code = 'USAGE_CONFLICT'
}

/**
 * A provider asked this consumer to cosign a checkpoint of its ledger that the consumer cannot vouch for: a
 * receipt that is not the amount this consumer accepted, a receipt of another consumer or of a record it never
 * answered (spec/ledger.md "Cosigned checkpoints").
 */
export class ReceiptMismatchError extends OrchestrationError {
  override name = 'ReceiptMismatchError'
  override readonly code = 'RECEIPT_MISMATCH'
  override readonly status = 400
}

/**
 * A provider's checkpoint that does not extend the one this consumer cosigned last (no consistency proof, a
 * proof that does not verify, a smaller size, or another root at the same size): its log was rewritten or
 * forked. `data: { size, root }` is the checkpoint this consumer cosigned last, to prove consistency from.
 */
export class LogConsistencyError extends OrchestrationError {
  override name = 'LogConsistencyError'
  override readonly code = 'LOG_CONSISTENCY'
}

/** `noir migrate`: the replica asked for is not running (unknown index, placing, lost, stopped), or the deployment is not live. */
export class ReplicaNotRunningError extends OrchestrationError {
  override name = 'ReplicaNotRunningError'
  override readonly code = 'REPLICA_NOT_RUNNING'
  override readonly status = 409
}

/** `noir migrate`: a migration of this deployment is already queued or in flight. */
export class MigrationInProgressError extends OrchestrationError {
  override name = 'MigrationInProgressError'
  override readonly code = 'MIGRATION_IN_PROGRESS'
  override readonly status = 409
}

/** `noir migrate`: no node other than the replica's own fits the workload (or the node named declined); nothing moved. */
export class NoMigrationTargetError extends OrchestrationError {
  override name = 'NoMigrationTargetError'
  override readonly code = 'NO_MIGRATION_TARGET'
  override readonly status = 409
}

/** `noir migrate`: the move started but did not finish (the new replica did not start); `data` says where the slot stands. */
export class MigrationFailedError extends OrchestrationError {
  override name = 'MigrationFailedError'
  override readonly code = 'MIGRATION_FAILED'
  override readonly status = 502
}

/** A provider cannot checkpoint the instance asked for (no instance, a runner without checkpoints, the archive failed). */
export class CheckpointUnavailableError extends OrchestrationError {
  override name = 'CheckpointUnavailableError'
  override readonly code = 'CHECKPOINT_UNAVAILABLE'
  override readonly status = 409
}
