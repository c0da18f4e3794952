// The gateway's auth slice over real HTTP (fastify on 127.0.0.1), a real SMTP server on loopback
// (smtp-server) that the test reads the mail from, and a real node:sqlite file: sign-up, verification by the
// mailed link, login, TOTP enrolment and login with a code, sessions listed and revoked, password reset that
// does not bypass TOTP; each rule tried as an attacker would (spec/auth.md).
import t from 'tap'
import { renderSVG } from 'uqr'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { generate } from 'otplib'
import { AuthService } from '../auth/auth-service.ts'
import { gatewayApp, SESSION_COOKIE } from '../http/app.ts'
import { Mailer } from '../mail/mailer.ts'
import { GatewayStore } from '../store/gateway-store.ts'
import { Sealer } from '../auth/sealed.ts'
import { linkToken, smtpOnLoopback } from './mail-rig.ts'

async function rig(t: { teardown(fn: () => Promise<void> | void): void }, clock = { now: Date.now() }) {
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-gateway-'))
  const store = await GatewayStore.openFile(join(dir, 'gateway.db'))
  const mailer = new Mailer({ host: '127.0.0.1', port: mail.port, from: 'NoirLedger <noreply@noir.test>' })
  const auth = new AuthService({ store, mailer, sealer: Sealer.fromFile(join(dir, 'secret.key')), publicUrl: 'https://gateway.noir.test/', now: () => clock.now })
  const app = gatewayApp({ auth, allowedOrigins: ['https://gateway.noir.test'] })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await app.close()
    mailer.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const call = async (method: string, path: string, o: { body?: unknown; cookie?: string; origin?: string } = {}) => {
    const r = await fetch(base + path, {
      method,
      headers: { ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(o.cookie ? { cookie: `${SESSION_COOKIE}=${o.cookie}` } : {}), ...(o.origin ? { origin: o.origin } : {}) },
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    })
    const text = await r.text()
    const setCookie = r.headers.get('set-cookie') ?? ''
    return { status: r.status, type: r.headers.get('content-type') ?? '', json: text ? (JSON.parse(text) as Record<string, unknown>) : {}, setCookie, cookie: /noir_session=([A-Za-z0-9_-]*)/.exec(setCookie)?.[1] }
  }
  const lastMailTo = mail.lastMailTo
  return { call, mail, lastMailTo, store, clock, dir, base }
}

const PASSWORD = 'correct horse battery staple'

t.test('sign up, verify by the mailed link, log in, read the account', async (t) => {
  const { call, mail, lastMailTo, store } = await rig(t)
  const up = await call('POST', '/v1/auth/signup', { body: { email: 'Ada@Example.org', password: PASSWORD } })
  t.equal(up.status, 202)
  const body = await lastMailTo('ada@example.org')
  t.match(body, /verify your email/i)
  const token = linkToken(body, 'verify')
  const early = await call('POST', '/v1/auth/login', { body: { email: 'ada@example.org', password: PASSWORD } })
  t.equal(early.json.name, 'EmailNotVerifiedError', 'not before the email is verified')
  const verified = await call('POST', '/v1/auth/verify', { body: { token } })
  t.equal(verified.status, 200, JSON.stringify(verified.json))
  t.equal((await call('POST', '/v1/auth/verify', { body: { token } })).json.name, 'InvalidTokenError', 'the link works once')
  const login = await call('POST', '/v1/auth/login', { body: { email: 'ada@example.org', password: PASSWORD } })
  t.equal(login.status, 200)
  t.match(login.setCookie, /HttpOnly/)
  t.match(login.setCookie, /Secure/)
  t.match(login.setCookie, /SameSite=Strict/)
  t.equal(Buffer.from(login.cookie!, 'base64url').length, 32, 'the session token carries 256 random bits')
  const me = await call('GET', '/v1/account', { cookie: login.cookie! })
  t.same([me.json.email, me.json.verified, me.json.totp], ['ada@example.org', true, false])
  t.equal((await call('GET', '/v1/account')).json.name, 'AuthRequiredError')
  // stored: argon2id at OWASP's parameters, no password, no token
  const dump = await store.dump()
  t.match(dump, /\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
  t.notOk(dump.includes(PASSWORD), 'the password is nowhere in the database')
  t.notOk(dump.includes(login.cookie!) || dump.includes(token), 'nor any token (only their hashes)')
  t.equal(mail.mails.length, 1)
  // a second login renews the session: a new token, the first still listed until it ends
  const again = await call('POST', '/v1/auth/login', { body: { email: 'ada@example.org', password: PASSWORD } })
  t.not(again.cookie, login.cookie)
  const logout = await call('POST', '/v1/auth/logout', { cookie: again.cookie! })
  t.equal(logout.status, 200)
  t.equal((await call('GET', '/v1/account', { cookie: again.cookie! })).json.name, 'AuthRequiredError', 'a logged-out session is gone')
})

t.test('no account enumeration: sign-up, login and reset answer the same for a known and an unknown email', async (t) => {
  const { call, lastMailTo, mail } = await rig(t)
  await call('POST', '/v1/auth/signup', { body: { email: 'bob@example.org', password: PASSWORD } })
  await call('POST', '/v1/auth/verify', { body: { token: linkToken(await lastMailTo('bob@example.org'), 'verify') } })
  const known = await call('POST', '/v1/auth/signup', { body: { email: 'bob@example.org', password: 'another long password' } })
  const fresh = await call('POST', '/v1/auth/signup', { body: { email: 'carol@example.org', password: 'another long password' } })
  t.same([known.status, known.json], [fresh.status, fresh.json], 'sign-up: the same answer')
  t.match(await lastMailTo('bob@example.org', 1), /already has an account/, 'the owner is told by mail, the caller learns nothing')
  // carol never verified: signing up again sends her a fresh link (a lost first mail is not a dead end)
  const again = await call('POST', '/v1/auth/signup', { body: { email: 'carol@example.org', password: 'another long password' } })
  t.same([again.status, again.json], [fresh.status, fresh.json], 'the same answer again')
  const second = await lastMailTo('carol@example.org', 1)
  t.match(second, /verify your email/i, 'an unverified account gets a new verification link')
  t.equal((await call('POST', '/v1/auth/verify', { body: { token: linkToken(second, 'verify') } })).status, 200, 'and it verifies')
  const wrong = await call('POST', '/v1/auth/login', { body: { email: 'bob@example.org', password: 'not the password at all' } })
  const nobody = await call('POST', '/v1/auth/login', { body: { email: 'nobody@example.org', password: 'not the password at all' } })
  t.same([wrong.status, wrong.json.name, wrong.json.detail], [nobody.status, nobody.json.name, nobody.json.detail], 'login: the same answer')
  t.equal(wrong.json.name, 'InvalidCredentialsError')
  t.match(wrong.type, /application\/problem\+json/, 'errors are RFC 9457 problem+json')
  const before = mail.mails.length
  const r1 = await call('POST', '/v1/auth/reset', { body: { email: 'bob@example.org' } })
  const r2 = await call('POST', '/v1/auth/reset', { body: { email: 'nobody@example.org' } })
  t.same([r1.status, r1.json], [r2.status, r2.json], 'reset: the same answer')
  await lastMailTo('bob@example.org', 2)
  t.equal(mail.mails.length, before + 1, 'only the real account got a mail')
})

t.test('TOTP: enrolment needs a code, login needs a code, a code works once; other sessions end', async (t) => {
  const clock = { now: Date.now() }
  const { call, lastMailTo, store, base } = await rig(t, clock)
  await call('POST', '/v1/auth/signup', { body: { email: 'dan@example.org', password: PASSWORD } })
  await call('POST', '/v1/auth/verify', { body: { token: linkToken(await lastMailTo('dan@example.org'), 'verify') } })
  const s1 = (await call('POST', '/v1/auth/login', { body: { email: 'dan@example.org', password: PASSWORD } })).cookie!
  const s2 = (await call('POST', '/v1/auth/login', { body: { email: 'dan@example.org', password: PASSWORD } })).cookie!
  const enrol = await call('POST', '/v1/auth/totp', { cookie: s1 })
  const secret = String(enrol.json.secret)
  t.match(String(enrol.json.uri), /^otpauth:\/\/totp\//)
  // the QR code of the pending enrolment: this account's URI, for a session only
  const qr = async (cookie?: string) => {
    const r = await fetch(`${base}/v1/auth/totp/qr.svg`, { headers: cookie ? { cookie: `${SESSION_COOKIE}=${cookie}` } : {} })
    return { status: r.status, type: r.headers.get('content-type') ?? '', cache: r.headers.get('cache-control'), body: await r.text() }
  }
  const svg = await qr(s1)
  t.equal(svg.status, 200)
  t.match(svg.type, /^image\/svg\+xml/)
  t.equal(svg.cache, 'no-store', 'never cached')
  t.equal(svg.body, renderSVG(String(enrol.json.uri), { border: 2 }), 'the QR code encodes the enrolment\'s otpauth URI')
  t.equal((await qr()).status, 401, 'no session, no QR code')
  t.equal((await call('POST', '/v1/auth/totp/confirm', { cookie: s1, body: { code: '000000' } })).json.name, 'TotpRequiredError', 'a wrong code enrols nothing')
  const code = await generate({ secret, epoch: Math.floor(clock.now / 1000) })
  const confirmed = await call('POST', '/v1/auth/totp/confirm', { cookie: s1, body: { code } })
  t.equal(confirmed.status, 200)
  t.equal((await qr(s1)).status, 400, 'once confirmed, no QR code of the secret is served any more')
  const recovery = confirmed.json.recoveryCodes as string[]
  t.equal(new Set(recovery).size, 10, 'ten recovery codes, shown once')
  t.notOk((await store.dump()).includes(secret), 'the TOTP secret is sealed at rest')
  const dumped = await store.dump()
  t.notOk(recovery.some((c) => dumped.includes(c)), 'recovery codes are stored hashed')
  t.equal((await call('GET', '/v1/account', { cookie: s2 })).json.name, 'AuthRequiredError', 'the other session ended with the factor change')
  t.equal((await call('GET', '/v1/account', { cookie: s1 })).json.totp, true)
  t.equal((await call('POST', '/v1/auth/login', { body: { email: 'dan@example.org', password: PASSWORD } })).json.name, 'TotpRequiredError', 'password alone is not enough now')
  t.equal((await call('POST', '/v1/auth/login', { body: { email: 'dan@example.org', password: PASSWORD, totp: code } })).json.name, 'TotpRequiredError', 'the enrolment code cannot log in (used)')
  clock.now += 30_000
  const next = await generate({ secret, epoch: Math.floor(clock.now / 1000) })
  const ok = await call('POST', '/v1/auth/login', { body: { email: 'dan@example.org', password: PASSWORD, totp: next } })
  t.equal(ok.status, 200)
  t.equal((await call('POST', '/v1/auth/login', { body: { email: 'dan@example.org', password: PASSWORD, totp: next } })).json.name, 'TotpRequiredError', 'a code is used once')
  // a recovery code stands in for a TOTP code, once
  const viaRecovery = await call('POST', '/v1/auth/login', { body: { email: 'dan@example.org', password: PASSWORD, totp: recovery[3] } })
  t.equal(viaRecovery.status, 200, 'a recovery code logs in')
  t.equal((await call('POST', '/v1/auth/login', { body: { email: 'dan@example.org', password: PASSWORD, totp: recovery[3] } })).json.name, 'TotpRequiredError', 'once')
  t.equal((await call('GET', '/v1/account', { cookie: viaRecovery.cookie! })).json.recoveryCodesLeft, 9)
  t.equal((await call('POST', '/v1/auth/recovery-codes', { cookie: viaRecovery.cookie!, body: { code: recovery[4] } })).json.name, 'TotpRequiredError', 'new codes need a TOTP code, not a recovery code')
  // a reset link does not bypass TOTP
  await call('POST', '/v1/auth/reset', { body: { email: 'dan@example.org' } })
  const reset = linkToken(await lastMailTo('dan@example.org', 1), 'reset')
  t.equal((await call('POST', '/v1/auth/reset/confirm', { body: { token: reset, password: 'a brand new password' } })).json.name, 'TotpRequiredError', 'reset needs the second factor')
  clock.now += 30_000
  const third = await generate({ secret, epoch: Math.floor(clock.now / 1000) })
  t.equal((await call('POST', '/v1/auth/reset/confirm', { body: { token: reset, password: 'a brand new password', totp: third } })).status, 200)
  t.equal((await call('GET', '/v1/account', { cookie: ok.cookie! })).json.name, 'AuthRequiredError', 'every session ended with the password change')
  t.equal((await call('POST', '/v1/auth/reset/confirm', { body: { token: reset, password: 'yet another password', totp: third } })).json.name, 'InvalidTokenError', 'the reset link works once')
  t.equal((await call('POST', '/v1/auth/login', { body: { email: 'dan@example.org', password: PASSWORD, totp: third } })).json.name, 'InvalidCredentialsError', 'the old password is gone')
})

t.test('sessions: listed, revocable by their owner only, ended when idle or too old', async (t) => {
  const clock = { now: Date.now() }
  const { call, lastMailTo } = await rig(t, clock)
  const user = async (email: string) => {
    await call('POST', '/v1/auth/signup', { body: { email, password: PASSWORD } })
    await call('POST', '/v1/auth/verify', { body: { token: linkToken(await lastMailTo(email), 'verify') } })
    return (await call('POST', '/v1/auth/login', { body: { email, password: PASSWORD } })).cookie!
  }
  const eve = await user('eve@example.org')
  const fay = await user('fay@example.org')
  const fay2 = (await call('POST', '/v1/auth/login', { body: { email: 'fay@example.org', password: PASSWORD } })).cookie!
  const list = (await call('GET', '/v1/auth/sessions', { cookie: fay })).json.sessions as Array<{ id: string; current: boolean }>
  t.equal(list.length, 2)
  const other = list.find((s) => !s.current)!
  t.equal((await call('DELETE', `/v1/auth/sessions/${other.id}`, { cookie: eve })).json.name, 'NotFoundError', 'another account cannot end it')
  t.equal((await call('GET', '/v1/account', { cookie: fay2 })).status, 200, 'still alive')
  t.equal((await call('DELETE', `/v1/auth/sessions/${other.id}`, { cookie: fay })).status, 200)
  t.equal((await call('GET', '/v1/account', { cookie: fay2 })).json.name, 'AuthRequiredError', 'ended by its owner')
  clock.now += 31 * 60_000
  t.equal((await call('GET', '/v1/account', { cookie: fay })).json.name, 'AuthRequiredError', 'idle 31 min: ended')
  const fresh = (await call('POST', '/v1/auth/login', { body: { email: 'fay@example.org', password: PASSWORD } })).cookie!
  for (let k = 0; k < 28; k++) {
    clock.now += 25 * 60_000 // used every 25 min: never idle
    t.equal((await call('GET', '/v1/account', { cookie: fresh })).status, 200, `in use after ${(k + 1) * 25} min`)
  }
  clock.now += 25 * 60_000 // 725 min after the login
  t.equal((await call('GET', '/v1/account', { cookie: fresh })).json.name, 'AuthRequiredError', 'in use but past 12 h: ended')
  t.equal((await call('GET', '/v1/account', { cookie: 'x'.repeat(43) })).json.name, 'AuthRequiredError', 'a made-up token opens nothing')
})

t.test('attacks: guessing passwords is rate limited, cross-site writes refused, bodies checked, weak passwords refused', async (t) => {
  const { call, lastMailTo } = await rig(t)
  await call('POST', '/v1/auth/signup', { body: { email: 'gus@example.org', password: PASSWORD } })
  await call('POST', '/v1/auth/verify', { body: { token: linkToken(await lastMailTo('gus@example.org'), 'verify') } })
  for (let i = 0; i < 10; i++) await call('POST', '/v1/auth/login', { body: { email: 'gus@example.org', password: `guess number ${i} long` } })
  const limited = await call('POST', '/v1/auth/login', { body: { email: 'gus@example.org', password: PASSWORD } })
  t.equal(limited.status, 429, 'after 10 failures even the right password waits')
  t.equal(limited.json.name, 'RateLimitedError')
  const csrf = await call('POST', '/v1/auth/signup', { body: { email: 'h@example.org', password: PASSWORD }, origin: 'https://evil.example' })
  t.equal(csrf.status, 400)
  t.match(String(csrf.json.detail), /may not change state/)
  t.equal((await call('POST', '/v1/auth/signup', { body: { email: 'h@example.org', password: PASSWORD }, origin: 'https://gateway.noir.test' })).status, 202, 'the dashboard\'s own origin may')
  t.equal((await call('POST', '/v1/auth/signup', { body: { email: 'i@example.org', password: 'short' } })).json.name, 'WeakPasswordError')
  t.equal((await call('POST', '/v1/auth/signup', { body: { email: 'not an email', password: PASSWORD } })).json.name, 'InvalidRequestError')
  t.equal((await call('POST', '/v1/auth/signup', { body: { email: 'j@example.org', password: PASSWORD, admin: true } })).json.name, 'InvalidRequestError', 'unknown fields are refused')
  t.equal((await call('POST', '/v1/auth/verify', { body: { token: '../../etc/passwd' } })).json.name, 'InvalidTokenError')
  t.equal((await call('GET', '/v1/nothing-here')).json.name, 'NotFoundError')
})

t.test('`noir gateway start` runs the gateway as its own process, over HTTPS with a generated certificate it prints: a sign-up through it mails a link that verifies', async (t) => {
  const { spawn } = await import('node:child_process')
  const { NOIR_BIN } = await import('../../scripts/testing/daemons.ts')
  const mail = await smtpOnLoopback(t)
  const home = mkdtempSync(join(tmpdir(), 'noir-gateway-home-'))
  const port = 20_000 + Math.floor(Math.random() * 20_000)
  const proc = spawn(process.execPath, [NOIR_BIN, '--home', home, 'gateway', 'start', '--smtp', `127.0.0.1:${mail.port}`, '--from', 'noreply@noir.test', '--public-url', 'https://gw.noir.test/', '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL')
    rmSync(home, { recursive: true, force: true })
  })
  let out = ''
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()))
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()))
  for (let i = 0; i < 300 && !/fingerprint/.test(out); i++) await new Promise((r) => setTimeout(r, 50))
  t.match(out, /gateway listening on https:\/\/127\.0\.0\.1:\d+/)
  const { readFileSync, statSync } = await import('node:fs')
  const { X509Certificate } = await import('node:crypto')
  const https = await import('node:https')
  const ca = readFileSync(join(home, 'gateway', 'tls.crt'), 'utf8')
  t.match(out, new RegExp(`self-signed, generated now\\) SHA-256 fingerprint ${new X509Certificate(ca).fingerprint256}`), 'the fingerprint printed is the certificate\'s')
  t.equal(statSync(join(home, 'gateway', 'tls.key')).mode & 0o777, 0o600, 'its key is its owner\'s only')
  const post = (path: string, b: unknown, trust = ca) => new Promise<{ status: number }>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, method: 'POST', ca: trust, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }))
    })
    req.on('error', reject)
    req.end(JSON.stringify(b))
  })
  await t.rejects(fetch(`http://127.0.0.1:${port}/v1/account`), 'no plain HTTP')
  const stranger = (await (await import('selfsigned')).generate([{ name: 'commonName', value: '127.0.0.1' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' })).cert
  await t.rejects(post('/v1/auth/signup', {}, stranger), 'a client that trusts another certificate does not connect')
  t.equal((await post('/v1/auth/signup', { email: 'kim@example.org', password: PASSWORD })).status, 202)
  for (let i = 0; i < 200 && mail.mails.length === 0; i++) await new Promise((r) => setTimeout(r, 20))
  const body = mail.mails[0]!.body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)))
  t.equal((await post('/v1/auth/verify', { token: linkToken(body, 'verify') })).status, 200)
  t.equal((await post('/v1/auth/login', { email: 'kim@example.org', password: PASSWORD })).status, 200)
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)))
  proc.kill('SIGTERM')
  t.equal(await exited, 0, 'stops cleanly on SIGTERM')
})

t.test('sealed secrets open only with the gateway key and for their own account', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-seal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { statSync } = await import('node:fs')
  const s = Sealer.fromFile(join(dir, 'secret.key'))
  t.equal(statSync(join(dir, 'secret.key')).mode & 0o777, 0o600, 'the key file is its owner\'s only')
  const sealed = s.seal('JBSWY3DPEHPK3PXP', 'account-1')
  t.equal(s.open(sealed, 'account-1'), 'JBSWY3DPEHPK3PXP')
  t.throws(() => s.open(sealed, 'account-2'), { name: 'SealError' }, 'moved to another account it does not open')
  t.throws(() => new Sealer(Buffer.alloc(32, 7)).open(sealed, 'account-1'), { name: 'SealError' }, 'nor with another key')
  const flipped = sealed.slice(0, -2) + (sealed.at(-2) === 'A' ? 'B' : 'A') + sealed.at(-1)
  t.throws(() => s.open(flipped, 'account-1'), { name: 'SealError' }, 'nor altered')
  t.equal(Sealer.fromFile(join(dir, 'secret.key')).open(sealed, 'account-1'), 'JBSWY3DPEHPK3PXP', 'the key survives a restart')
})
