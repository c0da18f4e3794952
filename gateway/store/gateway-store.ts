// The gateway's auth state (spec/auth.md "Storage"): accounts, sessions, one-time email tokens, TOTP
// recovery codes, failed attempts (the rate limits, shared by every gateway on one database), in the
// gateway's database (store/database.ts: node:sqlite or PostgreSQL). Tokens, session ids and recovery codes are stored as
// SHA-256 hashes only; passwords as argon2id PHC strings; TOTP secrets sealed by the caller (auth/sealed.ts).
import { SqliteDatabase, type GatewayDatabase, type SqlRow } from './database.ts'
import { randomUUID } from 'node:crypto'

export interface Account {
  id: string
  email: string
  passwordHash: string
  verifiedAt: number | null
  totpSecret: string | null
  /** A secret being enrolled, not confirmed yet. */
  totpPending: string | null
  /** The last TOTP step accepted (a code is used once). */
  totpLastStep: number | null
  createdAt: number
}

export interface Session {
  /** SHA-256 of the token (the token itself is only in the client's cookie). */
  hash: string
  /** A public id for listing and revoking (not the token). */
  id: string
  accountId: string
  createdAt: number
  lastSeenAt: number
  expiresAt: number
}

export type EmailTokenKind = 'verify' | 'reset'

type Row = SqlRow

const account = (r: Row): Account => ({
  id: String(r.id), email: String(r.email), passwordHash: String(r.password_hash), verifiedAt: r.verified_at === null ? null : Number(r.verified_at),
  totpSecret: r.totp_secret as string | null, totpPending: r.totp_pending as string | null, totpLastStep: r.totp_last_step === null ? null : Number(r.totp_last_step), createdAt: Number(r.created_at),
})
const session = (r: Row): Session => ({ hash: String(r.hash), id: String(r.id), accountId: String(r.account_id), createdAt: Number(r.created_at), lastSeenAt: Number(r.last_seen_at), expiresAt: Number(r.expires_at) })

export const GATEWAY_SCHEMA = `
  CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, verified_at BIGINT,
    totp_secret TEXT, totp_pending TEXT, totp_last_step BIGINT, created_at BIGINT NOT NULL);
  CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
  CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account_id);
  CREATE TABLE IF NOT EXISTS recovery_codes (
    hash TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), used_at BIGINT);
  CREATE TABLE IF NOT EXISTS email_tokens (
    hash TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), kind TEXT NOT NULL,
    expires_at BIGINT NOT NULL, used_at BIGINT);
  CREATE TABLE IF NOT EXISTS attempts (kind TEXT NOT NULL, subject TEXT NOT NULL, at BIGINT NOT NULL);
  CREATE INDEX IF NOT EXISTS attempts_subject ON attempts (kind, subject, at);
`

export class GatewayStore {
  readonly #db: GatewayDatabase

  private constructor(db: GatewayDatabase) {
    this.#db = db
  }

  /** The store on `db`, its tables made if missing. */
  static async open(db: GatewayDatabase): Promise<GatewayStore> {
    await db.migrate(GATEWAY_SCHEMA)
    return new GatewayStore(db)
  }

  /** The store in the node:sqlite file at `path` (tests, benchmarks). */
  static openFile(path: string): Promise<GatewayStore> {
    return GatewayStore.open(new SqliteDatabase(path))
  }

  /** The database, for the gateway's other stores (tenant-store.ts, secret-store.ts) to share. */
  get database(): GatewayDatabase {
    return this.#db
  }

  close(): Promise<void> {
    return this.#db.close()
  }

  async createAccount(email: string, passwordHash: string, now: number): Promise<Account | undefined> {
    const id = randomUUID()
    const n = await this.#db.run('INSERT INTO accounts (id, email, password_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (email) DO NOTHING', [id, email, passwordHash, now])
    return n === 1 ? this.accountById(id) : undefined
  }

  async accountByEmail(email: string): Promise<Account | undefined> {
    const r = await this.#db.get('SELECT * FROM accounts WHERE email = ?', [email])
    return r ? account(r) : undefined
  }

  async accountById(id: string): Promise<Account | undefined> {
    const r = await this.#db.get('SELECT * FROM accounts WHERE id = ?', [id])
    return r ? account(r) : undefined
  }

  async markVerified(id: string, now: number): Promise<void> {
    await this.#db.run('UPDATE accounts SET verified_at = COALESCE(verified_at, ?) WHERE id = ?', [now, id])
  }

  async setPassword(id: string, passwordHash: string): Promise<void> {
    await this.#db.run('UPDATE accounts SET password_hash = ? WHERE id = ?', [passwordHash, id])
  }

  async setTotpPending(id: string, secret: string | null): Promise<void> {
    await this.#db.run('UPDATE accounts SET totp_pending = ? WHERE id = ?', [secret, id])
  }

  async confirmTotp(id: string, step: number): Promise<void> {
    await this.#db.run('UPDATE accounts SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ? WHERE id = ?', [step, id])
  }

  /** Records `step` as used if it is later than the last one; false when it was used (or an earlier one was). */
  async useTotpStep(id: string, step: number): Promise<boolean> {
    return (await this.#db.run('UPDATE accounts SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)', [step, id, step])) === 1
  }

  /** Replaces the account's recovery codes (their hashes), all at once. */
  async setRecoveryCodes(accountId: string, hashes: string[]): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.run('DELETE FROM recovery_codes WHERE account_id = ?', [accountId])
      for (const h of hashes) await tx.run('INSERT INTO recovery_codes (hash, account_id) VALUES (?, ?)', [h, accountId])
    })
  }

  /** Uses one recovery code of the account once; false when unknown or used. */
  async useRecoveryCode(accountId: string, hash: string, now: number): Promise<boolean> {
    return (await this.#db.run('UPDATE recovery_codes SET used_at = ? WHERE account_id = ? AND hash = ? AND used_at IS NULL', [now, accountId, hash])) === 1
  }

  async recoveryCodesLeft(accountId: string): Promise<number> {
    return Number((await this.#db.get('SELECT COUNT(*) AS n FROM recovery_codes WHERE account_id = ? AND used_at IS NULL', [accountId]))!.n)
  }

  async addEmailToken(hash: string, accountId: string, kind: EmailTokenKind, expiresAt: number): Promise<void> {
    await this.#db.run('INSERT INTO email_tokens (hash, account_id, kind, expires_at) VALUES (?, ?, ?, ?)', [hash, accountId, kind, expiresAt])
  }

  /** Uses a token once: its account id, or undefined when unknown, of another kind, used or expired. */
  async useEmailToken(hash: string, kind: EmailTokenKind, now: number): Promise<string | undefined> {
    const r = await this.#db.get('UPDATE email_tokens SET used_at = ? WHERE hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ? RETURNING account_id', [now, hash, kind, now])
    return r ? String(r.account_id) : undefined
  }

  /** The account a token of `kind` belongs to while it is unused and in time (without using it). */
  async accountForToken(hash: string, kind: EmailTokenKind, now: number): Promise<Account | undefined> {
    const r = await this.#db.get('SELECT a.* FROM email_tokens t JOIN accounts a ON a.id = t.account_id WHERE t.hash = ? AND t.kind = ? AND t.used_at IS NULL AND t.expires_at > ?', [hash, kind, now])
    return r ? account(r) : undefined
  }

  async addSession(s: Session): Promise<void> {
    await this.#db.run('INSERT INTO sessions (hash, id, account_id, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)', [s.hash, s.id, s.accountId, s.createdAt, s.lastSeenAt, s.expiresAt])
  }

  async session(hash: string): Promise<Session | undefined> {
    const r = await this.#db.get('SELECT * FROM sessions WHERE hash = ?', [hash])
    return r ? session(r) : undefined
  }

  async touchSession(hash: string, now: number): Promise<void> {
    await this.#db.run('UPDATE sessions SET last_seen_at = ? WHERE hash = ?', [now, hash])
  }

  async sessionsOf(accountId: string): Promise<Session[]> {
    return (await this.#db.all('SELECT * FROM sessions WHERE account_id = ? ORDER BY created_at', [accountId])).map(session)
  }

  async deleteSession(hash: string): Promise<void> {
    await this.#db.run('DELETE FROM sessions WHERE hash = ?', [hash])
  }

  /** Ends one session of `accountId` by its public id; false when it is not that account's. */
  async deleteSessionById(accountId: string, id: string): Promise<boolean> {
    return (await this.#db.run('DELETE FROM sessions WHERE account_id = ? AND id = ?', [accountId, id])) === 1
  }

  /** Ends every session of an account but `keepHash` (after a password or factor change). */
  async deleteOtherSessions(accountId: string, keepHash: string | null): Promise<number> {
    return this.#db.run('DELETE FROM sessions WHERE account_id = ? AND hash IS DISTINCT FROM ?', [accountId, keepHash])
  }

  /** Failed attempts of `kind` by `subject` since `since` (the rate limits: auth/attempts.ts). */
  async attemptsSince(kind: string, subject: string, since: number): Promise<{ count: number; first: number | null }> {
    const r = await this.#db.get('SELECT COUNT(*) AS n, MIN(at) AS first FROM attempts WHERE kind = ? AND subject = ? AND at > ?', [kind, subject, since])
    return { count: Number(r?.n ?? 0), first: r?.first === null || r?.first === undefined ? null : Number(r.first) }
  }

  /** Records a failed attempt; attempts older than `forgetBefore` go. */
  async addAttempt(kind: string, subject: string, at: number, forgetBefore: number): Promise<void> {
    await this.#db.run('INSERT INTO attempts (kind, subject, at) VALUES (?, ?, ?)', [kind, subject, at])
    await this.#db.run('DELETE FROM attempts WHERE kind = ? AND subject = ? AND at <= ?', [kind, subject, forgetBefore])
  }

  async clearAttempts(kind: string, subject: string): Promise<void> {
    await this.#db.run('DELETE FROM attempts WHERE kind = ? AND subject = ?', [kind, subject])
  }

  /** Raw rows, for tests that search the store for secrets. */
  async dump(): Promise<string> {
    const tables = ['accounts', 'sessions', 'email_tokens', 'recovery_codes']
    const out: Record<string, SqlRow[]> = {}
    for (const t of tables) out[t] = await this.#db.all(`SELECT * FROM ${t}`)
    return JSON.stringify(out)
  }
}
