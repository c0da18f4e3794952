// Signed trust records (spec/trust.md "Quarantine records"): a validator's statement that a node is
// quarantined, or readmitted. The signature covers
//   UTF-8("noir:trust-record:v1") || 0x00 || RFC 8785 canonical JSON of the body
// by the validator's did:key, named in the body, so a record is evidence on its own. Records spread over
// pubsub (noir/trust/v1) and are told to the node they name. A node applies one only when it verifies, comes
// from a validator it takes records from, is within its window, and is newer than the last record it applied
// from that validator about that node (a replayed or older record changes nothing and is refused).
import { signBody, verifyBody } from '../actors/contracts/signed.ts'
import type { NodeKey } from '../identity/keys.ts'
import { isDidKey } from '../identity/did-key.ts'
import { InvalidSignatureError } from '../actors/errors.ts'
import { ExpiredTrustRecordError, InvalidTrustRecordError, ReplayedTrustRecordError, TrustRecordSignatureError, UntrustedValidatorError } from './errors.ts'

export const TRUST_RECORD_TAG = 'noir:trust-record:v1'
export const TRUST_TOPIC = 'noir/trust/v1'
/** How long a record is good for: a quarantine outlives it only if the validator says so again. */
export const TRUST_RECORD_TTL_MS = 7 * 24 * 3600_000
const SKEW_MS = 30_000

export interface TrustRecordBody {
  v: 1
  kind: 'quarantine' | 'readmission'
  /** The node the record is about. */
  node: string
  /** The signer. */
  validator: string
  /** ms since the epoch; also the record's order: a newer record about the node supersedes an older one. */
  issuedAt: number
  expiresAt: number
  /** Why, for people (the node is told this). At most 500 characters. */
  reason: string
  /** The counts behind it. */
  evidence: { strikes: number; invalid: number; missed: number; judged: number }
}

export interface SignedTrustRecord {
  body: TrustRecordBody
  sig: string
}

export function signTrustRecord(key: NodeKey, b: Omit<TrustRecordBody, 'v' | 'validator' | 'expiresAt'> & { expiresAt?: number }): SignedTrustRecord {
  const body: TrustRecordBody = {
    v: 1, kind: b.kind, node: b.node, validator: key.did, issuedAt: b.issuedAt, expiresAt: b.expiresAt ?? b.issuedAt + TRUST_RECORD_TTL_MS,
    reason: b.reason.slice(0, 500), evidence: { ...b.evidence },
  }
  return { body, sig: signBody(key, TRUST_RECORD_TAG, body) }
}

const count = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0

/** The body's shape, every problem at once (InvalidTrustRecordError). */
export function checkTrustRecordShape(raw: unknown): SignedTrustRecord {
  const problems: string[] = []
  const r = raw as Partial<SignedTrustRecord> | null
  if (typeof r !== 'object' || r === null || typeof r.body !== 'object' || r.body === null) throw new InvalidTrustRecordError('a trust record is { body, sig }')
  const b = r.body as unknown as Record<string, unknown>
  const allowed = new Set(['v', 'kind', 'node', 'validator', 'issuedAt', 'expiresAt', 'reason', 'evidence'])
  for (const k of Object.keys(b)) if (!allowed.has(k)) problems.push(`body.${k}: unknown field`)
  if (b.v !== 1) problems.push('body.v: must be 1')
  if (b.kind !== 'quarantine' && b.kind !== 'readmission') problems.push('body.kind: quarantine or readmission')
  for (const f of ['node', 'validator'] as const) if (typeof b[f] !== 'string' || !isDidKey(b[f] as string)) problems.push(`body.${f}: a did:key`)
  for (const f of ['issuedAt', 'expiresAt'] as const) if (!Number.isSafeInteger(b[f]) || (b[f] as number) < 0) problems.push(`body.${f}: ms since the epoch`)
  if (typeof b.reason !== 'string' || b.reason.length > 500) problems.push('body.reason: text of at most 500 characters')
  const e = b.evidence as Record<string, unknown> | null
  if (typeof e !== 'object' || e === null || !['strikes', 'invalid', 'missed', 'judged'].every((k) => count(e[k])) || Object.keys(e).length !== 4) {
    problems.push('body.evidence: { strikes, invalid, missed, judged }, numbers >= 0')
  }
  if (typeof r.sig !== 'string') problems.push('sig: base64url text')
  if (problems.length > 0) throw new InvalidTrustRecordError(`trust record: ${problems.join('; ')}`, { problems })
  return r as SignedTrustRecord
}

export interface TrustRecordCheck {
  now: number
  /** Whether records of this validator are taken (this node itself and config `trust.validators`). */
  trusts(validator: string): boolean
  /** issuedAt of the last record applied from `validator` about `node` (undefined: none). */
  lastApplied(validator: string, node: string): number | undefined
}

/**
 * Verifies a received record: shape, signature (before anything else is believed), validator, window, and
 * order. Throws the typed error of the first failure; returns the body when the record may be applied.
 */
export function verifyTrustRecord(raw: unknown, c: TrustRecordCheck): TrustRecordBody {
  const r = checkTrustRecordShape(raw)
  const b = r.body
  try {
    verifyBody(b.validator, TRUST_RECORD_TAG, b, r.sig, 'trust record')
  } catch (err) {
    if (err instanceof InvalidSignatureError) throw new TrustRecordSignatureError(err.message, { validator: b.validator })
    throw err
  }
  if (!c.trusts(b.validator)) throw new UntrustedValidatorError(`trust record signed by ${b.validator}, not a validator this node takes records from`, { validator: b.validator })
  if (b.issuedAt > c.now + SKEW_MS) throw new ExpiredTrustRecordError('trust record issued in the future', { issuedAt: b.issuedAt, now: c.now })
  if (b.expiresAt < c.now) throw new ExpiredTrustRecordError('trust record expired', { expiresAt: b.expiresAt, now: c.now })
  const last = c.lastApplied(b.validator, b.node)
  if (last !== undefined && b.issuedAt <= last) {
    throw new ReplayedTrustRecordError(`trust record about ${b.node} issued at ${b.issuedAt}: one issued at ${last} was applied already`, { issuedAt: b.issuedAt, lastApplied: last })
  }
  return b
}
