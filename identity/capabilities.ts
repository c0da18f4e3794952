// UCAN-like capability tokens as did-jwt JWTs (spec/capabilities.md). A token grants its audience a list of
// abilities (behavior path prefixes with optional numeric limits) until it expires. A delegation names its
// parent in `prf`, may only narrow it, and may not outlive it. A chain is trusted when its root issuer is one
// of the node's trusted roots, every signature verifies (stock did-jwt verifyJWT + our did:key resolver),
// every link's issuer is its parent's audience, and no link is revoked by an issuer in its chain.
import { createHash, randomBytes } from 'node:crypto'
import { createJWT, decodeJWT, verifyJWT, type JWTPayload, type Signer } from 'did-jwt'
import { Resolver } from 'did-resolver'
import { canonicalJson } from './canonical-json.ts'
import { getDidKeyResolver, isDidKey } from './did-key.ts'
import {
  CapabilityDeniedError,
  CapabilityExpiredError,
  CapabilitySignatureError,
  IdentityError,
  InvalidRevocationError,
  MalformedCapabilityError,
  NotAudienceError,
  OutlivesParentError,
  RevokedCapabilityError,
  UntrustedRootError,
  WideningDelegationError,
} from './errors.ts'
import { verifyEd25519ForDid, type NodeKey } from './keys.ts'
import { LruCache } from './lru.ts'

export interface Ability {
  /** Behavior path prefix: '/noir/deploy' covers '/noir/deploy/status' but not '/noir/deployx'; '/' covers all. */
  can: string
  /** Optional numeric ceilings (e.g. { cpu: 4 }); a delegation may only keep or lower them. */
  limits?: Record<string, number>
}

export interface VerifiedCapability {
  /** Issuer of the presented (leaf) token. */
  issuer: string
  /** Audience of the presented token: who may use it. */
  audience: string
  abilities: Ability[]
  /** ms since the epoch; never after any parent's expiry. */
  expiresAt: number
  /** The JWTs, root first, presented token last. */
  chain: string[]
  /** Issuer of the root token (a trusted root). */
  root: string
}

export const TAG_REVOKE = 'noir:revoke:v1'
export const MAX_CHAIN_LENGTH = 8
export const MAX_TOKEN_LENGTH = 64 * 1024
export const MAX_ABILITIES = 64
const CAN_RE = /^\/$|^(\/[A-Za-z0-9._~:@+-]+)+$/

const resolver = new Resolver(getDidKeyResolver())

// ---- abilities -------------------------------------------------------------------------------------------------

export function abilityCovers(granted: string, requested: string): boolean {
  if (granted === '/') return requested.startsWith('/')
  return requested === granted || requested.startsWith(granted + '/')
}

/** True when `child` is within `parent`: its path is covered and it keeps every parent limit at or below it. */
export function abilityWithin(parent: Ability, child: Ability): boolean {
  if (!abilityCovers(parent.can, child.can)) return false
  for (const [k, max] of Object.entries(parent.limits ?? {})) {
    const v = child.limits?.[k]
    if (v === undefined || v > max) return false
  }
  return true
}

function checkAbilities(att: unknown): Ability[] {
  if (!Array.isArray(att) || att.length === 0 || att.length > MAX_ABILITIES) {
    throw new MalformedCapabilityError(`att must list 1-${MAX_ABILITIES} abilities`)
  }
  return att.map((a: unknown) => {
    if (typeof a !== 'object' || a === null || Array.isArray(a)) throw new MalformedCapabilityError('an ability is an object { can, limits? }')
    const r = a as Record<string, unknown>
    for (const k of Object.keys(r)) if (k !== 'can' && k !== 'limits') throw new MalformedCapabilityError(`unknown ability field ${JSON.stringify(k.slice(0, 40))}`)
    if (typeof r.can !== 'string' || r.can.length > 256 || !CAN_RE.test(r.can)) throw new MalformedCapabilityError('ability.can must be a behavior path such as /noir/deploy')
    const out: Ability = { can: r.can }
    if (r.limits !== undefined) {
      if (typeof r.limits !== 'object' || r.limits === null || Array.isArray(r.limits)) throw new MalformedCapabilityError('ability.limits must be an object of numbers')
      const limits: Record<string, number> = {}
      for (const [k, v] of Object.entries(r.limits as Record<string, unknown>)) {
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new MalformedCapabilityError(`limit ${JSON.stringify(k.slice(0, 40))} must be a finite number`)
        limits[k] = v
      }
      out.limits = limits
    }
    return out
  })
}

// ---- token claims ------------------------------------------------------------------------------------------------

/** One decoded link of a chain (times in seconds, as in the JWT). */
export interface CapabilityClaims {
  jwt: string
  iss: string
  aud: string
  /** seconds */
  exp: number
  nbf?: number
  att: Ability[]
  prf: string[]
}

function decodeCapabilityClaims(jwt: string): CapabilityClaims {
  if (typeof jwt !== 'string' || jwt.length === 0) throw new MalformedCapabilityError('a capability token is a JWT string')
  if (jwt.length > MAX_TOKEN_LENGTH) throw new MalformedCapabilityError(`token longer than ${MAX_TOKEN_LENGTH} characters`)
  // Each segment must be canonical base64url (no padding, no stray bits), so a token has one text form and
  // one hash (revocations name tokens by hash).
  const segments = jwt.split('.')
  if (segments.length !== 3 || !segments.every((s) => /^[A-Za-z0-9_-]+$/.test(s) && Buffer.from(s, 'base64url').toString('base64url') === s)) {
    throw new MalformedCapabilityError('token is not three canonical base64url segments')
  }
  let payload: JWTPayload
  let alg: unknown
  try {
    const d = decodeJWT(jwt, false)
    payload = d.payload
    alg = d.header.alg
  } catch {
    throw new MalformedCapabilityError('token is not a decodable JWT')
  }
  if (alg !== 'EdDSA' && alg !== 'Ed25519') throw new MalformedCapabilityError('token must be signed with EdDSA (Ed25519)')
  if (typeof payload !== 'object' || payload === null) throw new MalformedCapabilityError('token payload is not an object')
  if (typeof payload.iss !== 'string' || !isDidKey(payload.iss)) throw new MalformedCapabilityError('iss must be an Ed25519 did:key')
  if (typeof payload.aud !== 'string' || !isDidKey(payload.aud)) throw new MalformedCapabilityError('aud must be one Ed25519 did:key')
  if (!Number.isSafeInteger(payload.exp)) throw new MalformedCapabilityError('exp (seconds) is required')
  if (payload.nbf !== undefined && !Number.isSafeInteger(payload.nbf)) throw new MalformedCapabilityError('nbf must be an integer (seconds)')
  const att = checkAbilities(payload.att)
  let prf: string[] = []
  if (payload.prf !== undefined) {
    if (!Array.isArray(payload.prf) || payload.prf.length > 1 || !payload.prf.every((p: unknown) => typeof p === 'string')) {
      throw new MalformedCapabilityError('prf must hold at most one parent token')
    }
    prf = payload.prf as string[]
  }
  const c: CapabilityClaims = { jwt, iss: payload.iss, aud: payload.aud, exp: payload.exp as number, att, prf }
  if (payload.nbf !== undefined) c.nbf = payload.nbf
  return c
}

/** The chain, presented token first, root last (structure only: no signature, trust or time checks). */
export function decodeCapabilityChain(token: string): CapabilityClaims[] {
  const chain: CapabilityClaims[] = []
  let jwt: string | undefined = token
  while (jwt !== undefined) {
    if (chain.length >= MAX_CHAIN_LENGTH) throw new MalformedCapabilityError(`delegation chain longer than ${MAX_CHAIN_LENGTH}`)
    const c = decodeCapabilityClaims(jwt)
    chain.push(c)
    jwt = c.prf[0]
  }
  return chain
}

/** Checks one child against its parent: audience link, lifetime, narrowing. */
function checkLink(child: Pick<CapabilityClaims, 'iss' | 'exp' | 'att'>, parent: CapabilityClaims): void {
  if (child.iss !== parent.aud) throw new NotAudienceError(`delegator ${child.iss} is not the parent token's audience (${parent.aud})`)
  if (child.exp > parent.exp) throw new OutlivesParentError(`delegation expires at ${child.exp}s, after its parent (${parent.exp}s)`)
  for (const a of child.att) {
    if (!parent.att.some((p) => abilityWithin(p, a))) {
      throw new WideningDelegationError(`ability ${a.can}${a.limits ? ' ' + JSON.stringify(a.limits) : ''} is not within the parent's abilities`)
    }
  }
}

// ---- issuing -----------------------------------------------------------------------------------------------------

function signerFor(key: NodeKey): Signer {
  return async (data) => {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    return Buffer.from(key.sign(bytes)).toString('base64url')
  }
}

async function sign(key: NodeKey, payload: Record<string, unknown>): Promise<string> {
  return createJWT(payload, { issuer: key.did, signer: signerFor(key), alg: 'EdDSA' }, { alg: 'EdDSA', typ: 'JWT' })
}

function nonce(): string {
  return randomBytes(12).toString('base64url')
}

export async function issueCapability(issuer: NodeKey, o: { audience: string; abilities: Ability[]; ttlMs: number; notBeforeMs?: number; now?: number }): Promise<string> {
  if (!isDidKey(o.audience)) throw new MalformedCapabilityError('audience must be an Ed25519 did:key')
  const att = checkAbilities(o.abilities)
  if (!Number.isFinite(o.ttlMs) || o.ttlMs <= 0) throw new MalformedCapabilityError('ttlMs must be positive')
  const now = o.now ?? Date.now()
  const payload: Record<string, unknown> = {
    aud: o.audience,
    iat: Math.floor(now / 1000),
    exp: Math.floor((now + o.ttlMs) / 1000),
    att,
    nnc: nonce(),
  }
  if (o.notBeforeMs !== undefined) payload.nbf = Math.floor(o.notBeforeMs / 1000)
  return sign(issuer, payload)
}

/**
 * Delegates (part of) `parent` to `audience`. The holder must be the parent's audience; the new abilities must
 * be within the parent's; without ttlMs it expires with the parent, and it may never outlive it.
 */
export async function delegateCapability(holder: NodeKey, parent: string, o: { audience: string; abilities: Ability[]; ttlMs?: number; now?: number }): Promise<string> {
  const chain = decodeCapabilityChain(parent)
  const p = chain[0]!
  const nowMs = o.now ?? Date.now()
  if (chain.some((c) => c.exp * 1000 <= nowMs)) throw new CapabilityExpiredError('cannot delegate: a token in the parent chain has expired')
  if (!isDidKey(o.audience)) throw new MalformedCapabilityError('audience must be an Ed25519 did:key')
  const att = checkAbilities(o.abilities)
  if (o.ttlMs !== undefined && (!Number.isFinite(o.ttlMs) || o.ttlMs <= 0)) throw new MalformedCapabilityError('ttlMs must be positive')
  const exp = o.ttlMs === undefined ? p.exp : Math.floor((nowMs + o.ttlMs) / 1000)
  checkLink({ iss: holder.did, exp, att }, p)
  return sign(holder, { aud: o.audience, iat: Math.floor(nowMs / 1000), exp, att, prf: [parent], nnc: nonce() })
}

// ---- revocation ----------------------------------------------------------------------------------------------------

export interface Revocation {
  /** sha256 of the JWT text, lowercase hex. */
  token: string
  /** DID of the revoking key: an issuer in the token's chain. */
  issuer: string
  /** ms since the epoch. */
  at: number
  /** base64url Ed25519 signature over "noir:revoke:v1" 0x00 canonicalJson({at, issuer, token}). */
  sig: string
}

export interface RevocationStore {
  add(r: Revocation): Promise<void>
  isRevoked(tokenHash: string): Promise<boolean> | boolean
  /** DIDs that revoked this token; lets the verifier honour only issuers in the token's own chain. */
  revokersOf?(tokenHash: string): Promise<string[]> | string[]
}

export function tokenHash(jwt: string): string {
  return createHash('sha256').update(jwt, 'utf8').digest('hex')
}

function revocationMessage(r: Pick<Revocation, 'at' | 'issuer' | 'token'>): Uint8Array {
  return Buffer.concat([Buffer.from(TAG_REVOKE + '\0'), Buffer.from(canonicalJson({ at: r.at, issuer: r.issuer, token: r.token }))])
}

/** A signed revocation of `token`. Only a key that issued some link of the token's chain may revoke it. */
export function createRevocation(key: NodeKey, token: string, now = Date.now()): Revocation {
  const chain = decodeCapabilityChain(token)
  if (!chain.some((c) => c.iss === key.did)) throw new InvalidRevocationError('only an issuer in the token\'s chain may revoke it')
  const r = { token: tokenHash(token), issuer: key.did, at: now }
  return { ...r, sig: Buffer.from(key.sign(revocationMessage(r))).toString('base64url') }
}

/** Checks a revocation's shape and signature. Throws InvalidRevocationError. */
export function verifyRevocation(r: Revocation): void {
  if (typeof r !== 'object' || r === null) throw new InvalidRevocationError('a revocation is an object')
  if (typeof r.token !== 'string' || !/^[0-9a-f]{64}$/.test(r.token)) throw new InvalidRevocationError('token must be a sha256 hex digest')
  if (typeof r.issuer !== 'string' || !isDidKey(r.issuer)) throw new InvalidRevocationError('issuer must be an Ed25519 did:key')
  if (!Number.isSafeInteger(r.at) || r.at < 0) throw new InvalidRevocationError('at must be ms since the epoch')
  if (typeof r.sig !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(r.sig)) throw new InvalidRevocationError('sig must be a base64url Ed25519 signature')
  if (!verifyEd25519ForDid(r.issuer, revocationMessage(r), Buffer.from(r.sig, 'base64url'))) throw new InvalidRevocationError('revocation signature does not verify')
}

export class MemoryRevocationStore implements RevocationStore {
  readonly #byToken = new Map<string, Map<string, Revocation>>()
  readonly #perIssuer = new Map<string, number>()
  async add(r: Revocation): Promise<void> {
    verifyRevocation(r)
    let m = this.#byToken.get(r.token)
    if (!m) this.#byToken.set(r.token, (m = new Map()))
    if (!m.has(r.issuer)) this.#perIssuer.set(r.issuer, (this.#perIssuer.get(r.issuer) ?? 0) + 1)
    m.set(r.issuer, { token: r.token, issuer: r.issuer, at: r.at, sig: r.sig })
  }
  /** Forgets one revocation (its token expired: nothing can present it any more). */
  delete(hash: string, issuer: string): void {
    const m = this.#byToken.get(hash)
    if (!m?.delete(issuer)) return
    if (m.size === 0) this.#byToken.delete(hash)
    const n = (this.#perIssuer.get(issuer) ?? 1) - 1
    if (n > 0) this.#perIssuer.set(issuer, n)
    else this.#perIssuer.delete(issuer)
  }
  /** How many revocations this issuer has in the store (a bound per issuer keeps the store small). */
  countBy(issuer: string): number {
    return this.#perIssuer.get(issuer) ?? 0
  }
  get size(): number {
    let n = 0
    for (const m of this.#byToken.values()) n += m.size
    return n
  }
  isRevoked(hash: string): boolean {
    return (this.#byToken.get(hash)?.size ?? 0) > 0
  }
  revokersOf(hash: string): string[] {
    return [...(this.#byToken.get(hash)?.keys() ?? [])]
  }
}

// ---- verification ------------------------------------------------------------------------------------------------

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const x of Object.values(v)) deepFreeze(x)
  }
  return v
}

interface CachedChain {
  result: VerifiedCapability
  /** Leaf first: each link's hash and the issuers allowed to revoke it (its own and its ancestors'). */
  links: { hash: string; issuers: string[] }[]
  notBefore: number
}

export interface CapabilityVerifierOptions {
  trustedRoots: string[]
  revocations?: RevocationStore
  now?: () => number
  /** Allowance for clocks that disagree, ms; default 30 s. */
  clockSkewMs?: number
  /** Verified chains remembered (until they expire); default 10,000. */
  cacheSize?: number
}

export class CapabilityVerifier {
  readonly #roots: Set<string>
  readonly #revocations: RevocationStore | undefined
  readonly #now: () => number
  readonly #skew: number
  readonly #cache: LruCache<string, CachedChain>

  constructor(o: CapabilityVerifierOptions) {
    this.#roots = new Set(o.trustedRoots)
    this.#revocations = o.revocations
    this.#now = o.now ?? Date.now
    this.#skew = o.clockSkewMs ?? 30_000
    this.#cache = new LruCache(o.cacheSize ?? 10_000)
  }

  /** Verifies the whole chain of `token`; with `audience`/`ability`, also that it grants them. Throws typed errors. */
  async verify(token: string, o: { audience?: string; ability?: string } = {}): Promise<VerifiedCapability> {
    const now = this.#now()
    let entry = this.#cache.get(token)
    if (entry && (now >= entry.result.expiresAt || now + this.#skew < entry.notBefore)) {
      this.#cache.delete(token)
      entry = undefined
    }
    if (!entry) {
      entry = await this.#verifyChain(token, now)
      this.#cache.set(token, entry)
    }
    await this.#checkRevocations(entry)
    const r = entry.result
    if (o.audience !== undefined && r.audience !== o.audience) throw new NotAudienceError(`token is for ${r.audience}, not ${o.audience}`)
    if (o.ability !== undefined && !r.abilities.some((a) => abilityCovers(a.can, o.ability!))) {
      throw new CapabilityDeniedError(`token does not grant ${o.ability}`)
    }
    return r
  }

  /** The first token that grants `ability` to `audience`; otherwise CapabilityDeniedError with every reason. */
  async covers(tokens: string[], o: { audience: string; ability: string }): Promise<VerifiedCapability> {
    if (!Array.isArray(tokens) || tokens.length === 0) throw new CapabilityDeniedError(`no capability presented for ${o.ability}`)
    const reasons: string[] = []
    for (const t of tokens) {
      try {
        return await this.verify(t, o)
      } catch (err) {
        if (!(err instanceof IdentityError)) throw err
        reasons.push(`${err.name}: ${err.message}`)
      }
    }
    throw new CapabilityDeniedError(`no presented capability grants ${o.ability} to ${o.audience} (${reasons.join('; ')})`)
  }

  async #checkRevocations(entry: CachedChain): Promise<void> {
    const store = this.#revocations
    if (!store) return
    for (const link of entry.links) {
      if (store.revokersOf) {
        const by = await store.revokersOf(link.hash)
        if (by.some((d) => link.issuers.includes(d))) throw new RevokedCapabilityError(`a token in the chain was revoked (sha256 ${link.hash})`)
      } else if (await store.isRevoked(link.hash)) {
        throw new RevokedCapabilityError(`a token in the chain was revoked (sha256 ${link.hash})`)
      }
    }
  }

  async #verifyChain(token: string, now: number): Promise<CachedChain> {
    const chain = decodeCapabilityChain(token) // leaf first
    for (let i = 0; i + 1 < chain.length; i++) checkLink(chain[i]!, chain[i + 1]!)
    const root = chain[chain.length - 1]!
    if (!this.#roots.has(root.iss)) throw new UntrustedRootError(`chain root ${root.iss} is not a trusted root`)
    let notBefore = 0
    for (const c of chain) {
      if (now >= c.exp * 1000) throw new CapabilityExpiredError(`a token in the chain expired at ${new Date(c.exp * 1000).toISOString()}`)
      if (c.nbf !== undefined) {
        notBefore = Math.max(notBefore, c.nbf * 1000)
        if (c.nbf * 1000 > now + this.#skew) throw new CapabilityExpiredError(`a token in the chain is not valid before ${new Date(c.nbf * 1000).toISOString()}`)
      }
    }
    for (const c of chain) {
      try {
        // Stock did-jwt verification through did-resolver; time policies are ours (typed errors, one clock).
        const v = await verifyJWT(c.jwt, { resolver, audience: c.aud, policies: { nbf: false, iat: false, exp: false } })
        if (v.issuer !== c.iss) throw new Error('issuer mismatch')
      } catch (err) {
        throw new CapabilitySignatureError(`signature of a token by ${c.iss} does not verify: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`)
      }
    }
    const leaf = chain[0]!
    const links = chain.map((c, i) => ({ hash: tokenHash(c.jwt), issuers: chain.slice(i).map((x) => x.iss) }))
    return {
      // frozen: the same object is returned from the cache to every caller
      result: deepFreeze({
        issuer: leaf.iss,
        audience: leaf.aud,
        abilities: leaf.att,
        expiresAt: Math.min(...chain.map((c) => c.exp)) * 1000,
        chain: chain.map((c) => c.jwt).reverse(),
        root: root.iss,
      }),
      links,
      notBefore,
    }
  }
}
