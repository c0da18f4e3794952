// Accounts and sessions (spec/auth.md): sign-up with email verification, login with password and TOTP,
// sessions as opaque random tokens with idle and absolute time-outs, TOTP enrolment, password reset by a
// single-use short-lived link that does not bypass TOTP. No answer tells whether an email has an account.
import { randomUUID } from 'node:crypto'
import type { Mailer } from '../mail/mailer.ts'
import type { Account, GatewayStore, Session } from '../store/gateway-store.ts'
import { AuthRequiredError, EmailNotVerifiedError, InvalidCredentialsError, InvalidRequestError, InvalidTokenError, TotpRequiredError } from '../errors.ts'
import { Attempts } from './attempts.ts'
import { checkPasswordPolicy, decoyHash, hashPassword, verifyPassword } from './passwords.ts'
import { isToken, newToken, tokenHash } from './tokens.ts'
import { matchTotp, newTotpSecret, totpUri } from './totp.ts'
import type { Sealer } from './sealed.ts'
import { randomInt } from 'node:crypto'

/** Recovery codes: 10 of `xxxxx-xxxxx` over a 32-letter alphabet (50 bits each), shown once, stored hashed. */
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'.padEnd(32, '0')
const RECOVERY = /^[a-z0-9]{5}-[a-z0-9]{5}$/
function newRecoveryCodes(): string[] {
  const one = (): string => Array.from({ length: 10 }, () => RECOVERY_ALPHABET[randomInt(32)]).join('').replace(/^(.{5})/, '$1-')
  return Array.from({ length: 10 }, one)
}

export interface AuthTimes {
  /** A session ends this long after its last use (default 30 min). */
  idleMs: number
  /** A session ends this long after its login whatever its use (default 12 h). */
  absoluteMs: number
  /** A verification link is good this long (default 24 h); a reset link (default 20 min). */
  verifyMs: number
  resetMs: number
}

export const DEFAULT_TIMES: AuthTimes = { idleMs: 30 * 60_000, absoluteMs: 12 * 3600_000, verifyMs: 24 * 3600_000, resetMs: 20 * 60_000 }

export interface AuthServiceInit {
  store: GatewayStore
  mailer: Mailer
  /** Seals TOTP secrets at rest (the gateway's key). */
  sealer: Sealer
  /** Where links in mails point (e.g. https://gateway.example/): `<base>verify?token=...`. */
  publicUrl: string
  times?: Partial<AuthTimes>
  now?: () => number
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,253}\.[^\s@]{2,63}$/

export function normalEmail(x: unknown): string {
  if (typeof x !== 'string' || x.length > 320 || !EMAIL.test(x.trim())) throw new InvalidRequestError("'email' must be an email address", { field: 'email' })
  return x.trim().toLowerCase()
}

export interface LoggedIn {
  /** The session token for the cookie (shown once; only its hash is kept). */
  token: string
  session: Session
  account: Account
}

export class AuthService {
  readonly #s: GatewayStore
  readonly #mail: Mailer
  readonly #seal: Sealer
  readonly #url: string
  readonly #t: AuthTimes
  readonly #now: () => number
  /** Failed logins per email: 10 per 15 min. Failed TOTP codes per account: 10 per 15 min. Mails per email: 5 per hour. */
  readonly #logins: Attempts
  readonly #codes: Attempts
  readonly #mails: Attempts

  constructor(init: AuthServiceInit) {
    this.#s = init.store
    this.#mail = init.mailer
    this.#seal = init.sealer
    this.#url = init.publicUrl.endsWith('/') ? init.publicUrl : `${init.publicUrl}/`
    this.#t = { ...DEFAULT_TIMES, ...init.times }
    this.#now = init.now ?? Date.now
    this.#logins = new Attempts(init.store, 'login', 10, 15 * 60_000)
    this.#codes = new Attempts(init.store, 'code', 10, 15 * 60_000)
    this.#mails = new Attempts(init.store, 'mail', 5, 3600_000)
  }

  /** The origin of the public URL the mailed links point at: the dashboard's own (a proxy may rewrite Host). */
  get publicOrigin(): string {
    return new URL(this.#url).origin
  }

  /**
   * Signs up: the same answer whether or not the email has an account. The mail limit is checked first (no
   * argon2 work for a flood). A new account gets a verification mail; an existing unverified one gets a fresh
   * link (its first mail may have been lost, and nothing else would ever send another); a verified one gets a
   * mail saying someone tried (its owner learns of it; the caller learns nothing).
   */
  async signUp(emailIn: unknown, passwordIn: unknown): Promise<void> {
    const email = normalEmail(emailIn)
    const password = checkPasswordPolicy(passwordIn)
    const now = this.#now()
    await this.#mails.check(email, now)
    await this.#mails.fail(email, now)
    const created = await this.#s.createAccount(email, await hashPassword(password), now)
    if (created) return this.#sendVerification(created, now)
    const existing = await this.#s.accountByEmail(email)
    if (existing && existing.verifiedAt === null) return this.#sendVerification(existing, now)
    await this.#mail.send({ to: email, subject: 'NoirLedger: sign-up attempt', text: 'Someone tried to sign up with this address, which already has an account. If it was you, log in or reset your password.' })
  }

  async #sendVerification(a: Account, now: number): Promise<void> {
    const token = newToken()
    await this.#s.addEmailToken(tokenHash(token), a.id, 'verify', now + this.#t.verifyMs)
    await this.#mail.send({ to: a.email, subject: 'NoirLedger: verify your email', text: `Open this link to verify your email address:\n${this.#url}verify?token=${token}\n\nIt works once, for 24 hours.` })
  }

  async verifyEmail(token: unknown): Promise<void> {
    if (!isToken(token)) throw new InvalidTokenError('not a verification token')
    const now = this.#now()
    const id = await this.#s.useEmailToken(tokenHash(token), 'verify', now)
    if (!id) throw new InvalidTokenError('the link is unknown, used or expired')
    await this.#s.markVerified(id, now)
  }

  /**
   * Logs in: InvalidCredentialsError for an unknown email and a wrong password alike (both verify an argon2id
   * hash, so they take as long); EmailNotVerifiedError and TotpRequiredError only after the right password.
   */
  async login(emailIn: unknown, passwordIn: unknown, totp: unknown): Promise<LoggedIn> {
    const email = normalEmail(emailIn)
    if (typeof passwordIn !== 'string' || passwordIn.length > 1024) throw new InvalidCredentialsError('wrong email or password')
    const now = this.#now()
    await this.#logins.check(email, now)
    const a = await this.#s.accountByEmail(email)
    const ok = await verifyPassword(passwordIn, a?.passwordHash ?? (await decoyHash()))
    if (!a || !ok) {
      await this.#logins.fail(email, now)
      throw new InvalidCredentialsError('wrong email or password')
    }
    if (a.verifiedAt === null) throw new EmailNotVerifiedError('verify your email first (see the mail sent at sign-up)')
    if (a.totpSecret !== null) await this.#checkCode(a, totp, now)
    await this.#logins.clear(email)
    return await this.#newSession(a, now)
  }

  /** A current TOTP code, or one unused recovery code (used up by this). */
  async #checkCode(a: Account, code: unknown, now: number): Promise<void> {
    await this.#codes.check(a.id, now)
    if (typeof code === 'string' && RECOVERY.test(code)) {
      if (!(await this.#s.useRecoveryCode(a.id, tokenHash(code), now))) {
        await this.#codes.fail(a.id, now)
        throw new TotpRequiredError('the recovery code is wrong or was used before')
      }
      await this.#codes.clear(a.id)
      return
    }
    const step = await matchTotp(this.#seal.open(a.totpSecret!, a.id), code, now)
    if (step === undefined || !(await this.#s.useTotpStep(a.id, step))) {
      await this.#codes.fail(a.id, now)
      throw new TotpRequiredError(code === undefined ? 'this account needs a TOTP code' : 'the TOTP code is wrong or was used before')
    }
    await this.#codes.clear(a.id)
  }

  async #newSession(a: Account, now: number): Promise<LoggedIn> {
    const token = newToken()
    const session: Session = { hash: tokenHash(token), id: randomUUID(), accountId: a.id, createdAt: now, lastSeenAt: now, expiresAt: now + this.#t.absoluteMs }
    await this.#s.addSession(session)
    return { token, session, account: a }
  }

  /** The session of a cookie's token, renewed (last seen); AuthRequiredError when none, idle or expired. */
  async authenticate(token: unknown): Promise<{ session: Session; account: Account }> {
    if (!isToken(token)) throw new AuthRequiredError('log in first')
    const hash = tokenHash(token)
    const s = await this.#s.session(hash)
    const now = this.#now()
    if (!s || now >= s.expiresAt || now - s.lastSeenAt >= this.#t.idleMs) {
      if (s) await this.#s.deleteSession(hash)
      throw new AuthRequiredError('log in first (the session ended)')
    }
    const account = await this.#s.accountById(s.accountId)
    if (!account) throw new AuthRequiredError('log in first')
    await this.#s.touchSession(hash, now)
    return { session: s, account }
  }

  async logout(session: Session): Promise<void> {
    await this.#s.deleteSession(session.hash)
  }

  async sessions(accountId: string): Promise<Session[]> {
    return (await this.#s.sessionsOf(accountId)).filter((s) => this.#now() < s.expiresAt)
  }

  /** Ends one of the account's own sessions by id; false for an id of no session of this account. */
  async revoke(accountId: string, id: unknown): Promise<boolean> {
    return typeof id === 'string' && (await this.#s.deleteSessionById(accountId, id))
  }

  /** Starts TOTP enrolment: a new secret (not active until confirmed with a code). */
  async enrolTotp(a: Account): Promise<{ secret: string; uri: string }> {
    const secret = newTotpSecret()
    await this.#s.setTotpPending(a.id, this.#seal.seal(secret, a.id))
    return { secret, uri: totpUri(secret, a.email) }
  }

  /** The otpauth:// URI of the account's pending enrolment (for its QR code); InvalidRequestError when none is pending. */
  async pendingTotpUri(a: Account): Promise<string> {
    const fresh = await this.#s.accountById(a.id)
    if (!fresh?.totpPending) throw new InvalidRequestError('no TOTP enrolment is pending (POST /v1/auth/totp first)')
    return totpUri(this.#seal.open(fresh.totpPending, a.id), fresh.email)
  }

  /**
   * Confirms the pending secret with a current code; every other session of the account ends. Answers the
   * account's recovery codes (shown this once: only their hashes are kept).
   */
  async confirmTotp(a: Account, current: Session, code: unknown): Promise<string[]> {
    const fresh = await this.#s.accountById(a.id)
    if (!fresh?.totpPending) throw new InvalidRequestError('no TOTP enrolment is pending (POST /v1/auth/totp first)')
    const now = this.#now()
    await this.#codes.check(a.id, now)
    const step = await matchTotp(this.#seal.open(fresh.totpPending, a.id), code, now)
    if (step === undefined) {
      await this.#codes.fail(a.id, now)
      throw new TotpRequiredError('the TOTP code does not match the new secret')
    }
    await this.#s.confirmTotp(a.id, step)
    await this.#s.deleteOtherSessions(a.id, current.hash)
    return await this.#recoveryCodes(a.id)
  }

  async #recoveryCodes(accountId: string): Promise<string[]> {
    const codes = newRecoveryCodes()
    await this.#s.setRecoveryCodes(accountId, codes.map((c) => tokenHash(c)))
    return codes
  }

  /** A new set of recovery codes (the old ones stop working); needs a current TOTP code. */
  async renewRecoveryCodes(a: Account, code: unknown): Promise<string[]> {
    const fresh = await this.#s.accountById(a.id)
    if (!fresh?.totpSecret) throw new InvalidRequestError('this account has no TOTP: enrol first')
    if (typeof code === 'string' && RECOVERY.test(code)) throw new TotpRequiredError('new recovery codes need a current TOTP code, not a recovery code')
    await this.#checkCode(fresh, code, this.#now())
    return await this.#recoveryCodes(a.id)
  }

  async recoveryCodesLeft(accountId: string): Promise<number> {
    return await this.#s.recoveryCodesLeft(accountId)
  }

  /** Sends a reset link when the email has a verified account; the same answer (nothing) either way. */
  async requestReset(emailIn: unknown): Promise<void> {
    const email = normalEmail(emailIn)
    const now = this.#now()
    await this.#mails.check(email, now)
    await this.#mails.fail(email, now)
    const a = await this.#s.accountByEmail(email)
    if (!a || a.verifiedAt === null) return
    const token = newToken()
    await this.#s.addEmailToken(tokenHash(token), a.id, 'reset', now + this.#t.resetMs)
    await this.#mail.send({ to: a.email, subject: 'NoirLedger: reset your password', text: `Open this link to choose a new password:\n${this.#url}reset?token=${token}\n\nIt works once, for 20 minutes. If you did not ask for it, ignore this mail.` })
  }

  /**
   * Sets a new password with a reset link. The link does not bypass TOTP: an account with TOTP must give a
   * current code too. Every session of the account ends; nobody is logged in by it.
   */
  async reset(token: unknown, passwordIn: unknown, totp: unknown): Promise<void> {
    if (!isToken(token)) throw new InvalidTokenError('not a reset token')
    const password = checkPasswordPolicy(passwordIn)
    const now = this.#now()
    const hash = tokenHash(token)
    // checked before it is used: a wrong TOTP code leaves the link usable (for its owner, within its time)
    const peek = await this.#s.accountForToken(hash, 'reset', now)
    if (!peek) throw new InvalidTokenError('the link is unknown, used or expired')
    if (peek.totpSecret !== null) await this.#checkCode(peek, totp, now)
    const id = await this.#s.useEmailToken(hash, 'reset', now)
    if (id !== peek.id) throw new InvalidTokenError('the link is unknown, used or expired')
    await this.#s.setPassword(id, await hashPassword(password))
    await this.#s.deleteOtherSessions(id, null)
  }
}
