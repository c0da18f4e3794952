// A contract: the terms one orchestrator (consumer) and one node (provider) agree on for one replica slot,
// signed by both over the same bytes (domain tag noir:contract:v1). The epoch fences a slot: each new
// placement of a slot gets a higher epoch, and a node holding a lower one for that slot stops its copy.
import { createHash, randomUUID } from 'node:crypto'
import { canonicalJsonBytes } from '../../identity/canonical-json.ts'
import type { NodeKey } from '../../identity/keys.ts'
import { InvalidSignatureError, InvalidTermsError } from '../errors.ts'
import type { Lane, ResourceRequest, Workload } from '../workload/workload.ts'
import { CONTRACT_TAG, signBody, verifyBody } from './signed.ts'

export interface ContractTerms {
  v: 1
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
  pricePerHour: number
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
  const terms: ContractTerms = { v: 1, id: randomUUID(), consumer: consumer.did, ...rest, startsAt: now, endsAt: now + t.durationSeconds * 1000 }
  return { terms, consumerSig: signBody(consumer, CONTRACT_TAG, terms) }
}

/** Checks the shape of terms (they arrive from another node). */
export function checkTerms(x: unknown): ContractTerms {
  const t = x as ContractTerms
  const ok =
    t && typeof t === 'object' && t.v === 1 && typeof t.id === 'string' && typeof t.slot === 'string' && Number.isSafeInteger(t.epoch) && t.epoch >= 1 &&
    typeof t.consumer === 'string' && typeof t.provider === 'string' && typeof t.pricePerHour === 'number' && t.pricePerHour >= 0 &&
    (t.role === 'replica' || t.role === 'standby') && typeof t.resources === 'object' && t.resources !== null && typeof t.endsAt === 'number' &&
    (t.leaseMs === undefined || (Number.isSafeInteger(t.leaseMs) && t.leaseMs > 0))
  if (!ok) throw new InvalidTermsError('contract: malformed terms')
  return t
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
