// A contract: the terms one orchestrator (consumer) and one node (provider) agree on for one replica slot,
// signed by both over the same bytes (domain tag noir:contract:v1). The epoch fences a slot: each new
// placement of a slot gets a higher epoch, and a node holding a lower one for that slot stops its copy.
// Terms v2 carry the price as whole µNLC in a decimal string (spec/contracts.md "Terms v2"); v1 terms (a float
// of NLC) are refused from the wire and read from a store only through upgradeStoredTerms.
import { createHash, randomUUID } from 'node:crypto'
import { canonicalJsonBytes } from '../../identity/canonical-json.ts'
import type { NodeKey } from '../../identity/keys.ts'
import { isMicroNlcText } from '../../ledger/units.ts'
import { InvalidSignatureError, InvalidTermsError, UnsupportedTermsVersionError } from '../errors.ts'
import type { Lane, ResourceRequest, Workload } from '../workload/workload.ts'
import { CONTRACT_TAG, shown, signBody, verifyBody } from './signed.ts'

/** The terms version this node makes and accepts. */
export const CONTRACT_TERMS_VERSION = 2

export interface ContractTerms {
  v: 2
  id: string
  deploymentId: string
  workloadName: string
  kind: 'service' | 'job'
  /** `<deploymentId>/<index>`: one replica (or job instance) position. */
  slot: string
  /** Fencing token: strictly increases each time the slot is placed again. */
  epoch: number
  /** The orchestrator's DID. */
  consumer: string
  /** The node's DID. */
  provider: string
  providerOwner: string
  /** The bid this accepts. */
  bidId: string
  resources: ResourceRequest
  /** µNLC per replica-hour: decimal digits, no sign, point, exponent or leading zero ("0" is one). Read it with contractPricePerHour. */
  pricePerHour: string
  lane: Lane
  /** Standby contracts reserve capacity without running anything until promoted. */
  role: 'replica' | 'standby'
  durationSeconds: number
  /**
   * The lease (ms): the provider stops the work and releases its hold when no renewal from the consumer
   * arrived for this long (spec/contracts.md "Leases"). Absent in contracts made before leases: the
   * provider's default lease applies.
   */
  leaseMs?: number
  startsAt: number
  endsAt: number
  /** sha256 (hex) of the canonical JSON of the workload object. */
  workloadDigest: string
}

export interface Contract {
  terms: ContractTerms
  consumerSig: string
  providerSig?: string
}

export function workloadDigest(w: Workload): string {
  return createHash('sha256').update(canonicalJsonBytes(w)).digest('hex')
}

export function proposeContract(
  consumer: NodeKey,
  t: Omit<ContractTerms, 'v' | 'id' | 'consumer' | 'startsAt' | 'endsAt'> & { now?: number },
): Contract {
  const now = t.now ?? Date.now()
  const { now: _n, ...rest } = t
  const terms: ContractTerms = { v: 2, id: randomUUID(), consumer: consumer.did, ...rest, startsAt: now, endsAt: now + t.durationSeconds * 1000 }
  return { terms, consumerSig: signBody(consumer, CONTRACT_TAG, terms) }
}

/** The price of a contract, µNLC per replica-hour (the one way code reads it as a number). */
export function contractPricePerHour(terms: Pick<ContractTerms, 'pricePerHour'>): bigint {
  if (!isMicroNlcText(terms.pricePerHour)) throw new InvalidTermsError("contract: 'pricePerHour' must be decimal digits of µNLC per replica-hour", { field: 'pricePerHour' })
  return BigInt(terms.pricePerHour)
}

/** Checks the shape of terms (they arrive from another node). Names the field at fault. */
export function checkTerms(x: unknown): ContractTerms {
  const t = x as Record<string, unknown>
  if (!t || typeof t !== 'object' || Array.isArray(t)) throw new InvalidTermsError('contract: malformed terms')
  if (t.v !== CONTRACT_TERMS_VERSION) {
    throw new UnsupportedTermsVersionError(`contract: terms v${JSON.stringify(t.v)} are not accepted; v${CONTRACT_TERMS_VERSION} is required (prices in whole µNLC)`, { field: 'v', got: t.v ?? null, required: CONTRACT_TERMS_VERSION })
  }
  const bad = (field: string, why: string): never => {
    throw new InvalidTermsError(`contract: '${field}' ${why}`, { field })
  }
  if (typeof t.id !== 'string') bad('id', 'must be a string')
  if (typeof t.slot !== 'string') bad('slot', 'must be a string')
  if (!Number.isSafeInteger(t.epoch) || (t.epoch as number) < 1) bad('epoch', 'must be a whole number >= 1')
  if (typeof t.consumer !== 'string') bad('consumer', 'must be a DID')
  if (typeof t.provider !== 'string') bad('provider', 'must be a DID')
  if (!isMicroNlcText(t.pricePerHour)) bad('pricePerHour', `must be a decimal string of whole µNLC per replica-hour (digits only: no sign, point, exponent or leading zero), got ${shown(t.pricePerHour)}`)
  if (t.role !== 'replica' && t.role !== 'standby') bad('role', "must be 'replica' or 'standby'")
  if (typeof t.resources !== 'object' || t.resources === null) bad('resources', 'must be an object')
  if (typeof t.endsAt !== 'number') bad('endsAt', 'must be a time (ms)')
  if (t.leaseMs !== undefined && (!Number.isSafeInteger(t.leaseMs) || (t.leaseMs as number) <= 0)) bad('leaseMs', 'must be a whole number of ms > 0')
  return t as unknown as ContractTerms
}

/** Terms as this node wrote them before v2 (price a float of NLC per replica-hour); only ever read from a store. */
export type ContractTermsV1 = Omit<ContractTerms, 'v' | 'pricePerHour'> & { v: 1; pricePerHour: number }

/**
 * The one migration boundary of v1 terms (spec/contracts.md "Terms v2"): a contract record written before v2
 * is read with its price converted to whole µNLC, Math.round(NLC * 1e6) (v1 prices were quoted rounded to
 * 1e-6, so nothing is lost). The signatures cover the v1 bytes: the caller keeps those terms beside the record.
 * Terms already v2 come back as they are; anything else is InvalidTermsError.
 */
export function upgradeStoredTerms(x: ContractTerms | ContractTermsV1): ContractTerms {
  if (x.v === CONTRACT_TERMS_VERSION) return x
  if (x.v !== 1 || typeof x.pricePerHour !== 'number' || !Number.isFinite(x.pricePerHour) || x.pricePerHour < 0) {
    throw new InvalidTermsError(`stored contract ${String((x as { id?: unknown }).id)}: terms of an unknown version or price`, { field: 'pricePerHour' })
  }
  return { ...x, v: 2, pricePerHour: String(Math.round(x.pricePerHour * 1e6)) }
}

/** Verifies the consumer's signature (what a provider checks before reserving). */
export function verifyProposal(c: unknown): ContractTerms {
  const x = c as Contract
  if (!x || typeof x !== 'object') throw new InvalidTermsError('contract: malformed')
  const terms = checkTerms(x.terms)
  verifyBody(terms.consumer, CONTRACT_TAG, terms, x.consumerSig, 'contract (consumer)')
  return terms
}

export function countersign(provider: NodeKey, c: Contract): Contract {
  const terms = verifyProposal(c)
  if (terms.provider !== provider.did) throw new InvalidSignatureError(`contract: names provider ${terms.provider}, not ${provider.did}`)
  return { ...c, providerSig: signBody(provider, CONTRACT_TAG, terms) }
}

/** Verifies both signatures (what either side checks before storing a contract). */
export function verifyContract(c: unknown): ContractTerms {
  const terms = verifyProposal(c)
  verifyBody(terms.provider, CONTRACT_TAG, terms, (c as Contract).providerSig, 'contract (provider)')
  return terms
}
