// What the gateway keeps per account beside its auth state (the same database: store/database.ts; spec/gateway.md "Storage"):
// the account's DID wallet (its Ed25519 seed sealed under the gateway key), its API keys (SHA-256 of the
// token only, never the token), and which deployments it owns, each create recorded BEFORE the node is asked
// (write-ahead: a create interrupted by a crash is finished with the same idempotency key, never doubled).
// Also the gateway's own identity (its DID is the audience of every API key).
import type { GatewayDatabase, SqlRow } from './database.ts'

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

type Row = SqlRow

const apiKey = (r: Row): ApiKeyRow => ({
  hash: String(r.hash), id: String(r.id), accountId: String(r.account_id), name: String(r.name), scopes: JSON.parse(String(r.scopes)) as string[],
  createdAt: Number(r.created_at), expiresAt: Number(r.expires_at), revokedAt: r.revoked_at === null ? null : Number(r.revoked_at), lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
})
const owned = (r: Row): OwnedCreate => ({ accountId: String(r.account_id), key: String(r.idem_key), deploymentId: r.deployment_id === null ? null : String(r.deployment_id), createdAt: Number(r.created_at), workload: String(r.workload) })

const wallet = (r: Row): WalletRow => ({ accountId: String(r.account_id), did: String(r.did), sealedSeed: String(r.sealed_seed), createdAt: Number(r.created_at) })

export const TENANT_SCHEMA = `
  CREATE TABLE IF NOT EXISTS gateway_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS wallets (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id), did TEXT NOT NULL UNIQUE, sealed_seed TEXT NOT NULL, created_at BIGINT NOT NULL);
  CREATE TABLE IF NOT EXISTS did_challenges (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id), challenge TEXT NOT NULL, expires_at BIGINT NOT NULL);
  CREATE TABLE IF NOT EXISTS api_keys (
    hash TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL,
    scopes TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT, last_used_at BIGINT);
  CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys (account_id);
  CREATE TABLE IF NOT EXISTS owned_deployments (
    account_id TEXT NOT NULL REFERENCES accounts(id), idem_key TEXT NOT NULL, deployment_id TEXT UNIQUE, workload TEXT NOT NULL, created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, idem_key));
`

export class TenantStore {
  readonly #db: GatewayDatabase

  private constructor(db: GatewayDatabase) {
    this.#db = db
  }

  /** The store on `db` (after the auth store's tables: wallets and keys refer to accounts). */
  static async open(db: GatewayDatabase): Promise<TenantStore> {
    await db.migrate(TENANT_SCHEMA)
    return new TenantStore(db)
  }

  async meta(key: string): Promise<string | undefined> {
    const r = await this.#db.get('SELECT value FROM gateway_meta WHERE key = ?', [key])
    return r ? String(r.value) : undefined
  }

  /** Sets `key` once; the value already there wins (two processes starting at once agree). */
  async setMetaOnce(key: string, value: string): Promise<string> {
    await this.#db.run('INSERT INTO gateway_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', [key, value])
    return (await this.meta(key))!
  }

  async wallet(accountId: string): Promise<WalletRow | undefined> {
    const r = await this.#db.get('SELECT * FROM wallets WHERE account_id = ?', [accountId])
    return r ? wallet(r) : undefined
  }

  async walletByDid(did: string): Promise<WalletRow | undefined> {
    const r = await this.#db.get('SELECT * FROM wallets WHERE did = ?', [did])
    return r ? wallet(r) : undefined
  }

  /** Adds the account's wallet unless it has one; the stored one either way. */
  async addWallet(w: WalletRow): Promise<WalletRow> {
    await this.#db.run('INSERT INTO wallets (account_id, did, sealed_seed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (account_id) DO NOTHING', [w.accountId, w.did, w.sealedSeed, w.createdAt])
    return (await this.wallet(w.accountId))!
  }

  /**
   * The account's wallet becomes the customer's own did:key (spec/gateway.md "Your own DID"): the gateway
   * keeps no key for it (`sealedSeed` empty). A DID is one account's: false when another account holds it.
   */
  async bindOwnWallet(accountId: string, did: string, at: number): Promise<boolean> {
    const holder = await this.walletByDid(did)
    if (holder && holder.accountId !== accountId) return false
    try {
      await this.#db.run("INSERT INTO wallets (account_id, did, sealed_seed, created_at) VALUES (?, ?, '', ?) ON CONFLICT (account_id) DO UPDATE SET did = excluded.did, sealed_seed = '', created_at = excluded.created_at", [accountId, did, at])
    } catch {
      return false // another account bound the DID in between (did is UNIQUE)
    }
    return true
  }

  /** The account's one open DID-binding challenge (a new one replaces it). */
  async setDidChallenge(accountId: string, challenge: string, expiresAt: number): Promise<void> {
    await this.#db.run('INSERT INTO did_challenges (account_id, challenge, expires_at) VALUES (?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET challenge = excluded.challenge, expires_at = excluded.expires_at', [accountId, challenge, expiresAt])
  }

  /** Takes the account's open challenge away (spent by whoever takes it first, on any gateway). */
  async takeDidChallenge(accountId: string): Promise<{ challenge: string; expiresAt: number } | undefined> {
    const r = await this.#db.get('DELETE FROM did_challenges WHERE account_id = ? RETURNING challenge, expires_at', [accountId])
    return r ? { challenge: String(r.challenge), expiresAt: Number(r.expires_at) } : undefined
  }

  async addApiKey(k: ApiKeyRow): Promise<void> {
    await this.#db.run('INSERT INTO api_keys (hash, id, account_id, name, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [k.hash, k.id, k.accountId, k.name, JSON.stringify(k.scopes), k.createdAt, k.expiresAt])
  }

  async apiKeyByHash(hash: string): Promise<ApiKeyRow | undefined> {
    const r = await this.#db.get('SELECT * FROM api_keys WHERE hash = ?', [hash])
    return r ? apiKey(r) : undefined
  }

  /** A key by its hash with its account's wallet DID now (one query: a key check reads both on every request). */
  async apiKeyWithWallet(hash: string): Promise<{ key: ApiKeyRow; walletDid: string | undefined } | undefined> {
    const r = await this.#db.get('SELECT k.*, w.did AS wallet_did FROM api_keys k LEFT JOIN wallets w ON w.account_id = k.account_id WHERE k.hash = ?', [hash])
    return r ? { key: apiKey(r), walletDid: r.wallet_did === null || r.wallet_did === undefined ? undefined : String(r.wallet_did) } : undefined
  }

  async apiKeysOf(accountId: string): Promise<ApiKeyRow[]> {
    return (await this.#db.all('SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id', [accountId])).map(apiKey)
  }

  /** Revokes one key of `accountId` by its public id; false when it is not that account's (or already revoked). */
  async revokeApiKey(accountId: string, id: string, now: number): Promise<boolean> {
    return (await this.#db.run('UPDATE api_keys SET revoked_at = ? WHERE account_id = ? AND id = ? AND revoked_at IS NULL', [now, accountId, id])) === 1
  }

  async touchApiKey(hash: string, now: number): Promise<void> {
    await this.#db.run('UPDATE api_keys SET last_used_at = ? WHERE hash = ?', [now, hash])
  }

  /** Records the intent to create (account, key) unless recorded; the record either way. */
  async recordCreate(accountId: string, key: string, workload: string, now: number): Promise<OwnedCreate> {
    await this.#db.run('INSERT INTO owned_deployments (account_id, idem_key, workload, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (account_id, idem_key) DO NOTHING', [accountId, key, workload, now])
    return owned((await this.#db.get('SELECT * FROM owned_deployments WHERE account_id = ? AND idem_key = ?', [accountId, key]))!)
  }

  /** Forgets a create never sent (refused at admission): nothing finishes it later. */
  async forgetCreate(accountId: string, key: string): Promise<void> {
    await this.#db.run('DELETE FROM owned_deployments WHERE account_id = ? AND idem_key = ? AND deployment_id IS NULL', [accountId, key])
  }

  async settleCreate(accountId: string, key: string, deploymentId: string): Promise<void> {
    await this.#db.run('UPDATE owned_deployments SET deployment_id = ? WHERE account_id = ? AND idem_key = ?', [deploymentId, accountId, key])
  }

  /** Creates recorded but not answered yet (a crash between the record and the node's answer). */
  async unsettledCreates(): Promise<OwnedCreate[]> {
    return (await this.#db.all('SELECT * FROM owned_deployments WHERE deployment_id IS NULL ORDER BY created_at')).map(owned)
  }

  /** True when `deploymentId` is one of `accountId`'s. */
  async owns(accountId: string, deploymentId: string): Promise<boolean> {
    return (await this.#db.get('SELECT 1 AS one FROM owned_deployments WHERE account_id = ? AND deployment_id = ?', [accountId, deploymentId])) !== undefined
  }

  async deploymentsOf(accountId: string): Promise<string[]> {
    return (await this.#db.all('SELECT deployment_id FROM owned_deployments WHERE account_id = ? AND deployment_id IS NOT NULL ORDER BY created_at', [accountId])).map((r) => String(r.deployment_id))
  }

  async dump(): Promise<string> {
    const tables = ['gateway_meta', 'wallets', 'api_keys', 'owned_deployments']
    const out: Record<string, SqlRow[]> = {}
    for (const t of tables) out[t] = await this.#db.all(`SELECT * FROM ${t}`)
    return JSON.stringify(out)
  }
}
