// The gateway's state in an embedded database (node:sqlite, one file; spec/auth.md "Storage"): accounts,
// sessions, one-time email tokens, TOTP recovery codes. Tokens, session ids and recovery codes are stored as
// SHA-256 hashes only; passwords as argon2id PHC strings; TOTP secrets sealed by the caller (auth/sealed.ts).
import { DatabaseSync } from 'node:sqlite'
import { Statements } from './statements.ts'
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

interface Row {
  [k: string]: string | number | null
}

const account = (r: Row): Account => ({
  id: String(r.id), email: String(r.email), passwordHash: String(r.password_hash), verifiedAt: r.verified_at as number | null,
  totpSecret: r.totp_secret as string | null, totpPending: r.totp_pending as string | null, totpLastStep: r.totp_last_step as number | null, createdAt: Number(r.created_at),
})
const session = (r: Row): Session => ({ hash: String(r.hash), id: String(r.id), accountId: String(r.account_id), createdAt: Number(r.created_at), lastSeenAt: Number(r.last_seen_at), expiresAt: Number(r.expires_at) })

export class GatewayStore {
  readonly #db: DatabaseSync
  readonly #sql: Statements

  /** `path`: the database file (':memory:' in unit tests of code around it). */
  constructor(path: string) {
    this.#db = new DatabaseSync(path)
    this.#sql = new Statements(this.#db)
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, verified_at INTEGER,
        totp_secret TEXT, totp_pending TEXT, totp_last_step INTEGER, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS sessions (
        hash TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL REFERENCES accounts(id),
        created_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS recovery_codes (
        hash TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), used_at INTEGER);
      CREATE TABLE IF NOT EXISTS email_tokens (
        hash TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), kind TEXT NOT NULL,
        expires_at INTEGER NOT NULL, used_at INTEGER);
    `)
  }

  close(): void {
    this.#db.close()
  }

  /** The open database, for the gateway's other stores (gateway/store/tenant-store.ts) to share its file and WAL. */
  sharedDatabase(): DatabaseSync {
    return this.#db
  }

  createAccount(email: string, passwordHash: string, now: number): Account | undefined {
    const id = randomUUID()
    const r = this.#sql.get('INSERT INTO accounts (id, email, password_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(email) DO NOTHING').run(id, email, passwordHash, now)
    return r.changes === 1 ? this.accountById(id) : undefined
  }

  accountByEmail(email: string): Account | undefined {
    const r = this.#sql.get('SELECT * FROM accounts WHERE email = ?').get(email) as Row | undefined
    return r ? account(r) : undefined
  }

  accountById(id: string): Account | undefined {
    const r = this.#sql.get('SELECT * FROM accounts WHERE id = ?').get(id) as Row | undefined
    return r ? account(r) : undefined
  }

  markVerified(id: string, now: number): void {
    this.#sql.get('UPDATE accounts SET verified_at = COALESCE(verified_at, ?) WHERE id = ?').run(now, id)
  }

  setPassword(id: string, passwordHash: string): void {
    this.#sql.get('UPDATE accounts SET password_hash = ? WHERE id = ?').run(passwordHash, id)
  }

  setTotpPending(id: string, secret: string | null): void {
    this.#sql.get('UPDATE accounts SET totp_pending = ? WHERE id = ?').run(secret, id)
  }

  confirmTotp(id: string, step: number): void {
    this.#sql.get('UPDATE accounts SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ? WHERE id = ?').run(step, id)
  }

  /** Records `step` as used if it is later than the last one; false when it was used (or an earlier one was). */
  useTotpStep(id: string, step: number): boolean {
    const r = this.#sql.get('UPDATE accounts SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)').run(step, id, step)
    return r.changes === 1
  }

  /** Replaces the account's recovery codes (their hashes). */
  setRecoveryCodes(accountId: string, hashes: string[]): void {
    this.#db.exec('BEGIN')
    try {
      this.#sql.get('DELETE FROM recovery_codes WHERE account_id = ?').run(accountId)
      const ins = this.#sql.get('INSERT INTO recovery_codes (hash, account_id) VALUES (?, ?)')
      for (const h of hashes) ins.run(h, accountId)
      this.#db.exec('COMMIT')
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }

  /** Uses one recovery code of the account once; false when unknown or used. */
  useRecoveryCode(accountId: string, hash: string, now: number): boolean {
    return this.#sql.get('UPDATE recovery_codes SET used_at = ? WHERE account_id = ? AND hash = ? AND used_at IS NULL').run(now, accountId, hash).changes === 1
  }

  recoveryCodesLeft(accountId: string): number {
    return Number((this.#sql.get('SELECT COUNT(*) AS n FROM recovery_codes WHERE account_id = ? AND used_at IS NULL').get(accountId) as Row).n)
  }

  addEmailToken(hash: string, accountId: string, kind: EmailTokenKind, expiresAt: number): void {
    this.#sql.get('INSERT INTO email_tokens (hash, account_id, kind, expires_at) VALUES (?, ?, ?, ?)').run(hash, accountId, kind, expiresAt)
  }

  /** Uses a token once: its account id, or undefined when unknown, of another kind, used or expired. */
  useEmailToken(hash: string, kind: EmailTokenKind, now: number): string | undefined {
    const r = this.#sql.get('UPDATE email_tokens SET used_at = ? WHERE hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ? RETURNING account_id').get(now, hash, kind, now) as Row | undefined
    return r ? String(r.account_id) : undefined
  }

  /** The account a token of `kind` belongs to while it is unused and in time (without using it). */
  accountForToken(hash: string, kind: EmailTokenKind, now: number): Account | undefined {
    const r = this.#sql.get('SELECT a.* FROM email_tokens t JOIN accounts a ON a.id = t.account_id WHERE t.hash = ? AND t.kind = ? AND t.used_at IS NULL AND t.expires_at > ?').get(hash, kind, now) as Row | undefined
    return r ? account(r) : undefined
  }

  addSession(s: Session): void {
    this.#sql.get('INSERT INTO sessions (hash, id, account_id, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(s.hash, s.id, s.accountId, s.createdAt, s.lastSeenAt, s.expiresAt)
  }

  session(hash: string): Session | undefined {
    const r = this.#sql.get('SELECT * FROM sessions WHERE hash = ?').get(hash) as Row | undefined
    return r ? session(r) : undefined
  }

  touchSession(hash: string, now: number): void {
    this.#sql.get('UPDATE sessions SET last_seen_at = ? WHERE hash = ?').run(now, hash)
  }

  sessionsOf(accountId: string): Session[] {
    return (this.#sql.get('SELECT * FROM sessions WHERE account_id = ? ORDER BY created_at').all(accountId) as Row[]).map(session)
  }

  deleteSession(hash: string): void {
    this.#sql.get('DELETE FROM sessions WHERE hash = ?').run(hash)
  }

  /** Ends one session of `accountId` by its public id; false when it is not that account's. */
  deleteSessionById(accountId: string, id: string): boolean {
    return this.#sql.get('DELETE FROM sessions WHERE account_id = ? AND id = ?').run(accountId, id).changes === 1
  }

  /** Ends every session of an account but `keepHash` (after a password or factor change). */
  deleteOtherSessions(accountId: string, keepHash: string | null): number {
    return Number(this.#sql.get('DELETE FROM sessions WHERE account_id = ? AND hash IS NOT ?').run(accountId, keepHash).changes)
  }

  /** Raw rows, for tests that search the store for secrets. */
  dump(): string {
    const tables = ['accounts', 'sessions', 'email_tokens', 'recovery_codes']
    return JSON.stringify(Object.fromEntries(tables.map((t) => [t, this.#sql.get(`SELECT * FROM ${t}`).all()])))
  }
}
