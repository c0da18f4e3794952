// Usage records (spec/ledger.md "Metering"): what a provider says one contract's replica used over an
// interval, signed by the provider (domain tag noir:usage:v1), then answered by the consumer's orchestrator
// with a countersignature or a dispute (noir:usage-answer:v1 over the record and the answer), so both sides
// hold the same evidence. Amounts are µNLC (1 NLC = 1,000,000 µNLC) as decimal strings, computed with
// bigint: amount = ceil(pricePerHour × replicaMs / 3,600,000).
import type { NodeKey } from '../../identity/keys.ts'
import { InvalidUsageError } from '../errors.ts'
import { signBody, verifyBody } from '../contracts/signed.ts'

export const USAGE_TAG = 'noir:usage:v1'
export const USAGE_ANSWER_TAG = 'noir:usage-answer:v1'
export const MS_PER_HOUR = 3_600_000n
/** µNLC per NLC. */
export const MICRO = 1_000_000n

/** What the provider signs. */
export interface UsageBody {
  v: 1
  contractId: string
  deploymentId: string
  slot: string
  consumer: string
  provider: string
  /** 0, 1, 2, ... per contract, in the order issued. */
  seq: number
  /** ms since the epoch, provider's clock: the interval [from, to). */
  from: number
  to: number
  /** Milliseconds one replica ran within [from, to). */
  replicaMs: number
  /** Measured by the executor, where it can (absent when not measured, never 0 for "unknown"). */
  cpuMs?: number
  memoryByteMs?: string
  egressBytes?: string
  /** µNLC per replica-hour, as the contract says (decimal string). */
  pricePerHour: string
  /** µNLC (decimal string): ceil(pricePerHour × replicaMs / 3,600,000). */
  amount: string
  /** The last record of the contract (issued when its work ended). */
  final?: boolean
}

export type UsageVerdict = 'accepted' | 'disputed'

/** The consumer's answer: what it accepts of the record, and why when less. */
export interface UsageAnswer {
  verdict: UsageVerdict
  /** µNLC the consumer pays for this record (the full amount when accepted). */
  acceptedAmount: string
  acceptedReplicaMs: number
  /** Why it disputes (absent when accepted). */
  reason?: string
  /** ms since the epoch, consumer's clock. */
  at: number
  /**
   * The DID that answered and signed, when it is not the record's consumer: the standby orchestrator that took
   * the deployment over (spec/ledger.md "Metering after a takeover"). Absent: the consumer answered.
   */
  by?: string
}

export interface UsageRecord {
  body: UsageBody
  providerSig: string
  answer?: UsageAnswer
  consumerSig?: string
}

/** The one accessor of a contract's price, in µNLC per replica-hour (contract terms v2: spec/contracts.md). */
export { contractPricePerHour } from '../contracts/contract.ts'

/** µNLC for `replicaMs` at `pricePerHour` µNLC per replica-hour, rounded up. */
export function usageAmount(pricePerHour: bigint, replicaMs: number): bigint {
  if (!Number.isSafeInteger(replicaMs) || replicaMs < 0) throw new InvalidUsageError('replicaMs must be a whole number >= 0')
  return (pricePerHour * BigInt(replicaMs) + MS_PER_HOUR - 1n) / MS_PER_HOUR
}

export function signUsage(key: NodeKey, body: UsageBody): UsageRecord {
  if (body.provider !== key.did) throw new InvalidUsageError(`usage record names provider ${body.provider}, not the signer ${key.did}`)
  return { body, providerSig: signBody(key, USAGE_TAG, body) }
}

const isDec = (s: unknown): s is string => typeof s === 'string' && /^(0|[1-9][0-9]{0,38})$/.test(s)
const isMs = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0

/** Checks the shape of a record body from the wire (every field, no others). */
export function checkUsageBody(x: unknown): UsageBody {
  const b = x as UsageBody
  if (!b || typeof b !== 'object' || Array.isArray(b)) throw new InvalidUsageError('usage record: body is not an object')
  const allowed = ['v', 'contractId', 'deploymentId', 'slot', 'consumer', 'provider', 'seq', 'from', 'to', 'replicaMs', 'cpuMs', 'memoryByteMs', 'egressBytes', 'pricePerHour', 'amount', 'final']
  for (const k of Object.keys(b)) if (!allowed.includes(k)) throw new InvalidUsageError(`usage record: unknown field '${k}'`)
  const str = (k: keyof UsageBody): boolean => typeof b[k] === 'string' && (b[k] as string).length > 0 && (b[k] as string).length <= 256
  const ok = b.v === 1 && str('contractId') && /^[A-Za-z0-9._-]{1,100}$/.test(b.contractId) && str('deploymentId') && str('slot') && str('consumer') && str('provider') &&
    isMs(b.seq) && b.seq < 1e9 && isMs(b.from) && isMs(b.to) && b.to >= b.from && isMs(b.replicaMs) && isDec(b.pricePerHour) && isDec(b.amount) &&
    (b.cpuMs === undefined || isMs(b.cpuMs)) && (b.memoryByteMs === undefined || isDec(b.memoryByteMs)) && (b.egressBytes === undefined || isDec(b.egressBytes)) &&
    (b.final === undefined || b.final === true)
  if (!ok) throw new InvalidUsageError('usage record: malformed body')
  return b
}

/** Verifies the provider's signature over a record from the wire; returns its body. */
export function verifyUsage(x: unknown): UsageBody {
  const r = x as UsageRecord
  if (!r || typeof r !== 'object') throw new InvalidUsageError('usage record: malformed')
  const body = checkUsageBody(r.body)
  verifyBody(body.provider, USAGE_TAG, body, r.providerSig, 'usage record (provider)')
  return body
}

/**
 * Answers a record, signed by `key`: the record's consumer, or (`by` set to its DID) the standby orchestrator
 * acting for it after a takeover (who may answer is decided by the caller: UsageDesk).
 */
export function answerUsage(key: NodeKey, record: UsageRecord, answer: UsageAnswer): UsageRecord {
  const { by: _ignored, ...rest } = answer
  answer = record.body.consumer === key.did ? rest : { ...rest, by: key.did }
  return { body: record.body, providerSig: record.providerSig, answer, consumerSig: signBody(key, USAGE_ANSWER_TAG, { body: record.body, answer }) }
}

/** Verifies both signatures of an answered record (what the provider checks before it credits). */
export function verifyAnswered(x: unknown): UsageRecord & { answer: UsageAnswer; consumerSig: string } {
  const body = verifyUsage(x)
  const r = x as UsageRecord
  const a = r.answer
  if (!a || typeof a !== 'object' || (a.verdict !== 'accepted' && a.verdict !== 'disputed') || !isDec(a.acceptedAmount) || !isMs(a.acceptedReplicaMs) || !isMs(a.at) ||
    (a.reason !== undefined && (typeof a.reason !== 'string' || a.reason.length > 1000)) || (a.verdict === 'disputed') !== (a.reason !== undefined) ||
    (a.by !== undefined && (typeof a.by !== 'string' || !a.by.startsWith('did:key:') || a.by.length > 200 || a.by === body.consumer))) {
    throw new InvalidUsageError('usage answer: malformed')
  }
  if (BigInt(a.acceptedAmount) > BigInt(body.amount)) throw new InvalidUsageError('usage answer: accepts more than the record claims')
  // signed by the consumer, or by the orchestrator it names in `by` (whether that one may answer is the caller's check)
  verifyBody(a.by ?? body.consumer, USAGE_ANSWER_TAG, { body, answer: a }, r.consumerSig, 'usage answer (consumer)')
  return r as UsageRecord & { answer: UsageAnswer; consumerSig: string }
}

/** The ledger transfer id prefix of a record (deterministic: a replay is a replay). */
export const usageKey = (contractId: string, seq: number): string => `${contractId}:${seq}`
