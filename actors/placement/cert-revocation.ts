// Revoking node certificates before they expire (spec/trust.md "Revoking a certificate"). The issuer of a
// certificate (an owner, or the operator's root) signs a revocation naming the node and the ability:
//   body: { v: 1, ability, issuer, node, revokedAt, reason? }
//   sig:  Ed25519 by `issuer` over UTF-8("noir:node-cert-revocation:v1") || 0x00 || RFC 8785 canonical JSON of body
// It revokes every certificate of that issuer, node and ability issued at or before `revokedAt`; a certificate
// issued later (the owner certifying the node again) is believed again. Only the issuer can revoke what it
// signed: a revocation is keyed by its signer, so a stranger's record names certificates nobody believes.
import { isDidKey } from '../../identity/did-key.ts'
import type { NodeKey } from '../../identity/keys.ts'
import { signBody, verifyBody } from '../contracts/signed.ts'
import { InvalidSignatureError, OrchestrationError } from '../errors.ts'
import { CORE_ABILITY, OWNER_ABILITY, type NodeCertAbility, type NodeCertificateBody } from './node-certificate.ts'

export const CERT_REVOCATION_TAG = 'noir:node-cert-revocation:v1'
/** Clocks may disagree this much: a revocation dated further ahead is refused. */
const SKEW_MS = 30_000
const MAX_REASON = 200
/** A certificate lives at most 366 days: a revocation older than that can revoke nothing still valid. */
const MAX_CERT_TTL_MS = 366 * 24 * 3600_000

export interface CertRevocationBody {
  v: 1
  ability: NodeCertAbility
  /** The signer: the issuer of the certificates revoked. */
  issuer: string
  node: string
  revokedAt: number
  reason?: string
}

export interface CertRevocation {
  body: CertRevocationBody
  sig: string
}

export class InvalidCertRevocationError extends OrchestrationError {
  override name = 'InvalidCertRevocationError'
  override readonly code = 'CERT_REVOCATION_INVALID'
  override readonly status = 400
  readonly reason: 'malformed' | 'signature' | 'future' | 'stale'
  constructor(reason: InvalidCertRevocationError['reason'], message: string) {
    super(`certificate revocation: ${message}`, { reason })
    this.reason = reason
  }
}

export function signCertRevocation(issuer: NodeKey, o: { ability: NodeCertAbility; node: string; reason?: string; now?: number }): CertRevocation {
  if (!isDidKey(o.node)) throw new InvalidCertRevocationError('malformed', `node must be a did:key, got ${JSON.stringify(o.node).slice(0, 80)}`)
  if (o.reason !== undefined && o.reason.length > MAX_REASON) throw new InvalidCertRevocationError('malformed', `reason is at most ${MAX_REASON} characters`)
  const body: CertRevocationBody = { v: 1, ability: o.ability, issuer: issuer.did, node: o.node, revokedAt: o.now ?? Date.now(), ...(o.reason !== undefined ? { reason: o.reason } : {}) }
  return { body, sig: signBody(issuer, CERT_REVOCATION_TAG, body) }
}

/** Shape, then the signature (before anything else is believed), then its date. */
export function verifyCertRevocation(raw: unknown, now = Date.now()): CertRevocation {
  const r = raw as CertRevocation
  if (!r || typeof r !== 'object' || !r.body || typeof r.body !== 'object' || typeof r.sig !== 'string') throw new InvalidCertRevocationError('malformed', 'not a { body, sig } object')
  const b = r.body
  const keys = Object.keys(b)
  if (b.v !== 1 || (b.ability !== OWNER_ABILITY && b.ability !== CORE_ABILITY) || typeof b.issuer !== 'string' || !isDidKey(b.issuer) ||
    typeof b.node !== 'string' || !isDidKey(b.node) || !Number.isSafeInteger(b.revokedAt) ||
    (b.reason !== undefined && (typeof b.reason !== 'string' || b.reason.length > MAX_REASON)) ||
    keys.length !== (b.reason === undefined ? 5 : 6) || keys.some((k) => !['v', 'ability', 'issuer', 'node', 'revokedAt', 'reason'].includes(k))) {
    throw new InvalidCertRevocationError('malformed', 'body must be { v: 1, ability, issuer (did:key), node (did:key), revokedAt, reason? (at most 200 characters) }')
  }
  try {
    verifyBody(b.issuer, CERT_REVOCATION_TAG, b, r.sig, 'certificate revocation')
  } catch (err) {
    if (err instanceof InvalidSignatureError) throw new InvalidCertRevocationError('signature', `signature does not verify for ${b.issuer}`)
    throw err
  }
  if (b.revokedAt > now + SKEW_MS) throw new InvalidCertRevocationError('future', 'dated in the future')
  if (b.revokedAt < now - MAX_CERT_TTL_MS) throw new InvalidCertRevocationError('stale', 'older than any certificate still valid')
  return { body: b, sig: r.sig }
}

const keyOf = (issuer: string, node: string, ability: string): string => `${ability}\n${issuer}\n${node}`

/**
 * The revocations a node holds, the latest per issuer, node and ability. Bounded: past `max`, the one added
 * longest ago goes (its issuer republishes it: spec/trust.md), so a flood of strangers' records cannot grow it.
 */
export class CertRevocations {
  readonly #latest = new Map<string, CertRevocation>()
  readonly #max: number

  constructor(o: { max?: number } = {}) {
    this.#max = o.max ?? 50_000
  }

  get size(): number {
    return this.#latest.size
  }

  /** Keeps a verified revocation; true when it is new (later than the one held for its certificates). */
  add(r: CertRevocation): boolean {
    const k = keyOf(r.body.issuer, r.body.node, r.body.ability)
    const held = this.#latest.get(k)
    if (held && held.body.revokedAt >= r.body.revokedAt) return false
    this.#latest.delete(k)
    this.#latest.set(k, r)
    if (this.#latest.size > this.#max) this.#latest.delete(this.#latest.keys().next().value!)
    return true
  }

  /** True when `c` was issued at or before a revocation by its issuer for its node and ability. */
  revokes(c: Pick<NodeCertificateBody, 'issuer' | 'node' | 'ability' | 'issuedAt'>): boolean {
    const held = this.#latest.get(keyOf(c.issuer, c.node, c.ability))
    return held !== undefined && c.issuedAt <= held.body.revokedAt
  }

  list(): CertRevocation[] {
    return [...this.#latest.values()]
  }
}
