// Running out of funds (spec/billing.md "Running out"), with real node daemons and Docker, the gateway's books
// on disk and real SMTP on loopback: a running deployment's hold is drawn down by its charges (what is available
// does not fall twice), refilled from the account's funds while it can be; when it cannot, the owner is mailed
// and the wallet says when the deployment stops; a top-up in time keeps it running; short again past the grace,
// it is stopped, the owner is told, the hold released, and the account paid exactly what the node accepted.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { eventually, startConnectedMesh } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { openGateway } from '../gateway.ts'
import { SESSION_COOKIE } from '../http/app.ts'
import { linkToken, smtpOnLoopback } from './mail-rig.ts'

const IMAGE = 'noir/busybox:latest'
const PASSWORD = 'correct horse battery staple'
const MAX_PRICE = 2_000_000 // µNLC per replica-hour
const NODE_PRICE = 1_800_000 // what the nodes quote: 500 µNLC a second
const HOLD_SECONDS = 10 // the hold: 2,000,000 x 10 / 3600 = 5,556 µNLC
const HOLD = 5_556n

interface Hold { deploymentId: string | null; held: string; used: string; short: boolean; stopsAt: number | null; stoppedAt: number | null }
interface Wallet { available: string; pending: string; posted: string; holds: Hold[] }

t.test('a deployment whose account runs out: drawn down, refilled, told, kept by a top-up, then stopped', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const { nodes } = await startConnectedMesh(t, 2, {
    share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', ledger: { usageIntervalMs: 1000 },
    orchestration: { beatMs: 200, bidWindowMs: 600, price: { minimumPerHour: NODE_PRICE, cpuPerHour: 0, memoryGiBPerHour: 0, diskGiBPerHour: 0, protectedMultiplierBps: 10_000 } },
  })
  const mail = await smtpOnLoopback(t)
  const home = mkdtempSync(join(tmpdir(), 'noir-gateway-runs-out-'))
  const dir = join(home, 'gateway')
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const gw = await openGateway({
    dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/', nodeHome: nodes[0]!.home,
    billing: { policy: { holdSeconds: HOLD_SECONDS }, meterMs: 100_000, releaseGraceMs: 3000, fundsGraceMs: 2500 },
  })
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await gw.close().catch(() => undefined)
    rmSync(home, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}`
  const call = async (method: string, path: string, cookie: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const r = await fetch(`${base}${path}`, { method, headers: { cookie: `${SESSION_COOKIE}=${cookie}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
    const text = await r.text()
    return { status: r.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }
  }
  await fetch(`${base}/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'eve@example.org', password: PASSWORD }) })
  await fetch(`${base}/v1/auth/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: linkToken(await mail.lastMailTo('eve@example.org'), 'verify') }) })
  const login = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'eve@example.org', password: PASSWORD }) })
  const eve = /noir_session=([A-Za-z0-9_-]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!
  const accountId = (await gw.store.accountByEmail('eve@example.org'))!.id
  const wallet = async (): Promise<Wallet> => (await call('GET', '/v1/wallet', eve)).json as unknown as Wallet
  const mailsAfter = mail.mails.length

  // an operator's credit (a chain deposit is the same entry: billing-daemons.test.ts)
  t.equal(await gw.billing!.store.topUp('operator:eve:1', accountId, 8_000n, Date.now()), 'credited')
  const made = await call('POST', '/v1/workloads', eve, {
    idempotencyKey: 'web-1',
    workload: {
      apiVersion: 'noir/v1', kind: 'service', name: 'web', constraints: { maxPrice: MAX_PRICE }, resources: { cpu: 0.2, memory: '32Mi' },
      runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.2 & wait $!; done'] },
    },
  })
  t.equal(made.status, 201, `admitted: ${JSON.stringify(made.json).slice(0, 200)}`)
  const id = made.json.id as string
  t.same([(await wallet()).pending, (await wallet()).available], [String(HOLD), String(8_000n - HOLD)], `the hold: the price cap for ${HOLD_SECONDS} s`)
  await eventually(async () => (await call('GET', `/v1/workloads/${id}`, eve)).json.phase === 'running', 90_000)

  // ---- drawn down while it runs: available does not move for usage the hold covers ----
  await eventually(async () => {
    await gw.billing!.meter()
    return BigInt((await wallet()).posted) < 8_000n
  }, 30_000, 300)
  const drawn = await wallet()
  const used = 8_000n - BigInt(drawn.posted)
  t.ok(used > 0n && used < HOLD / 2n, `charged ${used} µNLC so far, less than half the hold`)
  t.equal(drawn.pending, String(HOLD - used), 'pending fell with posted: the charges drew on the hold')
  t.equal(drawn.available, String(8_000n - HOLD), 'so available did not move')
  t.same([drawn.holds.length, drawn.holds[0]!.deploymentId, drawn.holds[0]!.used, drawn.holds[0]!.short], [1, id, String(used), false], 'the wallet shows the hold and what it used')

  // ---- the account cannot refill it: told by mail, the wallet says when it stops ----
  await eventually(async () => {
    await gw.billing!.meter()
    return (await wallet()).holds[0]?.short === true
  }, 60_000, 300)
  const short = await wallet()
  t.ok(short.holds[0]!.stopsAt !== null && short.holds[0]!.stopsAt > Date.now() - 60_000, `short: it stops at ${short.holds[0]!.stopsAt}`)
  t.ok(BigInt(short.available) < HOLD, 'with less available than a window')
  const low = await mail.lastMailTo('eve@example.org', mailsAfter)
  t.match(low, /top up to keep web running/, 'the owner is mailed')
  t.match(low, new RegExp(id), 'naming the deployment')

  // ---- a top-up in time: refilled, no longer short, still running ----
  t.equal(await gw.billing!.store.topUp('operator:eve:2', accountId, 6_000n, Date.now()), 'credited')
  await gw.billing!.meter()
  const kept = await wallet()
  t.equal(kept.holds[0]!.short, false, 'topped up: refilled, no longer short')
  t.ok(BigInt(kept.holds[0]!.held) * 2n >= HOLD, `and it holds half a window or more (${kept.holds[0]!.held})`)
  t.equal((await call('GET', `/v1/workloads/${id}`, eve)).json.phase, 'running', 'still running')

  // ---- short again and past the grace: stopped, told, released ----
  const stopMailsAfter = mail.mails.length
  await eventually(async () => {
    await gw.billing!.meter()
    const w = await wallet()
    return w.holds.length === 0 || (w.holds[0]!.stoppedAt ?? null) !== null
  }, 90_000, 300)
  await eventually(async () => ['stopped', 'completed'].includes((await call('GET', `/v1/workloads/${id}`, eve)).json.phase as string), 60_000, 300)
  t.pass('past the grace, the deployment is stopped')
  t.match(await mail.lastMailTo('eve@example.org', stopMailsAfter), /stopped for want of funds/, 'the owner is told it was stopped')
  await eventually(async () => {
    await gw.billing!.meter()
    return (await wallet()).holds.length === 0
  }, 60_000, 500)
  const end = await wallet()
  t.equal(end.pending, '0', 'its hold released')
  const node = await nodes[0]!.api.get<{ totals: { accepted: string } }>(`/v1/deployments/${id}/usage`)
  t.equal(String(14_000n - BigInt(end.posted)), node.totals.accepted, `the account paid exactly what the node accepted (${node.totals.accepted} µNLC)`)
  t.equal(end.available, end.posted, 'nothing held')
  const again = await call('POST', '/v1/workloads', eve, { idempotencyKey: 'web-2', workload: { apiVersion: 'noir/v1', kind: 'service', name: 'web2', constraints: { maxPrice: MAX_PRICE * 100 }, runtime: { type: 'container', image: IMAGE }, resources: { cpu: 0.2, memory: '32Mi' } } })
  t.equal(again.status, 402, 'a deploy it cannot hold for is refused')
})
