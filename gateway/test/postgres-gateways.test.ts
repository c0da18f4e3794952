// Two gateways on one PostgreSQL (spec/gateway.md "Storage"), against a real PostgreSQL (Debian's package,
// a fresh cluster on loopback), real SMTP on loopback, real node daemons and Docker:
// (a) the stores behave on PostgreSQL as on node:sqlite (one suite, run on both);
// (b) two `noir gateway start` processes on the same database serve the same customers: a sign-up through
//     one verifies through the other, a session made on one works on the other and a revocation on one ends
//     it on both, a key made on one deploys through the other, a deploy made through one is listed and
//     stopped through the other; failed logins count across both (the rate limit is shared); a gateway with
//     another sealing key refuses to start; no gateway prints the database password.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually, NOIR_BIN, startConnectedMesh } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { postgresOnLoopback, postgresql } from '../../scripts/testing/postgres.ts'
import { freePort } from '../../scripts/testing/browser.ts'
import { PostgresDatabase, SqliteDatabase, type GatewayDatabase } from '../store/database.ts'
import { GatewayStore } from '../store/gateway-store.ts'
import { TenantStore } from '../store/tenant-store.ts'
import { SecretStore } from '../secrets/secret-store.ts'
import { Attempts } from '../auth/attempts.ts'
import { RateLimitedError } from '../errors.ts'
import { linkToken, smtpOnLoopback } from './mail-rig.ts'

const IMAGE = 'noir/busybox:latest'
const PASSWORD = 'correct horse battery staple'

async function storeSuite(t: Test, db: GatewayDatabase): Promise<void> {
  const store = await GatewayStore.open(db)
  await GatewayStore.open(db) // the schema twice: idempotent
  const tenants = await TenantStore.open(db)
  const secrets = await SecretStore.open(db)
  const now = Date.now() // > 2^31: BIGINT columns, back as numbers
  const ada = (await store.createAccount('ada@example.org', 'h1', now))!
  t.equal(ada.createdAt, now, 'a millisecond time comes back exact, as a number')
  t.equal(await store.createAccount('ada@example.org', 'h2', now), undefined, 'one account per email')
  const bob = (await store.createAccount('bob@example.org', 'h3', now))!
  await store.markVerified(ada.id, now + 1)
  await store.markVerified(ada.id, now + 2)
  t.equal((await store.accountById(ada.id))!.verifiedAt, now + 1, 'verified once')
  t.equal(await store.useTotpStep(ada.id, 10), true)
  t.equal(await store.useTotpStep(ada.id, 10), false, 'a TOTP step is used once')
  t.equal(await store.useTotpStep(ada.id, 9), false, 'and never an earlier one')
  await store.setRecoveryCodes(ada.id, ['r1', 'r2', 'r3'])
  await store.setRecoveryCodes(ada.id, ['r4', 'r5'])
  t.equal(await store.recoveryCodesLeft(ada.id), 2, 'recovery codes replaced, all at once')
  t.equal(await store.useRecoveryCode(ada.id, 'r4', now), true)
  t.equal(await store.useRecoveryCode(ada.id, 'r4', now), false, 'a recovery code works once')
  t.equal(await store.useRecoveryCode(bob.id, 'r5', now), false, 'and for its own account only')
  await t.rejects(store.setRecoveryCodes(ada.id, ['x1', 'x1']), 'a replacement that fails half-way (a duplicate)...')
  t.equal(await store.recoveryCodesLeft(ada.id), 1, '...leaves the codes as they were')
  await store.addEmailToken('tok', ada.id, 'verify', now + 1000)
  t.equal((await store.accountForToken('tok', 'verify', now))?.id, ada.id)
  t.equal(await store.useEmailToken('tok', 'reset', now), undefined, 'a token of another kind is not used')
  t.equal(await store.useEmailToken('tok', 'verify', now), ada.id)
  t.equal(await store.useEmailToken('tok', 'verify', now), undefined, 'a token works once')
  for (const [hash, id] of [['s1', 'p1'], ['s2', 'p2'], ['s3', 'p3']] as const) await store.addSession({ hash, id, accountId: ada.id, createdAt: now, lastSeenAt: now, expiresAt: now + 1000 })
  t.equal(await store.deleteSessionById(bob.id, 'p1'), false, 'another account cannot end a session')
  t.equal(await store.deleteOtherSessions(ada.id, 's1'), 2, 'all sessions but the current one end')
  t.equal(await store.deleteOtherSessions(ada.id, null), 1, 'and with none kept, all')
  // the rate limit's attempts
  const limit = new Attempts(store, 'login', 3, 60_000)
  for (let i = 0; i < 3; i++) {
    await limit.check('ada@example.org', now + i)
    await limit.fail('ada@example.org', now + i)
  }
  await t.rejects(limit.check('ada@example.org', now + 10), RateLimitedError, 'the fourth try within the window is refused')
  await limit.check('bob@example.org', now + 10)
  await t.resolves(limit.check('ada@example.org', now + 60_010), 'and allowed once the window has passed')
  // tenants
  t.equal(await tenants.setMetaOnce('k', 'first'), 'first')
  t.equal(await tenants.setMetaOnce('k', 'second'), 'first', 'the first value wins')
  await tenants.addWallet({ accountId: ada.id, did: 'did:key:zA', sealedSeed: 'sealed', createdAt: now })
  t.equal(await tenants.bindOwnWallet(bob.id, 'did:key:zA', now), false, 'a DID is one account\'s')
  await tenants.setDidChallenge(ada.id, 'c1', now + 1000)
  await tenants.setDidChallenge(ada.id, 'c2', now + 1000)
  t.same(await tenants.takeDidChallenge(ada.id), { challenge: 'c2', expiresAt: now + 1000 }, 'the newest challenge')
  t.equal(await tenants.takeDidChallenge(ada.id), undefined, 'taken once')
  const c = await tenants.recordCreate(ada.id, 'key-1', '{"secrets":[{"name":"DB"}]}', now)
  t.equal((await tenants.recordCreate(ada.id, 'key-1', '{}', now)).workload, c.workload, 'a create is recorded once per key')
  t.same((await tenants.unsettledCreates()).map((x) => x.key), ['key-1'])
  await tenants.settleCreate(ada.id, 'key-1', 'dep-1')
  t.equal(await tenants.owns(ada.id, 'dep-1'), true)
  t.equal(await tenants.owns(bob.id, 'dep-1'), false)
  // secrets: versions as compare-and-set
  t.equal(await secrets.put({ accountId: ada.id, name: 'DB', version: 1, sealed: 's1', updatedAt: now }), true)
  t.equal(await secrets.put({ accountId: ada.id, name: 'DB', version: 1, sealed: 's1b', updatedAt: now }), false, 'version 1 once')
  t.equal(await secrets.put({ accountId: ada.id, name: 'DB', version: 3, sealed: 's3', updatedAt: now }), false, 'no version skipped')
  t.equal(await secrets.put({ accountId: ada.id, name: 'DB', version: 2, sealed: 's2', updatedAt: now }), true)
  t.same(await secrets.deploymentsNaming(ada.id, 'DB'), ['dep-1'])
  t.equal(await secrets.count(bob.id), 0)
}

t.test('the stores behave the same on node:sqlite and on PostgreSQL', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-stores-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lite = new SqliteDatabase(join(dir, 'gateway.db'))
  t.teardown(() => lite.close())
  await t.test('node:sqlite', (t) => storeSuite(t, lite))
  if (!requireOrSkip(t, postgresql)) return
  const pg = await postgresOnLoopback(t)
  const db = new PostgresDatabase(pg.url)
  t.teardown(() => db.close())
  await t.test('PostgreSQL', (t) => storeSuite(t, db))
})

interface Answer { status: number; json: Record<string, unknown>; cookie?: string }

/** A JSON call over HTTPS to a gateway whose self-signed certificate is `ca`. */
function call(port: number, ca: string, method: string, path: string, o: { body?: unknown; cookie?: string; key?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = o.body === undefined ? undefined : JSON.stringify(o.body)
    const req = request({
      host: '127.0.0.1', port, path, method, ca,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(o.cookie ? { cookie: `noir_session=${o.cookie}` } : {}), ...(o.key ? { authorization: `Bearer ${o.key}` } : {}) },
    }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c.toString('utf8')))
      res.on('end', () => {
        const cookie = /noir_session=([A-Za-z0-9_-]+)/.exec(String(res.headers['set-cookie'] ?? ''))?.[1]
        resolve({ status: res.statusCode ?? 0, json: text && String(res.headers['content-type']).includes('json') ? (JSON.parse(text) as Record<string, unknown>) : { text }, ...(cookie ? { cookie } : {}) })
      })
    })
    req.on('error', reject)
    req.end(body)
  })
}

interface GatewayProcess { proc: ChildProcess; port: number; ca: string; out: () => string }

async function startGateway(t: Test, o: { home: string; smtpPort: number; nodeHome: string; databaseUrl: string; password: string }): Promise<GatewayProcess> {
  const port = await freePort()
  // the password travels in PGPASSWORD, the URL on the command line has none (it would show in `ps`)
  const proc = spawn(process.execPath, [NOIR_BIN, '--home', o.home, 'gateway', 'start', '--smtp', `127.0.0.1:${o.smtpPort}`, '--from', 'noreply@noir.test', '--public-url', 'https://gw.noir.test/', '--node', o.nodeHome, '--listen', `127.0.0.1:${port}`, '--database', o.databaseUrl], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGPASSWORD: o.password } })
  let out = ''
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')))
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')))
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL')
  })
  await eventually(() => /fingerprint/.test(out) || proc.exitCode !== null, 60_000, 100)
  if (proc.exitCode !== null) throw new Error(`the gateway exited: ${out}`)
  return { proc, port, ca: readFileSync(join(o.home, 'gateway', 'tls.crt'), 'utf8'), out: () => out }
}

t.test('two gateway processes on one PostgreSQL serve the same customers', async (t) => {
  if (!requireOrSkip(t, postgresql, docker, dockerImage(IMAGE))) return
  const pg = await postgresOnLoopback(t)
  const { nodes } = await startConnectedMesh(t, 2, { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 600 } })
  const mail = await smtpOnLoopback(t)
  const homeA = mkdtempSync(join(tmpdir(), 'noir-gw-a-'))
  const homeB = mkdtempSync(join(tmpdir(), 'noir-gw-b-'))
  const homeC = mkdtempSync(join(tmpdir(), 'noir-gw-c-'))
  t.teardown(() => {
    for (const h of [homeA, homeB, homeC]) rmSync(h, { recursive: true, force: true })
  })
  const common = { smtpPort: mail.port, nodeHome: nodes[0]!.home, databaseUrl: pg.urlWithoutPassword, password: pg.password }
  const a = await startGateway(t, { home: homeA, ...common })
  // the second gateway gets the first one's sealing key, as its operator is told to do
  mkdirSync(join(homeB, 'gateway'), { recursive: true, mode: 0o700 })
  copyFileSync(join(homeA, 'gateway', 'secret.key'), join(homeB, 'gateway', 'secret.key'))
  const b = await startGateway(t, { home: homeB, ...common })
  const A = (method: string, path: string, o?: { body?: unknown; cookie?: string; key?: string }) => call(a.port, a.ca, method, path, o)
  const B = (method: string, path: string, o?: { body?: unknown; cookie?: string; key?: string }) => call(b.port, b.ca, method, path, o)

  // ---- one customer, both gateways ----
  t.equal((await A('POST', '/v1/auth/signup', { body: { email: 'ada@example.org', password: PASSWORD } })).status, 202, 'signed up through A')
  t.equal((await B('POST', '/v1/auth/verify', { body: { token: linkToken(await mail.lastMailTo('ada@example.org'), 'verify') } })).status, 200, 'verified through B with the link A mailed')
  const login = await B('POST', '/v1/auth/login', { body: { email: 'ada@example.org', password: PASSWORD } })
  t.equal(login.status, 200, 'logged in through B')
  const ada = login.cookie!
  t.equal((await A('GET', '/v1/account', { cookie: ada })).json.email, 'ada@example.org', 'the session made on B works on A')
  const made = await A('POST', '/v1/keys', { cookie: ada, body: { name: 'ci', scopes: ['deploy'], days: 30 } })
  t.equal(made.status, 201, 'a key made on A')
  const key = made.json.token as string
  const job = { apiVersion: 'noir/v1', kind: 'service', name: 'shared', runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.2 & wait $!; done'] }, resources: { cpu: 0.2, memory: '32Mi' } }
  const deployed = await B('POST', '/v1/workloads', { key, body: { workload: job, idempotencyKey: 'once' } })
  t.equal(deployed.status, 201, `...deploys through B: ${JSON.stringify(deployed.json)}`)
  const id = deployed.json.id as string
  const again = await A('POST', '/v1/workloads', { key, body: { workload: job, idempotencyKey: 'once' } })
  t.equal(again.json.id, id, 'the same idempotency key through A returns the deployment made through B')
  t.same(((await A('GET', '/v1/workloads', { key })).json.workloads as { id: string }[]).map((w) => w.id), [id], 'A lists the deploy made through B')
  await eventually(async () => (await A('GET', `/v1/workloads/${id}`, { key })).json.phase === 'running', 90_000)
  t.pass('and sees it running')

  // ---- another account sees nothing of it on either gateway ----
  await B('POST', '/v1/auth/signup', { body: { email: 'eve@example.org', password: PASSWORD } })
  await A('POST', '/v1/auth/verify', { body: { token: linkToken(await mail.lastMailTo('eve@example.org'), 'verify') } })
  const eve = (await A('POST', '/v1/auth/login', { body: { email: 'eve@example.org', password: PASSWORD } })).cookie!
  t.equal((await B('GET', `/v1/workloads/${id}`, { cookie: eve })).status, 404, 'eve: 404 on B')
  t.equal((await A('POST', `/v1/workloads/${id}/stop`, { cookie: eve })).status, 404, 'eve cannot stop it through A')

  // ---- stopped through the other gateway ----
  t.equal((await A('POST', `/v1/workloads/${id}/stop`, { key })).status, 200, 'stopped through A')
  await eventually(async () => ['stopped', 'completed'].includes((await B('GET', `/v1/workloads/${id}`, { key })).json.phase as string), 60_000)
  t.pass('B sees it stopped')

  // ---- a session revoked on one gateway ends on both ----
  const second = (await A('POST', '/v1/auth/login', { body: { email: 'ada@example.org', password: PASSWORD } })).cookie!
  const sessions = (await A('GET', '/v1/auth/sessions', { cookie: second })).json.sessions as { id: string; current: boolean }[]
  const other = sessions.find((s) => !s.current)!
  t.equal((await A('DELETE', `/v1/auth/sessions/${other.id}`, { cookie: second })).status, 200, 'A revokes the session made on B')
  t.equal((await B('GET', '/v1/account', { cookie: ada })).status, 401, 'and B refuses it')

  // ---- the login rate limit counts failures on both gateways ----
  for (let i = 0; i < 10; i++) {
    const r = await (i % 2 === 0 ? A : B)('POST', '/v1/auth/login', { body: { email: 'ada@example.org', password: `wrong ${i}` } })
    t.equal(r.status, 401, `failed login ${i + 1} (${i % 2 === 0 ? 'A' : 'B'})`)
  }
  const limited = await B('POST', '/v1/auth/login', { body: { email: 'ada@example.org', password: PASSWORD } })
  t.equal(limited.status, 429, 'the 11th try is refused: five failures on each gateway count as ten')
  t.equal(limited.json.name, 'RateLimitedError')

  // ---- a gateway with another sealing key does not start ----
  const c = spawn(process.execPath, [NOIR_BIN, '--home', homeC, 'gateway', 'start', '--smtp', `127.0.0.1:${mail.port}`, '--from', 'noreply@noir.test', '--public-url', 'https://gw.noir.test/', '--listen', `127.0.0.1:${await freePort()}`, '--database', pg.urlWithoutPassword], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PGPASSWORD: pg.password } })
  let cOut = ''
  c.stdout.on('data', (x: Buffer) => (cOut += x.toString('utf8')))
  c.stderr.on('data', (x: Buffer) => (cOut += x.toString('utf8')))
  const code = await new Promise<number | null>((resolve) => c.once('exit', (n) => resolve(n)))
  t.not(code, 0, 'a gateway whose secret.key differs exits')
  t.match(cOut, /GatewayDatabaseError|not the key the database was made with/, `and says why: ${cOut.slice(-300)}`)

  // ---- a wrong password is refused plainly; no output carries the password ----
  const d = spawn(process.execPath, [NOIR_BIN, '--home', homeC, 'gateway', 'start', '--smtp', `127.0.0.1:${mail.port}`, '--from', 'noreply@noir.test', '--public-url', 'https://gw.noir.test/', '--listen', `127.0.0.1:${await freePort()}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOIR_GATEWAY_DATABASE: pg.url.replace(encodeURIComponent(pg.password), 'not-the-password') } })
  let dOut = ''
  d.stdout.on('data', (x: Buffer) => (dOut += x.toString('utf8')))
  d.stderr.on('data', (x: Buffer) => (dOut += x.toString('utf8')))
  t.not(await new Promise<number | null>((resolve) => d.once('exit', (n) => resolve(n))), 0, 'a gateway with a wrong database password exits')
  t.match(dOut, /PostgreSQL does not answer/, 'saying the database refused it')
  t.notOk(dOut.includes('not-the-password'), 'without printing the password it was given')
  for (const [name, g] of [['A', a], ['B', b]] as const) t.notOk(g.out().includes(pg.password), `gateway ${name} never prints the database password`)
  t.match(a.out(), new RegExp(`PostgreSQL postgres://noir@127\\.0\\.0\\.1:${pg.port}/noir`), 'A says where its state is')
})
