// API keys (spec/gateway.md "API keys"): capability tokens (spec/capabilities.md) issued by the account's DID
// wallet to the gateway's DID, one ability per scope, expiring, shown once. The gateway keeps only the
// token's SHA-256, so a copy of its store yields no usable key. A presented key must be one the gateway
// issued and has not revoked (its hash is on record), unexpired, and its chain must verify with the
// account's DID as the only trusted root: deny by default, every refusal an InvalidApiKeyError naming why.
import { randomBytes } from 'node:crypto'
import { CapabilityVerifier, decodeCapabilityChain, issueCapability, tokenHash } from '../../identity/capabilities.ts'
import { InvalidApiKeyError, InvalidRequestError, NotFoundError } from '../errors.ts'
import type { ApiKeyRow, TenantStore } from '../store/tenant-store.ts'
import type { AccountWallets } from '../wallets/account-wallets.ts'

/** What a key may be scoped to, and the ability path each scope is issued as. */
export const SCOPES = {
  deploy: '/noir/gateway/deploy',
  logs: '/noir/gateway/logs',
  usage: '/noir/gateway/usage',
  secrets: '/noir/gateway/secrets',
} as const
export type Scope = keyof typeof SCOPES
export const isScope = (s: string): s is Scope => Object.hasOwn(SCOPES, s)
/** The scope each ability path stands for (the inverse of SCOPES). */
const SCOPE_OF_ABILITY: ReadonlyMap<string, Scope> = new Map(Object.entries(SCOPES).map(([s, p]) => [p as string, s as Scope]))

export const MAX_KEY_DAYS = 365
const MAX_KEYS_PER_ACCOUNT = 100

export interface ApiKeyView { id: string; name: string; scopes: string[]; createdAt: number; expiresAt: number; revoked: boolean; lastUsedAt: number | null }
export interface ApiKeyPrincipal { accountId: string; keyId: string; scopes: Scope[] }

export const keyView = (k: ApiKeyRow): ApiKeyView => ({ id: k.id, name: k.name, scopes: k.scopes, createdAt: k.createdAt, expiresAt: k.expiresAt, revoked: k.revokedAt !== null, lastUsedAt: k.lastUsedAt })

export class ApiKeys {
  readonly #store: TenantStore
  readonly #wallets: AccountWallets
  readonly #now: () => number
  readonly #verifiers = new Map<string, CapabilityVerifier>()

  constructor(o: { store: TenantStore; wallets: AccountWallets; now?: () => number }) {
    this.#store = o.store
    this.#wallets = o.wallets
    this.#now = o.now ?? Date.now
  }

  /** Issues a key; the token is in the answer only (shown once). */
  async create(accountId: string, o: { name: string; scopes: string[]; days: number }): Promise<ApiKeyView & { token: string }> {
    if (!/^[A-Za-z0-9 ._-]{1,64}$/.test(o.name)) throw new InvalidRequestError('a key name is 1-64 letters, digits, spaces, dots, dashes or underscores', { field: 'name' })
    const scopes = [...new Set(o.scopes)]
    if (scopes.length === 0) throw new InvalidRequestError('a key needs at least one scope', { field: 'scopes' })
    const unknown = scopes.filter((s) => !isScope(s))
    if (unknown.length > 0) throw new InvalidRequestError(`unknown scope ${JSON.stringify(unknown[0])}: one of ${Object.keys(SCOPES).join(', ')}`, { field: 'scopes' })
    if (!Number.isInteger(o.days) || o.days < 1 || o.days > MAX_KEY_DAYS) throw new InvalidRequestError(`days is a whole number from 1 to ${MAX_KEY_DAYS}`, { field: 'days' })
    if ((await this.#store.apiKeysOf(accountId)).filter((k) => k.revokedAt === null).length >= MAX_KEYS_PER_ACCOUNT) throw new InvalidRequestError(`an account holds at most ${MAX_KEYS_PER_ACCOUNT} live keys: revoke one first`, { field: 'scopes' })
    const now = this.#now()
    const token = await issueCapability(await this.#wallets.keyOf(accountId), {
      audience: (await this.#wallets.gatewayKey()).did,
      abilities: scopes.map((s) => ({ can: SCOPES[s as Scope] })),
      ttlMs: o.days * 86_400_000,
      now,
    })
    const row: ApiKeyRow = { hash: tokenHash(token), id: `key_${randomBytes(9).toString('base64url')}`, accountId, name: o.name, scopes, createdAt: now, expiresAt: decodeCapabilityChain(token)[0]!.exp * 1000, revokedAt: null, lastUsedAt: null }
    await this.#store.addApiKey(row)
    return { ...keyView(row), token }
  }

  /**
   * Registers a key the account's owner signed with their own DID (spec/gateway.md "Your own DID"): a
   * capability token issued by the account's wallet DID to the gateway's DID, every ability one of the scopes'
   * paths, expiring within MAX_KEY_DAYS. Kept as any key is (its hash; shown once: the owner has it).
   */
  async register(accountId: string, o: { name: string; token: string }): Promise<ApiKeyView> {
    if (!/^[A-Za-z0-9 ._-]{1,64}$/.test(o.name)) throw new InvalidRequestError('a key name is 1-64 letters, digits, spaces, dots, dashes or underscores', { field: 'name' })
    if (typeof o.token !== 'string' || o.token.length > 8192 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(o.token)) throw new InvalidApiKeyError('not a capability token', { reason: 'malformed' })
    if ((await this.#store.apiKeysOf(accountId)).filter((k) => k.revokedAt === null).length >= MAX_KEYS_PER_ACCOUNT) throw new InvalidRequestError(`an account holds at most ${MAX_KEYS_PER_ACCOUNT} live keys: revoke one first`, { field: 'token' })
    if (await this.#store.apiKeyByHash(tokenHash(o.token))) throw new InvalidRequestError('that key is registered already', { field: 'token' })
    const did = await this.#wallets.didOf(accountId)
    const now = this.#now()
    let verified
    try {
      verified = await new CapabilityVerifier({ trustedRoots: [did], now: () => now, clockSkewMs: 0 }).verify(o.token, { audience: (await this.#wallets.gatewayKey()).did })
    } catch (err) {
      throw new InvalidApiKeyError(`the key does not verify with the account's DID ${did} as its root and this gateway as its audience: ${(err as Error).message}`, { reason: 'signature' })
    }
    const scopes = [...new Set(verified.abilities.map((a) => SCOPE_OF_ABILITY.get(a.can)))]
    if (scopes.length === 0 || scopes.some((s) => s === undefined)) throw new InvalidRequestError(`every ability must be one of ${Object.values(SCOPES).join(', ')}`, { field: 'token' })
    const exp = decodeCapabilityChain(o.token)[0]!.exp * 1000
    if (exp > now + MAX_KEY_DAYS * 86_400_000 + 60_000) throw new InvalidRequestError(`a key expires within ${MAX_KEY_DAYS} days`, { field: 'token' })
    const row: ApiKeyRow = { hash: tokenHash(o.token), id: `key_${randomBytes(9).toString('base64url')}`, accountId, name: o.name, scopes: scopes as Scope[], createdAt: now, expiresAt: exp, revokedAt: null, lastUsedAt: null }
    await this.#store.addApiKey(row)
    return keyView(row)
  }

  async list(accountId: string): Promise<ApiKeyView[]> {
    return (await this.#store.apiKeysOf(accountId)).map(keyView)
  }

  async revoke(accountId: string, id: string): Promise<void> {
    if (!(await this.#store.revokeApiKey(accountId, id, this.#now()))) throw new NotFoundError('no such live key')
  }

  /** The account and scopes a presented key grants; InvalidApiKeyError otherwise. */
  async authenticate(token: string): Promise<ApiKeyPrincipal> {
    if (token.length > 8192 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) throw new InvalidApiKeyError('not an API key', { reason: 'malformed' })
    // the key and its account's wallet DID now, in one query: another gateway on the same database may have
    // bound the customer's own DID, and keys under the old one must stop verifying everywhere at once
    const found = await this.#store.apiKeyWithWallet(tokenHash(token))
    if (!found) throw new InvalidApiKeyError('this gateway did not issue that key', { reason: 'unknown' })
    const row = found.key
    if (row.revokedAt !== null) throw new InvalidApiKeyError('that key was revoked', { reason: 'revoked' })
    const now = this.#now()
    if (now >= row.expiresAt) throw new InvalidApiKeyError('that key has expired', { reason: 'expired' })
    const did = found.walletDid
    if (did === undefined) throw new InvalidApiKeyError('the key\'s account has no wallet', { reason: 'unknown' })
    let v = this.#verifiers.get(did)
    if (!v) this.#verifiers.set(did, (v = new CapabilityVerifier({ trustedRoots: [did], now: this.#now, clockSkewMs: 0 })))
    let verified
    try {
      verified = await v.verify(token, { audience: (await this.#wallets.gatewayKey()).did })
    } catch (err) {
      throw new InvalidApiKeyError(`the key does not verify: ${(err as Error).message}`, { reason: 'signature' })
    }
    const scopes = verified.abilities.map((a) => SCOPE_OF_ABILITY.get(a.can)).filter((s): s is Scope => s !== undefined)
    // last use is kept to the minute: a durable write per request would cost every call an fsync
    if (row.lastUsedAt === null || now - row.lastUsedAt >= 60_000) await this.#store.touchApiKey(row.hash, now)
    return { accountId: row.accountId, keyId: row.id, scopes }
  }
}
