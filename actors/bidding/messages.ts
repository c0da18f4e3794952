// Bid requests and bids: what an orchestrator broadcasts and what a node answers (spec/orchestration.md).
import { randomUUID } from 'node:crypto'
import type { NodeKey } from '../../identity/keys.ts'
import { isMicroNlcText } from '../../ledger/units.ts'
import { InvalidSignatureError, InvalidTermsError, UnsupportedTermsVersionError } from '../errors.ts'
import type { Capacity } from '../placement/offer.ts'
import type { ConstraintFailure } from '../placement/constraints.ts'
import type { NodeCertificate } from '../placement/node-certificate.ts'
import type { Arch, RuntimeType, Workload } from '../workload/workload.ts'
import { BID_REQUEST_TAG, BID_TAG, checkWindow, shown, signBody, verifyBody } from '../contracts/signed.ts'

/**
 * The version of bid requests and bids: 2 since prices are whole µNLC (a bid's `pricePerHour`, a workload's
 * `constraints.maxPrice`); v1 carried NLC as floats and is refused (spec/contracts.md "Terms v2").
 */
export const BID_VERSION = 2

export interface BidRequestBody {
  v: 2
  id: string
  /** The orchestrator's DID (it signs). */
  orchestrator: string
  deploymentId: string
  workload: Workload
  /** Replicas being placed in this round. */
  count: number
  /** Nodes that should not bid (lost, fenced, refused). */
  exclude: string[]
  issuedAt: number
  expiresAt: number
}

export interface SignedBidRequest {
  body: BidRequestBody
  sig: string
}

export interface BidBody {
  v: 2
  id: string
  requestId: string
  deploymentId: string
  /** The bidding node's DID (it signs). */
  node: string
  owner: string
  arch: Arch
  region: string
  labels: Record<string, string>
  runtimes: RuntimeType[]
  free: Capacity
  /** µNLC per replica-hour, from the owner's price policy: decimal digits (read it with bidPricePerHour). */
  pricePerHour: string
  /** The owner's certificate for this node (spec/trust.md "Owner certification"); without a valid one `owner` is not believed. */
  ownerCert?: NodeCertificate
  /** A core-membership certificate (spec/trust.md "The core pool"). */
  coreCert?: NodeCertificate
  issuedAt: number
  expiresAt: number
}

export interface SignedBid {
  body: BidBody
  sig: string
}

/** A node's signed "no", with the reasons (for `noir bids --dry-run` and infeasible answers). */
export interface DeclineBody {
  v: 1
  requestId: string
  node: string
  reasons: string[]
  /** The same, structured: which constraint, how, and how far off (0..1). */
  failures: ConstraintFailure[]
  issuedAt: number
}

export interface SignedDecline {
  body: DeclineBody
  sig: string
}

export const DECLINE_TAG = 'noir:bid-decline:v1'

export function signBidRequest(key: NodeKey, o: { deploymentId: string; workload: Workload; count: number; exclude?: string[]; ttlMs?: number; now?: number }): SignedBidRequest {
  const now = o.now ?? Date.now()
  const body: BidRequestBody = {
    v: BID_VERSION, id: randomUUID(), orchestrator: key.did, deploymentId: o.deploymentId, workload: o.workload, count: o.count,
    exclude: o.exclude ?? [], issuedAt: now, expiresAt: now + (o.ttlMs ?? 10_000),
  }
  return { body, sig: signBody(key, BID_REQUEST_TAG, body) }
}

export function verifyBidRequest(x: unknown, now = Date.now()): BidRequestBody {
  const r = x as SignedBidRequest
  if (!r || typeof r !== 'object' || !r.body || typeof r.body !== 'object') throw new InvalidTermsError('bid request: malformed')
  checkVersion('bid request', r.body.v)
  if (typeof r.body.orchestrator !== 'string') throw new InvalidTermsError('bid request: malformed')
  verifyBody(r.body.orchestrator, BID_REQUEST_TAG, r.body, r.sig, 'bid request')
  checkWindow('bid request', r.body.issuedAt, r.body.expiresAt, now)
  return r.body
}

export function signBid(key: NodeKey, b: Omit<BidBody, 'v' | 'id' | 'node' | 'issuedAt' | 'expiresAt'> & { ttlMs?: number; now?: number }): SignedBid {
  const now = b.now ?? Date.now()
  const { ttlMs, now: _n, ...rest } = b
  const body: BidBody = { v: BID_VERSION, id: randomUUID(), node: key.did, ...rest, issuedAt: now, expiresAt: now + (ttlMs ?? 30_000) }
  return { body, sig: signBody(key, BID_TAG, body) }
}

/**
 * Checks everything of a bid but its signature: its shape, fresh, an answer to `requestId` when given, a price.
 * Cheap; a bid that passes is a candidate only: verifyBidSignature must pass before it is acted on (reserved,
 * proposed to, committed), see spec/orchestration.md "Bids verified when acted on".
 */
export function checkBid(x: unknown, o: { requestId?: string; now?: number } = {}): BidBody {
  const b = x as SignedBid
  if (!b || typeof b !== 'object' || !b.body || typeof b.body !== 'object') throw new InvalidTermsError('bid: malformed')
  checkVersion('bid', b.body.v)
  if (typeof b.body.node !== 'string') throw new InvalidTermsError('bid: malformed')
  if (typeof b.sig !== 'string') throw new InvalidSignatureError('bid: signature missing')
  checkWindow('bid', b.body.issuedAt, b.body.expiresAt, o.now ?? Date.now())
  if (o.requestId !== undefined && b.body.requestId !== o.requestId) throw new InvalidTermsError('bid: answers another request')
  if (!isMicroNlcText(b.body.pricePerHour)) {
    throw new InvalidTermsError(`bid: 'pricePerHour' must be a decimal string of whole µNLC per replica-hour (digits only: no sign, point, exponent or leading zero), got ${shown(b.body.pricePerHour)}`, { field: 'pricePerHour' })
  }
  return b.body
}

/** A bid's price, µNLC per replica-hour (the one way code reads it as a number). */
export function bidPricePerHour(b: Pick<BidBody, 'pricePerHour'>): bigint {
  if (!isMicroNlcText(b.pricePerHour)) throw new InvalidTermsError("bid: 'pricePerHour' must be decimal digits of µNLC per replica-hour", { field: 'pricePerHour' })
  return BigInt(b.pricePerHour)
}

function checkVersion(what: string, v: unknown): void {
  if (v !== BID_VERSION) throw new UnsupportedTermsVersionError(`${what}: v${shown(v)} is not accepted; v${BID_VERSION} is required (prices in whole µNLC)`, { field: 'v', got: v ?? null, required: BID_VERSION })
}

/** Throws InvalidSignatureError unless `sig` is the signature of the node `body` names over `body`. */
export function verifyBidSignature(body: BidBody, sig: unknown): void {
  verifyBody(body.node, BID_TAG, body, sig, 'bid')
}

/** Verifies a bid: signature by the node it names, fresh, and an answer to `requestId` when given. */
export function verifyBid(x: unknown, o: { requestId?: string; now?: number } = {}): BidBody {
  const body = checkBid(x, o)
  verifyBidSignature(body, (x as SignedBid).sig)
  return body
}

export function signDecline(key: NodeKey, requestId: string, failures: ConstraintFailure[] | string[], now = Date.now()): SignedDecline {
  const structured = failures.map((f) => (typeof f === 'string' ? { constraint: 'runtime' as const, detail: f, gap: 1 } : f))
  const reasons = failures.map((f) => (typeof f === 'string' ? f : `${f.constraint}: ${f.detail}`))
  const body: DeclineBody = { v: 1, requestId, node: key.did, reasons, failures: typeof failures[0] === 'string' ? [] : structured, issuedAt: now }
  return { body, sig: signBody(key, DECLINE_TAG, body) }
}

/**
 * A decline's shape and sender, without its signature: what the orchestrator needs of one. A decline grants
 * nothing and binds nothing (it only narrows the round and explains an infeasible placement), and it arrives
 * from a sender the transport authenticated (an ask answered over a sealed stream, or a signed tell): it is
 * taken only when it names that sender. Its Ed25519 signature (~110 µs) is left unchecked; `verifyDecline`
 * checks it where a decline is shown to a third party.
 */
export function checkDecline(x: unknown, fromDid: string): DeclineBody {
  const d = x as SignedDecline
  if (!d || typeof d !== 'object' || !d.body || d.body.v !== 1 || typeof d.body.node !== 'string' || typeof d.body.requestId !== 'string' ||
    !Array.isArray(d.body.reasons) || !Array.isArray(d.body.failures) || typeof d.sig !== 'string') {
    throw new InvalidTermsError('decline: malformed')
  }
  if (d.body.node !== fromDid) throw new InvalidTermsError('decline relayed by another node')
  return d.body
}

export function verifyDecline(x: unknown): DeclineBody {
  const d = x as SignedDecline
  if (!d || typeof d !== 'object' || !d.body || d.body.v !== 1 || typeof d.body.node !== 'string') throw new InvalidTermsError('decline: malformed')
  verifyBody(d.body.node, DECLINE_TAG, d.body, d.sig, 'decline')
  return d.body
}
