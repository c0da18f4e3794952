// Capacity requests (gateway/capacity/, spec/capacity.md) around a stand-in for the gateway's node (a unit
// test of the gateway's code: the node's dry run, creates, status and stops are answered by a table here;
// gateway/test/capacity-daemons.test.ts runs the same journey on a real mesh). On a real node:sqlite file:
// the quote is the bids' price, a reservation holds its total once, deploys run inside it within its slots,
// lane, runtime and resources, at its price cap and with no hold of their own; its end stops them and charges
// the minutes it lasted, once; no account reaches another's quote or reservation.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteDatabase } from '../store/database.ts'
import { GatewayStore } from '../store/gateway-store.ts'
import { TenantStore } from '../store/tenant-store.ts'
import { BillingStore } from '../billing/billing-store.ts'
import { CapacityStore } from '../capacity/capacity-store.ts'
import { CapacityReservations, chargedSeconds, holdKeyOf, priceFor, QUOTE_TTL_MS } from '../capacity/capacity-reservations.ts'
import { capacityRequest, fitToReservation } from '../capacity/capacity-request.ts'
import { TenantWorkloads, type NodeLink } from '../workloads/tenant-workloads.ts'
import { ApiCallError } from '../../appliance/daemon/errors.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'
import { InvalidRequestError, ReservationExceededError } from '../errors.ts'

const A = 'did:key:z6MkA'
const B = 'did:key:z6MkB'
const C = 'did:key:z6MkC'
const PRICES: Record<string, string> = { [A]: '100000', [B]: '250000', [C]: '400000' }

/** The gateway's node, answered from tables: what it was asked is kept. */
class NodeTable {
  feasible = true
  readonly posts: { path: string; body: unknown }[] = []
  readonly phase = new Map<string, string>()
  #n = 0
  readonly #byKey = new Map<string, string>()
  link(): NodeLink {
    return {
      post: async <T>(path: string, body?: unknown): Promise<T> => {
        this.posts.push({ path, body })
        if (path === '/v1/bids/dry-run') {
          const w = (body as { workload: { service: { replicas: number }; lane: string } }).workload
          const nodes = [A, B, C].slice(0, w.service.replicas)
          return (this.feasible
            ? { round: { asked: [A, B, C], bids: [1, 2, 3], offers: [A, B, C].map((d) => ({ nodeDid: d, pricePerHour: PRICES[d] })) }, placement: { ok: true, nodes, standby: w.lane === 'protected' ? C : null } }
            : { round: { asked: [A, B, C], bids: [], offers: [] }, placement: { ok: false, infeasible: { reason: 'no node has 64 cores free' } } }) as T
        }
        if (path === '/v1/deployments') {
          // as the node does: one deployment per idempotency key
          const key = (body as { idempotencyKey: string }).idempotencyKey
          const id = this.#byKey.get(key) ?? `dep-${++this.#n}`
          if (!this.#byKey.has(key)) this.phase.set(id, 'running')
          this.#byKey.set(key, id)
          return { id } as T
        }
        const stop = /^\/v1\/deployments\/([^/]+)\/stop$/.exec(path)
        if (stop) {
          this.phase.set(decodeURIComponent(stop[1]!), 'stopped')
          return { ok: true } as T
        }
        throw new Error(`unexpected POST ${path}`)
      },
      get: async <T>(path: string): Promise<T> => {
        const m = /^\/v1\/deployments\/([^/]+)$/.exec(path)
        const phase = m ? this.phase.get(decodeURIComponent(m[1]!)) : undefined
        if (phase === undefined) throw new ApiCallError(404, 'DeploymentNotFoundError', 'ERR_NOT_FOUND', `no ${path}`)
        return { phase } as T
      },
      stream: () => {
        throw new Error('no streams here')
      },
    }
  }
  creates(): { workload: Record<string, unknown> }[] {
    return [...new Map(this.posts.filter((p) => p.path === '/v1/deployments').map((p) => [(p.body as { idempotencyKey: string }).idempotencyKey, p.body as { workload: Record<string, unknown> }])).values()]
  }
}

const service = (over: Record<string, unknown> = {}) => ({
  apiVersion: 'noir/v1', kind: 'service', name: 'web', runtime: { type: 'container', image: 'noir/busybox:latest' }, resources: { cpu: 0.5, memory: '128Mi' }, ...over,
})

async function rig(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'noir-capacity-'))
  const db = new SqliteDatabase(join(dir, 'gateway.db'))
  t.teardown(async () => {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const accounts = await GatewayStore.open(db)
  const books = await BillingStore.open(db)
  const clock = { now: Date.parse('2026-12-05T10:00:00Z') }
  const node = new NodeTable()
  const capacity = new CapacityReservations({ store: await CapacityStore.open(db), books, node: node.link(), now: () => clock.now })
  const holds: string[] = []
  const workloads = new TenantWorkloads({
    store: await TenantStore.open(db), node: node.link(), now: () => clock.now, capacity,
    billing: {
      admit: async (a, k) => {
        holds.push(k)
        await books.hold(k, a, 'w', 1n, clock.now)
      },
      attached: async () => undefined, refused: async () => undefined },
  })
  const ada = (await accounts.createAccount('ada@example.org', 'h', 1))!.id
  const eve = (await accounts.createAccount('eve@example.org', 'h', 1))!.id
  return { capacity, workloads, books, node, clock, ada, eve, holds }
}

t.test('a request is checked with the workload rules, said at the request\'s own paths', async (t) => {
  const ok = capacityRequest({ resources: { cpu: 0.5, memory: '256MiB' }, slots: 2, durationSeconds: 3600 })
  t.same([ok.resources.memoryBytes, ok.lane, ok.runtime, ok.slots], [256 * 2 ** 20, 'best-effort', 'container', 2])
  t.throws(() => capacityRequest({ resources: { cpu: 0.5, memory: 'lots' }, slots: 1, durationSeconds: 3600 }), InvalidRequestError)
  const one = (() => {
    try {
      capacityRequest({ resources: { cpu: 0.5, memory: '64Mi' }, slots: 1, durationSeconds: 3600, lane: 'protected' })
    } catch (err) {
      return err as InvalidRequestError
    }
  })()
  t.ok(one instanceof InvalidRequestError && /\$\.slots/.test(one.message), `a protected reservation of one slot is refused at $.slots: ${one?.message}`)
  t.throws(() => capacityRequest({ resources: { cpu: 0.5, memory: '64Mi' }, slots: 1, durationSeconds: 3600, constraints: { planet: 'mars' } }), InvalidRequestError, 'an unknown constraint')
})

t.test('what fits a reservation, and what runs', async (t) => {
  const r = capacityRequest({ resources: { cpu: 1, memory: '256Mi' }, slots: 2, durationSeconds: 3600, constraints: { region: ['eu'] } })
  const fitted = fitToReservation(validateWorkload(service({ constraints: { region: ['us'], maxPrice: 900000 } })), r, 250_000n)
  t.same([fitted.constraints.region, fitted.constraints.maxPrice], [['eu'], '250000'], 'the reservation\'s region, its price cap')
  t.equal(fitToReservation(validateWorkload(service({ constraints: { maxPrice: 1000 } })), r, 250_000n).constraints.maxPrice, '1000', 'a lower cap of the workload\'s own is kept')
  t.throws(() => fitToReservation(validateWorkload(service({ resources: { cpu: 2, memory: '64Mi' } })), r, 1n), ReservationExceededError, 'more cpu than a slot')
  t.throws(() => fitToReservation(validateWorkload(service({ service: { replicas: 3 } })), r, 1n), ReservationExceededError, 'more replicas than slots')
  t.throws(() => fitToReservation(validateWorkload(service({ lane: 'protected', service: { replicas: 2 } })), r, 1n), ReservationExceededError, 'another lane')
  t.throws(() => fitToReservation(validateWorkload(service({ runtime: { type: 'wasm', module: 'hello' } })), r, 1n), ReservationExceededError, 'another runtime')
  t.equal(chargedSeconds(0, 1, 3600), 60, 'a minute at least')
  t.equal(chargedSeconds(0, 61_000, 3600), 120, 'whole minutes begun')
  t.equal(chargedSeconds(0, 10 * 3_600_000, 3600), 3600, 'never beyond its duration')
  t.equal(priceFor(350_000n, 3600), 350_000n)
  t.equal(priceFor(1n, 1), 1n, 'rounded up to a whole µNLC')
})

t.test('quote, reserve, deploy inside, end: paid once for the minutes it lasted', async (t) => {
  const { capacity, workloads, books, node, clock, ada, eve, holds } = await rig(t)
  const q = await capacity.quote(ada, { resources: { cpu: 0.5, memory: '128Mi' }, slots: 2, durationSeconds: 2 * 3600 })
  t.equal(q.pricePerHour, '350000', 'the two slots the placement picks, at their bids\' prices')
  t.equal(q.total, '700000', 'times two hours')
  t.equal(q.slotPriceCap, '250000', 'the dearest slot')
  t.same(q.quotedBy.slots.map((s) => s.node), [A, B])
  const asked = node.posts.find((p) => p.path === '/v1/bids/dry-run')!.body as { workload: { service: { replicas: number }; resources: { memory: number } } }
  t.same([asked.workload.service.replicas, asked.workload.resources.memory], [2, 128 * 2 ** 20], 'the mesh was asked for the shape requested')

  const protectedQuote = await capacity.quote(ada, { resources: { cpu: 0.5, memory: '128Mi' }, slots: 2, lane: 'protected', durationSeconds: 3600 })
  t.equal(protectedQuote.pricePerHour, '750000', 'the protected lane pays its standby too')

  // no funds: nothing reserved, nothing held
  await t.rejects(capacity.reserve(ada, q.id), { name: 'InsufficientFundsError', status: 402 })
  t.same((await capacity.list(ada)).reservations, [])
  await books.topUp('evm:0x1:0', ada, 1_000_000n, clock.now)
  await t.rejects(capacity.reserve(eve, q.id), { name: 'NotFoundError' }, 'another account cannot reserve my quote')
  const r = await capacity.reserve(ada, q.id)
  t.same([r.state, r.slots, r.slotsUsed, r.total, r.endsAt - r.startsAt], ['active', 2, 0, '700000', 2 * 3_600_000])
  t.equal((await capacity.reserve(ada, q.id)).id, r.id, 'reserving the same quote again answers the same reservation')
  t.same(await books.balance(ada), { posted: 1_000_000n, pending: 700_000n, available: 300_000n }, 'its total held once')
  await t.rejects(capacity.view(eve, r.id), { name: 'NotFoundError' }, 'another account does not see it')
  await t.rejects(capacity.cancel(eve, r.id), { name: 'NotFoundError' }, 'nor cancel it')
  await t.rejects(workloads.deploy(eve, service(), 'k-eve', r.id), { name: 'NotFoundError' }, 'nor deploy into it')

  // inside: a 1-replica service and a 1-replica job fill the two slots; a third does not get in
  const web = (await workloads.deploy(ada, service(), 'k-web', r.id)) as { id: string }
  const job = (await workloads.deploy(ada, { ...service({ kind: 'job', name: 'batch' }) }, 'k-job', r.id)) as { id: string }
  t.same(holds, [], 'a deploy inside a reservation holds nothing of its own')
  const sent = node.creates()
  t.same(sent.map((c) => (c.workload.constraints as { maxPrice: string }).maxPrice), ['250000', '250000'], 'each capped at the dearest slot\'s price')
  t.equal((await capacity.view(ada, r.id)).slotsUsed, 2)
  await t.rejects(workloads.deploy(ada, service({ name: 'third' }), 'k-3', r.id), { name: 'ReservationExceededError', status: 409 })
  t.equal(node.creates().length, 2, 'the node was not asked for the third')
  t.same((await workloads.deploy(ada, service(), 'k-web', r.id)) as { id: string }, web, 'a retried deploy answers the same deployment and takes no slot')
  // the job completes: its slot comes back at the next deploy
  node.phase.set(job.id, 'completed')
  await workloads.deploy(ada, service({ name: 'third' }), 'k-3', r.id)
  t.equal((await capacity.view(ada, r.id)).slotsUsed, 2, 'the completed job\'s slot went to the third')

  // time over: the sweep stops what runs inside and charges the whole duration, once
  clock.now = r.endsAt + 1
  await t.rejects(workloads.deploy(ada, service({ name: 'late' }), 'k-late', r.id), { name: 'ReservationEndedError' })
  await capacity.sweep()
  await capacity.sweep()
  const ended = await capacity.view(ada, r.id)
  t.same([ended.state, ended.charged, ended.slotsUsed], ['ended', '700000', 0])
  t.equal(node.phase.get(web.id), 'stopped', 'its deployments were stopped')
  t.same(ended.deployments.map((d) => d.running), [false, false, false])
  t.same(await books.balance(ada), { posted: 300_000n, pending: 0n, available: 300_000n }, 'charged once, its hold released')
  t.same((await books.chargesOf(ada)).map((c) => [c.recordId, c.deploymentId, c.amount]), [[holdKeyOf(r.id), r.id, 700_000n]], 'one charge, on the invoice as the reservation')
})

t.test('cancelled early: the minutes begun are charged, the rest released; a quote keeps only so long', async (t) => {
  const { capacity, workloads, books, node, clock, ada } = await rig(t)
  await books.topUp('evm:0x1:0', ada, 10_000_000n, clock.now)
  const q = await capacity.quote(ada, { resources: { cpu: 0.5, memory: '128Mi' }, slots: 1, durationSeconds: 3600 })
  const r = await capacity.reserve(ada, q.id)
  const web = (await workloads.deploy(ada, service(), 'k-web', r.id)) as { id: string }
  clock.now += 90_000
  const c = await capacity.cancel(ada, r.id)
  t.same([c.state, c.charged], ['ended', String(priceFor(100_000n, 120))], 'two minutes begun, at one slot\'s price')
  t.equal(node.phase.get(web.id), 'stopped')
  t.same(await books.balance(ada), { posted: 10_000_000n - priceFor(100_000n, 120), pending: 0n, available: 10_000_000n - priceFor(100_000n, 120) })
  t.same((await capacity.cancel(ada, r.id)).charged, c.charged, 'a second cancel changes nothing')

  const late = await capacity.quote(ada, { resources: { cpu: 0.5, memory: '128Mi' }, slots: 1, durationSeconds: 3600 })
  clock.now += QUOTE_TTL_MS + 1
  await t.rejects(capacity.reserve(ada, late.id), { name: 'QuoteExpiredError', status: 410 })
  // a hostile bidder's absurd price: a typed refusal, no quote whose total the books cannot hold exactly
  PRICES[A] = String(2n ** 62n)
  await t.rejects(capacity.quote(ada, { resources: { cpu: 0.5, memory: '128Mi' }, slots: 1, durationSeconds: 3600 }), { name: 'CapacityUnavailableError', status: 409 })
  PRICES[A] = '100000'
  node.feasible = false
  await t.rejects(capacity.quote(ada, { resources: { cpu: 64, memory: '128Mi' }, slots: 1, durationSeconds: 3600 }), { name: 'CapacityUnavailableError', status: 409 })
})
