// Node certificates (spec/trust.md "Owner certification" and "The core pool"): a DID's signed statement that a
// node is its own (ability `/noir/owner/node`, signed by the owner) or a member of the operator's core pool
// (ability `/noir/core/member`, signed by a root the orchestrator trusts). The signature covers
//   UTF-8("noir:node-cert:v1") || 0x00 || RFC 8785 canonical JSON of the body
// by the issuer's did:key, named in the body. A node carries its certificates in its bids; the orchestrator
// believes a claimed owner, or core membership, only when the certificate verifies: signed by that owner (a
// trusted root), naming this node, within its window. Anything else counts as no owner (the node is its own
// owner) and no membership. Pure and synchronous: checked for every bid a placement reads.
import { isDidKey } from '../../identity/did-key.ts'
import { LruCache } from '../../identity/lru.ts'
import type { NodeKey } from '../../identity/keys.ts'
import { signBody, verifyBody } from '../contracts/signed.ts'
import { InvalidSignatureError, OrchestrationError } from '../errors.ts'

export const NODE_CERT_TAG = 'noir:node-cert:v1'
export const OWNER_ABILITY = '/noir/owner/node'
export const CORE_ABILITY = '/noir/core/member'
export type NodeCertAbility = typeof OWNER_ABILITY | typeof CORE_ABILITY
/** Clocks may disagree this much about a certificate's window. */
const SKEW_MS = 30_000
const MAX_TTL_MS = 366 * 24 * 3600_000

export interface NodeCertificateBody {
  v: 1
  ability: NodeCertAbility
  /** The signer: the owner (owner certificates) or the operator's root (core membership). */
  issuer: string
  /** The node certified. */
  node: string
  issuedAt: number
  expiresAt: number
}

export interface NodeCertificate {
  body: NodeCertificateBody
  sig: string
}

/** Why a certificate is not believed; `reason` is stable for callers and tests. */
export class NodeCertificateError extends OrchestrationError {
  override name = 'NodeCertificateError'
  override readonly code = 'NODE_CERTIFICATE_INVALID'
  override readonly status = 400
  readonly reason: 'malformed' | 'signature' | 'wrong-node' | 'wrong-issuer' | 'wrong-ability' | 'expired' | 'not-yet-valid'
  constructor(reason: NodeCertificateError['reason'], message: string) {
    super(`node certificate: ${message}`, { reason })
    this.reason = reason
  }
}

export function signNodeCertificate(issuer: NodeKey, o: { ability: NodeCertAbility; node: string; ttlMs: number; now?: number }): NodeCertificate {
  if (!isDidKey(o.node)) throw new NodeCertificateError('malformed', `node must be a did:key, got ${JSON.stringify(o.node).slice(0, 80)}`)
  if (!Number.isSafeInteger(o.ttlMs) || o.ttlMs <= 0 || o.ttlMs > MAX_TTL_MS) throw new NodeCertificateError('malformed', 'ttl must be a positive whole number of ms, at most 366 days')
  const now = o.now ?? Date.now()
  const body: NodeCertificateBody = { v: 1, ability: o.ability, issuer: issuer.did, node: o.node, issuedAt: now, expiresAt: now + o.ttlMs }
  return { body, sig: signBody(issuer, NODE_CERT_TAG, body) }
}

export interface NodeCertificateCheck {
  ability: NodeCertAbility
  /** The node presenting it (the bid's signer). */
  node: string
  /** Issuers accepted: the claimed owner, or the trusted roots. */
  issuers: readonly string[]
  now?: number
}

/** Verifies `raw` for `c`: shape, signature (before anything else is believed), ability, node, issuer, window. */
export function verifyNodeCertificate(raw: unknown, c: NodeCertificateCheck): NodeCertificateBody {
  const r = raw as NodeCertificate
  if (!r || typeof r !== 'object' || !r.body || typeof r.body !== 'object') throw new NodeCertificateError('malformed', 'not a { body, sig } object')
  const b = r.body
  if (b.v !== 1 || typeof b.issuer !== 'string' || !isDidKey(b.issuer) || typeof b.node !== 'string' || typeof b.ability !== 'string' ||
    !Number.isSafeInteger(b.issuedAt) || !Number.isSafeInteger(b.expiresAt) || Object.keys(b).length !== 6) {
    throw new NodeCertificateError('malformed', 'body must be { v: 1, ability, issuer (did:key), node, issuedAt, expiresAt }')
  }
  try {
    verifyBody(b.issuer, NODE_CERT_TAG, b, r.sig, 'node certificate')
  } catch (err) {
    if (err instanceof InvalidSignatureError) throw new NodeCertificateError('signature', `signature does not verify for ${b.issuer}`)
    throw err
  }
  if (b.ability !== c.ability) throw new NodeCertificateError('wrong-ability', `grants ${b.ability}, ${c.ability} is needed`)
  if (b.node !== c.node) throw new NodeCertificateError('wrong-node', `names ${b.node}, presented by ${c.node}`)
  if (!c.issuers.includes(b.issuer)) throw new NodeCertificateError('wrong-issuer', `signed by ${b.issuer}, not by ${c.issuers.length === 1 ? c.issuers[0] : 'a trusted root'}`)
  const now = c.now ?? Date.now()
  if (b.issuedAt > now + SKEW_MS) throw new NodeCertificateError('not-yet-valid', 'issued in the future')
  if (b.expiresAt <= now - SKEW_MS) throw new NodeCertificateError('expired', `expired at ${new Date(b.expiresAt).toISOString()}`)
  return b
}

/** What a bid states about its node's owner and membership. */
export interface CertifiedClaims {
  node: string
  owner: string
  ownerCert?: unknown
  coreCert?: unknown
}

/** True when a certificate was revoked by its issuer (actors/placement/cert-revocation.ts `CertRevocations.revokes`). */
export type RevokedCheck = (c: NodeCertificateBody) => boolean

/**
 * The owner placement believes: the claimed owner when the bid carries a valid certificate of that owner for
 * this node, not revoked; otherwise the node itself (no owner: it spreads and filters as a device of its own).
 */
export function certifiedOwner(b: CertifiedClaims, now = Date.now(), revoked?: RevokedCheck): string {
  if (b.owner === b.node || b.ownerCert === undefined) return b.node
  if (revoked && typeof b.ownerCert === 'object' && b.ownerCert !== null && revoked((b.ownerCert as NodeCertificate).body)) return b.node
  // a node states the same certificate in every bid and heartbeat: one signature check per certificate
  const key = cacheKey(b.ownerCert)
  const expiresAt = key === undefined ? undefined : verified.get(key)
  if (expiresAt !== undefined) {
    const c = (b.ownerCert as NodeCertificate).body
    return c.node === b.node && c.issuer === b.owner && c.issuedAt <= now + SKEW_MS && expiresAt > now - SKEW_MS ? b.owner : b.node
  }
  try {
    const c = verifyNodeCertificate(b.ownerCert, { ability: OWNER_ABILITY, node: b.node, issuers: [b.owner], now })
    if (key !== undefined) verified.set(key, c.expiresAt)
    return b.owner
  } catch {
    return b.node
  }
}

/** Certificates whose signature verified, by their exact bytes (every body field and the signature). */
const verified = new LruCache<string, number>(10_000)

function cacheKey(raw: unknown): string | undefined {
  const r = raw as NodeCertificate
  if (!r || typeof r !== 'object' || typeof r.sig !== 'string' || !r.body || typeof r.body !== 'object' || Object.keys(r.body).length !== 6) return undefined
  const b = r.body
  if (b.ability !== OWNER_ABILITY) return undefined
  return JSON.stringify([r.sig, b.v, b.ability, b.issuer, b.node, b.issuedAt, b.expiresAt])
}

/** True when the bid carries a core-membership certificate for its node signed by one of `roots`. */
export function certifiedCore(b: CertifiedClaims, roots: readonly string[], now = Date.now(), revoked?: RevokedCheck): boolean {
  if (b.coreCert === undefined || roots.length === 0) return false
  try {
    const c = verifyNodeCertificate(b.coreCert, { ability: CORE_ABILITY, node: b.node, issuers: roots, now })
    return !revoked?.(c)
  } catch {
    return false
  }
}
