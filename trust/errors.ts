// Every failure the trust layer reports, one class each, with a stable `name` and `code` (callers branch on
// the class or `name`, never on message text). Registered with core so a remote caller gets the same class.
// They are NoirErrors: an actor that refuses a record with one answers the sender with it (core/sdk.ts).
import { registerErrorClass } from '../core/wire-error.ts'
import { NoirError } from '../core/errors.ts'

export class TrustError extends NoirError {
  override name = 'TrustError'
  override readonly code: string = 'TRUST'
  /** The HTTP status a local API answers with. */
  readonly status: number = 409
  constructor(message: string, data?: Record<string, unknown>) {
    super(message, 'TRUST', data)
  }
}

/** A quarantine or readmission record that is not one: bad shape, bad field, wrong kind. */
export class InvalidTrustRecordError extends TrustError {
  override name = 'InvalidTrustRecordError'
  override readonly code = 'TRUST_RECORD_INVALID'
  override readonly status = 400
}

/** The record's signature does not verify for the validator it names (forged or altered). */
export class TrustRecordSignatureError extends TrustError {
  override name = 'TrustRecordSignatureError'
  override readonly code = 'TRUST_RECORD_SIGNATURE'
  override readonly status = 400
}

/** The record was signed by a DID this node does not take quarantine records from. */
export class UntrustedValidatorError extends TrustError {
  override name = 'UntrustedValidatorError'
  override readonly code = 'TRUST_UNTRUSTED_VALIDATOR'
  override readonly status = 403
}

/** A record already applied, or older than one applied for the same node and validator (a replay). */
export class ReplayedTrustRecordError extends TrustError {
  override name = 'ReplayedTrustRecordError'
  override readonly code = 'TRUST_RECORD_REPLAYED'
}

/** The record's validity window has passed (or it was issued in the future). */
export class ExpiredTrustRecordError extends TrustError {
  override name = 'ExpiredTrustRecordError'
  override readonly code = 'TRUST_RECORD_EXPIRED'
}

/** `noir trust show DID` for a node this node knows nothing of. */
export class UnknownNodeError extends TrustError {
  override name = 'UnknownNodeError'
  override readonly code = 'TRUST_UNKNOWN_NODE'
  override readonly status = 404
}

/** A fault-injection option without NOIR_TEST_FAULTS=1 (or a malformed one). */
export class FaultInjectionRefusedError extends TrustError {
  override name = 'FaultInjectionRefusedError'
  override readonly code = 'TRUST_FAULTS_REFUSED'
  override readonly status = 400
}

/** The trust section of config.json is malformed. */
export class InvalidTrustConfigError extends TrustError {
  override name = 'InvalidTrustConfigError'
  override readonly code = 'TRUST_CONFIG_INVALID'
  override readonly status = 400
}

/** The enrolment benchmark's output is not a measure (missing, malformed, or for another plan): never a pass. */
export class EnrolmentOutputError extends TrustError {
  override name = 'EnrolmentOutputError'
  override readonly code = 'TRUST_ENROLMENT_OUTPUT'
  override readonly status = 502
}

for (const cls of [TrustError, InvalidTrustRecordError, TrustRecordSignatureError, UntrustedValidatorError, ReplayedTrustRecordError, ExpiredTrustRecordError, UnknownNodeError, FaultInjectionRefusedError, InvalidTrustConfigError, EnrolmentOutputError]) registerErrorClass(cls)
