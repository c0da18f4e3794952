// Per-account billing at the gateway (spec/billing.md), against a real local chain (Anvil, the Settlement
// contract), real node daemons with Docker, real SMTP on loopback: an account without funds is refused at
// deploy with 402 InsufficientFundsError; a deposit on the chain naming the account's key is credited once it
// is confirmed (once, across restarts); a deploy holds its price cap for the hold window (a retry with the same
// key holds nothing more); the usage the gateway's node accepted from providers is charged to the account, the
// hold released when the work ended; usage per day and the month's invoice add up to the charges, and to what
// the node accepted; another account sees none of it; a restarted gateway charges nothing twice, and a capacity
// reservation cut by kill -9 after its hold, and again between stopping its deployments and its charge, is held
// once and charged once.
import t from 'tap'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { eventually, NOIR_BIN, startConnectedMesh } from '../../scripts/testing/daemons.ts'
import { anvil as anvilRequirement, docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { localChain, NLC_UNITS as NLC } from '../../scripts/testing/chain.ts'
import { openGateway, type Gateway } from '../gateway.ts'
import { SESSION_COOKIE } from '../http/app.ts'
import { linkToken, smtpOnLoopback } from './mail-rig.ts'
import { NoirClient } from '../../client/noir-client.ts'
import { spawn } from 'node:child_process'
import { request as httpsRequest } from 'node:https'
import { freePort } from '../../scripts/testing/browser.ts'
import { execFile } from 'node:child_process'
import { nlcDecimal } from '../../ledger/units.ts'

const IMAGE = 'noir/busybox:latest'
const PASSWORD = 'correct horse battery staple'
const MAX_PRICE = 2_000_000 // µNLC per replica-hour: the hold for one replica for one hour
const service = (name: string) => ({
  apiVersion: 'noir/v1', kind: 'service', name,
  runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.2 & wait $!; done'] },
  resources: { cpu: 0.2, memory: '32Mi' }, constraints: { maxPrice: MAX_PRICE },
})

interface Answer { status: number; json: Record<string, unknown> }
interface Wallet { did: string; currency: string; available: string; pending: string; posted: string; deposit: { chain: string; contract: string; accountKey: string } | null }

t.test('billing: top up on a chain, hold at admission, charge the accepted usage, invoice', async (t) => {
  if (!requireOrSkip(t, anvilRequirement, docker, dockerImage(IMAGE))) return
  // ---- the chain: Anvil with the Settlement contract and its token ----
  const chain = await localChain(t)
  const deposit = chain.deposit
  // ---- the mesh and the gateway ----
  const { nodes } = await startConnectedMesh(t, 2, { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 600 }, ledger: { usageIntervalMs: 1000 } })
  const mail = await smtpOnLoopback(t)
  const gwHome = mkdtempSync(join(tmpdir(), 'noir-gateway-billing-'))
  const dir = join(gwHome, 'gateway') // where `noir --home gwHome gateway start` keeps its state too
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const open = () => openGateway({
    dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/', nodeHome: nodes[0]!.home,
    billing: { chain: { rpcUrl: chain.rpcUrl, contract: chain.settlement, startHeight: chain.startHeight, depth: 2, pollMs: 100_000 }, meterMs: 100_000, releaseGraceMs: 3000 },
  })
  let gw: Gateway = await open()
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await gw.close().catch(() => undefined) // closed already, before the gateway process took over
    rmSync(gwHome, { recursive: true, force: true })
  })
  const call = async (method: string, path: string, o: { body?: unknown; cookie?: string } = {}): Promise<Answer> => {
    const r = await fetch(`http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}${path}`, {
      method,
      headers: { ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(o.cookie ? { cookie: `${SESSION_COOKIE}=${o.cookie}` } : {}) },
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    })
    const text = await r.text()
    return { status: r.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
  }
  const account = async (email: string): Promise<string> => {
    await call('POST', '/v1/auth/signup', { body: { email, password: PASSWORD } })
    await call('POST', '/v1/auth/verify', { body: { token: linkToken(await mail.lastMailTo(email), 'verify') } })
    const r = await fetch(`http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
    return /noir_session=([A-Za-z0-9_-]+)/.exec(r.headers.get('set-cookie') ?? '')![1]!
  }
  const ada = await account('ada@example.org')
  const bob = await account('bob@example.org')
  const wallet = async (cookie: string): Promise<Wallet> => (await call('GET', '/v1/wallet', { cookie })).json as unknown as Wallet

  // ---- no funds: refused at admission ----
  const empty = await wallet(ada)
  t.same([empty.currency, empty.available, empty.pending, empty.posted], ['NLC', '0', '0', '0'], 'a new account has nothing')
  t.equal(empty.deposit?.contract.toLowerCase(), chain.settlement.toLowerCase(), 'the wallet says where to deposit')
  t.match(empty.deposit?.accountKey, /^[0-9a-f]{64}$/, 'and the account key to name')
  const refused = await call('POST', '/v1/workloads', { cookie: ada, body: { workload: service('web'), idempotencyKey: 'web-1' } })
  t.equal(refused.status, 402, 'a deploy without funds: 402')
  t.equal(refused.json.name, 'InsufficientFundsError')
  t.same((refused.json.data as { needed: string }).needed, String(MAX_PRICE), 'it says what the deploy needs: the price cap for an hour')
  t.same(((await call('GET', '/v1/workloads', { cookie: ada })).json.workloads as unknown[]).length, 0, 'and nothing was deployed')

  // ---- a deposit on the chain: credited once it is confirmed, once ----
  await deposit(empty.deposit!.accountKey, 5n * NLC + 7n) // 5 NLC and 7 base units of dust
  await gw.deposits!.poll()
  t.equal((await wallet(ada)).available, '0', 'not credited before its confirmations')
  await chain.mine(2)
  await gw.deposits!.poll()
  const funded = await wallet(ada)
  t.same([funded.available, funded.posted], ['5000000', '5000000'], 'credited at the depth: 5 NLC (the dust below a µNLC is not)')
  const topUps = (await call('GET', '/v1/wallet/top-ups', { cookie: ada })).json.topUps as { ref: string; amount: string }[]
  t.same(topUps.map((x) => x.amount), ['5000000'], 'one top-up')
  t.match(topUps[0]!.ref, /^evm-31337:0x[0-9a-f]{64}:\d+$/, 'named by its chain reference')

  // ---- a deploy holds its cap; a retry holds nothing more ----
  const made = await call('POST', '/v1/workloads', { cookie: ada, body: { workload: service('web'), idempotencyKey: 'web-1' } })
  t.equal(made.status, 201, `funded, the deploy is admitted: ${JSON.stringify(made.json).slice(0, 200)}`)
  const id = made.json.id as string
  t.same([(await wallet(ada)).pending, (await wallet(ada)).available], [String(MAX_PRICE), String(5_000_000 - MAX_PRICE)], 'the price cap for an hour is held')
  t.equal((await call('POST', '/v1/workloads', { cookie: ada, body: { workload: service('web'), idempotencyKey: 'web-1' } })).json.id, id, 'a retry with the key: the same deployment')
  t.equal((await wallet(ada)).pending, String(MAX_PRICE), 'and nothing more held')
  const second = await call('POST', '/v1/workloads', { cookie: ada, body: { workload: { ...service('big'), service: { replicas: 2 } }, idempotencyKey: 'big-1' } })
  t.equal(second.status, 402, 'a second deploy that would hold more than is left (2 replicas x the cap... and more) is refused')

  // ---- it runs; the accepted usage is charged; stopped, the hold is released ----
  await eventually(async () => (await call('GET', `/v1/workloads/${id}`, { cookie: ada })).json.phase === 'running', 90_000)
  await eventually(async () => {
    const u = (await call('GET', `/v1/workloads/${id}/usage`, { cookie: ada })).json as { records: { status: string }[] }
    return u.records.filter((r) => r.status === 'accepted').length >= 2
  }, 60_000, 300)
  await gw.billing!.meter()
  const running = await wallet(ada)
  t.ok(BigInt(running.posted) < 5_000_000n, `usage is charged while it runs (posted ${running.posted})`)
  t.equal(running.pending, String(BigInt(MAX_PRICE) - (5_000_000n - BigInt(running.posted))), 'the charges drew on the hold while it runs')
  t.equal(running.available, String(5_000_000 - MAX_PRICE), 'so what is available did not move')
  t.equal((await call('POST', `/v1/workloads/${id}/stop`, { cookie: ada })).status, 200)
  await eventually(async () => {
    await gw.billing!.meter()
    return (await wallet(ada)).pending === '0'
  }, 60_000, 500).catch(async (err: unknown) => {
    const v = await nodes[0]!.api.get<{ phase: string }>(`/v1/deployments/${id}`)
    const u = await nodes[0]!.api.get<{ records: { status: string; note: string | null; record: { body: { contractId: string; seq: number; final?: boolean; from: number; to: number }; answer?: { reason?: string } } }[] }>(`/v1/deployments/${id}/usage`)
    const ps = (await import('node:child_process')).spawnSync('docker', ['ps', '--format', '{{.Labels}} {{.Status}}'], { encoding: 'utf8' }).stdout
    throw new Error(`${(err as Error).message}; phase ${v.phase}; containers ${ps}; records ${JSON.stringify(u.records.slice(0, 6).map((r) => [r.record.body.seq, r.record.body.final ?? false, r.status, r.record.body.from, r.record.body.to, r.record.answer?.reason]))}`)
  })
  t.pass('stopped, its last records in: the hold is released')

  // ---- the books add up ----
  const node = await nodes[0]!.api.get<{ totals: { accepted: string } }>(`/v1/deployments/${id}/usage`)
  const settled = await wallet(ada)
  const charged = 5_000_000n - BigInt(settled.posted)
  t.equal(String(charged), node.totals.accepted, `the account paid exactly what the node accepted from providers (${charged} µNLC)`)
  t.equal(settled.available, settled.posted, 'nothing held')
  const invoices = (await call('GET', '/v1/invoices', { cookie: ada })).json.invoices as { id: string; total: string; status: string; lines: { deploymentId: string; amount: string }[] }[]
  t.equal(invoices.length, 1, 'one invoice, this month\'s')
  t.equal(invoices[0]!.total, String(charged), 'its total is the charges')
  t.same(invoices[0]!.lines.map((l) => [l.deploymentId, l.amount]), [[id, String(charged)]], 'one line, the deployment')
  t.equal(invoices[0]!.status, 'open', 'the month is not over: open')
  const one = await call('GET', `/v1/invoices/${invoices[0]!.id}`, { cookie: ada })
  t.equal(one.json.total, String(charged), 'read by its id')
  const usage = (await call('GET', '/v1/usage', { cookie: ada })).json.days as { workload: string; amount: string }[]
  t.equal(String(usage.reduce((a, d) => a + BigInt(d.amount), 0n)), String(charged), 'usage per day adds up to the charges')
  t.ok(usage.every((d) => d.workload === 'web'), 'per workload')

  // ---- another account sees none of it ----
  t.same((await wallet(bob)).posted, '0')
  t.same((await call('GET', '/v1/invoices', { cookie: bob })).json.invoices, [], 'bob has no invoice')
  t.equal((await call('GET', `/v1/invoices/${invoices[0]!.id}`, { cookie: bob })).status, 404, 'ada\'s invoice id is not his')
  t.same((await call('GET', '/v1/wallet/top-ups', { cookie: bob })).json.topUps, [], 'nor her top-ups')
  t.equal((await call('GET', '/v1/usage?from=2026-13-01', { cookie: ada })).json.name, 'InvalidRequestError', 'a malformed day is refused')
  t.equal((await call('GET', '/v1/wallet')).status, 401, 'no session, no wallet')

  // ---- the same books through the SDK and the CLI ----
  const base = `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}`
  const sdk = new NoirClient({ url: base })
  await sdk.login('ada@example.org', PASSWORD)
  t.same((await sdk.wallet()).posted, settled.posted, 'NoirClient.wallet()')
  t.same((await sdk.invoices()).map((i) => i.total), [String(charged)], 'NoirClient.invoices()')
  t.same((await sdk.topUps()).map((x) => x.amount), ['5000000'], 'NoirClient.topUps()')
  t.equal(String((await sdk.usageByDay()).reduce((a, d) => a + BigInt(d.amount), 0n)), String(charged), 'NoirClient.usageByDay()')
  const home = mkdtempSync(join(tmpdir(), 'noir-billing-cli-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const noir = (args: string[], env: Record<string, string> = {}) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { encoding: 'utf8', env: { ...process.env, NOIR_PASSWORD: '', ...env } }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }))
  })
  t.equal((await noir(['login', '--gateway', base, '--email', 'ada@example.org'], { NOIR_PASSWORD: PASSWORD })).code, 0, 'noir login')
  const w = await noir(['wallet', '--json'])
  t.equal((JSON.parse(w.stdout) as Wallet).posted, settled.posted, `noir wallet shows the account's wallet at the gateway ${w.stderr}`)
  const inv = await noir(['invoices'])
  t.match(inv.stdout, new RegExp(`${invoices[0]!.id}\\s+\\d{4}-\\d{2}\\s+open\\s+${nlcDecimal(charged).replace('.', '\\.')} NLC`), `noir invoices lists it: ${inv.stdout}${inv.stderr}`)

  // ---- restarted, nothing is charged or credited twice ----
  await gw.close()
  gw = await open()
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  await gw.deposits!.poll()
  await gw.billing!.meter()
  const after = await wallet(ada)
  t.same([after.posted, after.pending], [settled.posted, '0'], 'the same books after a restart: the deposit and the usage counted once')

  // ---- kill -9 of a gateway process between charges: restarted, every record is charged once ----
  await gw.close()
  const billingFile = join(gwHome, 'billing.json')
  writeFileSync(billingFile, JSON.stringify({ chain: { rpcUrl: chain.rpcUrl, contract: chain.settlement, startHeight: Number(chain.startHeight), depth: 2, pollMs: 500 }, meterMs: 500, releaseGraceMs: 3000 }))
  const port = await freePort()
  const startGateway = async (env: Record<string, string> = {}) => {
    const proc = spawn(process.execPath, [NOIR_BIN, '--home', gwHome, 'gateway', 'start', '--smtp', `127.0.0.1:${mail.port}`, '--from', 'noreply@noir.test', '--public-url', 'https://gw.noir.test/', '--node', nodes[0]!.home, '--listen', `127.0.0.1:${port}`, '--billing', billingFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    let out = ''
    proc.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')))
    proc.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')))
    t.teardown(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    })
    await eventually(() => /billing on/.test(out) || proc.exitCode !== null, 60_000, 100)
    if (proc.exitCode !== null) throw new Error(`the gateway exited: ${out}`)
    return { proc, out: () => out }
  }
  const ca = () => readFileSync(join(dir, 'tls.crt'), 'utf8')
  const over = (method: string, path: string, body?: unknown) => new Promise<Answer>((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body)
    const req = httpsRequest({ host: '127.0.0.1', port, path, method, ca: ca(), headers: { cookie: `${SESSION_COOKIE}=${ada}`, ...(text !== undefined ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let data = ''
      res.on('data', (c: Buffer) => (data += c.toString('utf8')))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: data ? (JSON.parse(data) as Record<string, unknown>) : {} }))
    })
    req.on('error', reject)
    req.end(text)
  })
  let proc = await startGateway({ NOIR_FAILPOINTS: 'gateway.billing.charged' })
  const before = (await over('GET', '/v1/wallet')).json as unknown as Wallet
  const killed = await over('POST', '/v1/workloads', { workload: service('crash'), idempotencyKey: 'crash-1' })
  t.equal(killed.status, 201, `a deploy through the gateway process: ${JSON.stringify(killed.json).slice(0, 200)}`)
  const crashId = killed.json.id as string
  const died = await new Promise<string | null>((resolve) => proc.proc.once('exit', (_c, sig) => resolve(sig)))
  t.equal(died, 'SIGKILL', 'the gateway died (kill -9) right after its first charge of the new deployment')
  proc = await startGateway()
  t.equal((await over('POST', '/v1/workloads', { workload: service('crash'), idempotencyKey: 'crash-1' })).json.id, crashId, 'the retried create: the same deployment')
  const held = (await over('GET', '/v1/wallet')).json as unknown as Wallet
  t.equal(String(BigInt(held.pending) + BigInt(before.posted) - BigInt(held.posted)), String(MAX_PRICE), 'held once (what it still holds and what its charges drew add up to one hold)')
  t.equal((await over('POST', `/v1/workloads/${crashId}/stop`)).status, 200)
  const final = await eventually(async () => {
    const w2 = (await over('GET', '/v1/wallet')).json as unknown as Wallet
    return w2.pending === '0' && w2
  }, 90_000, 500)
  const crashUsage = await nodes[0]!.api.get<{ totals: { accepted: string } }>(`/v1/deployments/${crashId}/usage`)
  t.equal(String(BigInt(before.posted) - BigInt(final.posted)), crashUsage.totals.accepted, `across the kill -9, the account paid exactly what the node accepted (${crashUsage.totals.accepted} µNLC), no record twice`)
  proc.proc.kill('SIGTERM')
  await new Promise((r) => proc.proc.once('exit', r))

  // ---- a capacity reservation across kill -9: after its hold, and between stopping what ran inside and the charge ----
  const dies = (p: typeof proc) => new Promise<string | null>((resolve) => p.proc.once('exit', (_c, sig) => resolve(sig)))
  proc = await startGateway({ NOIR_FAILPOINTS: 'gateway.capacity.held' })
  const quoted = await over('POST', '/v1/capacity/quotes', { resources: { cpu: 0.2, memory: '32Mi' }, slots: 1, durationSeconds: 600, constraints: { maxPrice: MAX_PRICE } })
  t.equal(quoted.status, 201, `quoted: ${JSON.stringify(quoted.json).slice(0, 200)}`)
  const quoteTotal = BigInt(quoted.json.total as string)
  let died2 = dies(proc)
  await t.rejects(over('POST', '/v1/capacity', { quoteId: quoted.json.id }), 'the reserve is cut by the crash')
  t.equal(await died2, 'SIGKILL', 'the gateway died (kill -9) right after the reservation\'s hold')
  proc = await startGateway({ NOIR_FAILPOINTS: 'gateway.capacity.stopped' })
  const res = await over('POST', '/v1/capacity', { quoteId: quoted.json.id })
  t.same([res.status, res.json.state], [201, 'active'], 'the retried reserve: the reservation, active')
  t.equal(((await over('GET', '/v1/wallet')).json as unknown as Wallet).pending, String(quoteTotal), 'its total held once across the crash')
  const inside = await over('POST', '/v1/workloads', { workload: service('inside'), idempotencyKey: 'inside-1', reservation: res.json.id })
  t.equal(inside.status, 201, `a deploy inside it: ${JSON.stringify(inside.json).slice(0, 200)}`)
  await eventually(async () => (await over('GET', `/v1/workloads/${inside.json.id as string}`)).json.phase === 'running', 90_000, 300)
  const paidBefore = BigInt(((await over('GET', '/v1/wallet')).json as unknown as Wallet).posted)
  died2 = dies(proc)
  await t.rejects(over('POST', `/v1/capacity/${res.json.id as string}/cancel`), 'the cancel is cut by the crash')
  t.equal(await died2, 'SIGKILL', 'the gateway died (kill -9) after stopping what ran inside, before the charge')
  proc = await startGateway()
  const ended = await eventually(async () => {
    const v = (await over('GET', `/v1/capacity/${res.json.id as string}`)).json
    return v.state === 'ended' && v
  }, 60_000, 300)
  t.equal(ended.charged, String((quoteTotal * 60n + 599n) / 600n), 'restarted, the sweep finished the end: one minute of its ten charged')
  t.equal((await over('GET', `/v1/workloads/${inside.json.id as string}`)).json.phase, 'stopped', 'what ran inside is stopped')
  const w3 = (await over('GET', '/v1/wallet')).json as unknown as Wallet
  t.same([w3.pending, String(paidBefore - BigInt(w3.posted))], ['0', ended.charged], 'charged once, its hold released')
  proc.proc.kill('SIGTERM')
})
