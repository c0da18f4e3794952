// What the gateway keeps per account beside its auth state (same node:sqlite file; spec/gateway.md "Storage"):
// the account's DID wallet (its Ed25519 seed sealed under the gateway key), its API keys (SHA-256 of the
// token only, never the token), and which deployments it owns, each create recorded BEFORE the node is asked
// (write-ahead: a create interrupted by a crash is finished with the same idempotency key, never doubled).
// Also the gateway's own identity (its DID is the audience of every API key).
import type { DatabaseSync } from 'node:sqlite'
import { Statements } from './statements.ts'

export interface WalletRow { accountId: string; did: string; sealedSeed: string; createdAt: number }

export interface ApiKeyRow {
  /** SHA-256 (hex) of the token. */
  hash: string
  /** Public id, for listing and revoking. */
  id: string
  accountId: string
  name: string
  scopes: string[]
  createdAt: number
  expiresAt: number
  revokedAt: number | null
  lastUsedAt: number | null
}

export interface OwnedCreate { accountId: string; key: string; deploymentId: string | null; createdAt: number; /** The workload asked for (normalized JSON), kept so a create a crash interrupted can be finished. */ workload: string }

interface Row { [k: string]: string | number | null }

const apiKey = (r: Row): ApiKeyRow => ({
  hash: String(r.hash), id: String(r.id), accountId: String(r.account_id), name: String(r.name), scopes: JSON.parse(String(r.scopes)) as string[],
  createdAt: Number(r.created_at), expiresAt: Number(r.expires_at), revokedAt: r.revoked_at as number | null, lastUsedAt: r.last_used_at as number | null,
})
const owned = (r: Row): OwnedCreate => ({ accountId: String(r.account_id), key: String(r.idem_key), deploymentId: r.deployment_id as string | null, createdAt: Number(r.created_at), workload: String(r.workload) })

export class TenantStore {
  readonly #db: DatabaseSync
  readonly #sql: Statements

  constructor(db: DatabaseSync) {
    this.#db = db
    this.#sql = new Statements(db)
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS gateway_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS wallets (
        account_id TEXT PRIMARY KEY REFERENCES accounts(id), did TEXT NOT NULL UNIQUE, sealed_seed TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS api_keys (
        hash TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL,
        scopes TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER, last_used_at INTEGER);
      CREATE TABLE IF NOT EXISTS owned_deployments (
        account_id TEXT NOT NULL REFERENCES accounts(id), idem_key TEXT NOT NULL, deployment_id TEXT UNIQUE, workload TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (account_id, idem_key));
    `)
  }

  meta(key: string): string | undefined {
    const r = this.#sql.get('SELECT value FROM gateway_meta WHERE key = ?').get(key) as Row | undefined
    return r ? String(r.value) : undefined
  }

  /** Sets `key` once; the value already there wins (two processes starting at once agree). */
  setMetaOnce(key: string, value: string): string {
    this.#sql.get('INSERT INTO gateway_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING').run(key, value)
    return this.meta(key)!
  }

  wallet(accountId: string): WalletRow | undefined {
    const r = this.#sql.get('SELECT * FROM wallets WHERE account_id = ?').get(accountId) as Row | undefined
    return r ? { accountId: String(r.account_id), did: String(r.did), sealedSeed: String(r.sealed_seed), createdAt: Number(r.created_at) } : undefined
  }

  walletByDid(did: string): WalletRow | undefined {
    const r = this.#sql.get('SELECT * FROM wallets WHERE did = ?').get(did) as Row | undefined
    return r ? { accountId: String(r.account_id), did: String(r.did), sealedSeed: String(r.sealed_seed), createdAt: Number(r.created_at) } : undefined
  }

  /** Adds the account's wallet unless it has one; the stored one either way. */
  addWallet(w: WalletRow): WalletRow {
    this.#sql.get('INSERT INTO wallets (account_id, did, sealed_seed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(account_id) DO NOTHING').run(w.accountId, w.did, w.sealedSeed, w.createdAt)
    return this.wallet(w.accountId)!
  }

  /**
   * The account's wallet becomes the customer's own did:key (spec/gateway.md "Your own DID"): the gateway
   * keeps no key for it (`sealedSeed` empty). A DID is one account's: false when another account holds it.
   */
  bindOwnWallet(accountId: string, did: string, at: number): boolean {
    const holder = this.walletByDid(did)
    if (holder && holder.accountId !== accountId) return false
    this.#sql.get("INSERT INTO wallets (account_id, did, sealed_seed, created_at) VALUES (?, ?, '', ?) ON CONFLICT(account_id) DO UPDATE SET did = excluded.did, sealed_seed = '', created_at = excluded.created_at").run(accountId, did, at)
    return true
  }

  addApiKey(k: ApiKeyRow): void {
    this.#sql.get('INSERT INTO api_keys (hash, id, account_id, name, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(k.hash, k.id, k.accountId, k.name, JSON.stringify(k.scopes), k.createdAt, k.expiresAt)
  }

  apiKeyByHash(hash: string): ApiKeyRow | undefined {
    const r = this.#sql.get('SELECT * FROM api_keys WHERE hash = ?').get(hash) as Row | undefined
    return r ? apiKey(r) : undefined
  }

  apiKeysOf(accountId: string): ApiKeyRow[] {
    return (this.#sql.get('SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id').all(accountId) as Row[]).map(apiKey)
  }

  /** Revokes one key of `accountId` by its public id; false when it is not that account's (or already revoked). */
  revokeApiKey(accountId: string, id: string, now: number): boolean {
    return this.#sql.get('UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND id = ? AND revoked_at IS NULL').run(now, accountId, id).changes === 1
  }

  touchApiKey(hash: string, now: number): void {
    this.#sql.get('UPDATE api_keys SET last_used_at = ? WHERE hash = ?').run(now, hash)
  }

  /** Records the intent to create (account, key) unless recorded; the record either way. */
  recordCreate(accountId: string, key: string, workload: string, now: number): OwnedCreate {
    this.#sql.get('INSERT INTO owned_deployments (account_id, idem_key, workload, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(account_id, idem_key) DO NOTHING').run(accountId, key, workload, now)
    return owned(this.#sql.get('SELECT * FROM owned_deployments WHERE account_id = ? AND idem_key = ?').get(accountId, key) as Row)
  }

  settleCreate(accountId: string, key: string, deploymentId: string): void {
    this.#sql.get('UPDATE owned_deployments SET deployment_id = ? WHERE account_id = ? AND idem_key = ?').run(deploymentId, accountId, key)
  }

  /** Creates recorded but not answered yet (a crash between the record and the node's answer). */
  unsettledCreates(): OwnedCreate[] {
    return (this.#sql.get('SELECT * FROM owned_deployments WHERE deployment_id IS NULL ORDER BY created_at').all() as Row[]).map(owned)
  }

  /** True when `deploymentId` is one of `accountId`'s. */
  owns(accountId: string, deploymentId: string): boolean {
    return this.#sql.get('SELECT 1 FROM owned_deployments WHERE account_id = ? AND deployment_id = ?').get(accountId, deploymentId) !== undefined
  }

  deploymentsOf(accountId: string): string[] {
    return (this.#sql.get('SELECT deployment_id FROM owned_deployments WHERE account_id = ? AND deployment_id IS NOT NULL ORDER BY created_at').all(accountId) as Row[]).map((r) => String(r.deployment_id))
  }

  dump(): string {
    const tables = ['gateway_meta', 'wallets', 'api_keys', 'owned_deployments']
    return JSON.stringify(Object.fromEntries(tables.map((t) => [t, this.#sql.get(`SELECT * FROM ${t}`).all()])))
  }
}
