// The gateway's books (gateway/billing/billing-store.ts) on node:sqlite and on a real PostgreSQL: each entry
// once per its key, balances moved in the same transaction, two holds racing for the same funds: one wins.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requireOrSkip } from '../../scripts/testing/requirements.ts'
import { postgresOnLoopback, postgresql } from '../../scripts/testing/postgres.ts'
import { PostgresDatabase, SqliteDatabase, type GatewayDatabase } from '../store/database.ts'
import { GatewayStore } from '../store/gateway-store.ts'
import { BillingStore } from '../billing/billing-store.ts'
import { holdFor, DEFAULT_HOLD_POLICY } from '../billing/hold-size.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'
import { CapacityStore, type QuoteRow } from '../capacity/capacity-store.ts'
import { capacityRequest } from '../capacity/capacity-request.ts'

/** Capacity reservations on the same database (gateway/capacity/capacity-store.ts): once per quote, the last slot to one deploy. */
async function capacity(t: Test, db: GatewayDatabase): Promise<void> {
  const accounts = await GatewayStore.open(db)
  const c = await CapacityStore.open(db)
  const cy = (await accounts.createAccount('cy@example.org', 'h', 1))!.id
  const q: QuoteRow = {
    id: 'q-1', accountId: cy, request: capacityRequest({ resources: { cpu: 1, memory: '64Mi' }, slots: 3, durationSeconds: 600 }),
    pricePerHour: 300n, total: 50n, slotCap: 100n, detail: { slots: [], standby: null, asked: 3, bids: 3 }, createdAt: 1, expiresAt: 1000,
  }
  await c.addQuote(q)
  t.same((await c.quote(cy, 'q-1'))?.request, q.request, 'the quote keeps the request')
  t.equal(await c.quote('someone-else', 'q-1'), undefined, 'and is its account\'s only')
  const [r1, r2] = await Promise.all([c.addReservation(q, 'cap-a', 2), c.addReservation(q, 'cap-b', 2)])
  t.equal(r1.id, r2.id, 'two reserves of one quote at once: one reservation')
  t.equal(await c.activate(r1.id, 10, 10 + 600_000), true)
  t.equal(await c.activate(r1.id, 20, 20 + 600_000), false, 'its time starts once')
  for (const k of ['u1', 'u2', 'u3']) await c.bindUse(k, r1.id, k === 'u1' ? 2 : 1, 30)
  t.equal(await c.bindUse('u1', 'cap-other', 2, 31), r1.id, 'a create stays bound to its first reservation')
  t.equal(await c.take('u1', 40), 'taken')
  t.equal(await c.take('u1', 41), 'taken-before', 'a create takes its slots once')
  const race = await Promise.all([c.take('u2', 42), c.take('u3', 42)])
  const loser = race[0] === 'full' ? 'u2' : 'u3'
  t.same([...race].sort(), ['full', 'taken'], 'two deploys racing for the last slot: one gets it')
  t.equal((await c.reservation(r1.id))!.used, 3)
  t.equal(await c.release('u1', 50), true)
  t.equal(await c.release('u1', 51), false, 'slots come back once')
  t.equal((await c.reservation(r1.id))!.used, 1)
  t.equal(await c.take(loser, 10 + 600_000), 'not-active', 'nothing gets in once its time is over')
  t.equal(await c.beginEnd(r1.id, 60), true)
  t.equal(await c.beginEnd(r1.id, 70), false, 'its end begins once')
  await c.finishEnd(r1.id, 42n)
  t.same([(await c.reservation(r1.id))!.state, (await c.reservation(r1.id))!.charged, (await c.reservation(r1.id))!.endedAt], ['ended', 42n, 60])
}

async function books(t: Test, db: GatewayDatabase): Promise<void> {
  const accounts = await GatewayStore.open(db)
  const b = await BillingStore.open(db)
  const ada = (await accounts.createAccount('ada@example.org', 'h', 1))!.id
  const bob = (await accounts.createAccount('bob@example.org', 'h', 1))!.id
  t.same(await b.balance(ada), { posted: 0n, pending: 0n, available: 0n })
  t.equal(await b.topUp('evm-1:0xaa:0', ada, 1_000n, 10), 'credited')
  t.equal(await b.topUp('evm-1:0xaa:0', ada, 1_000n, 11), 'duplicate', 'the same reference again: nothing more')
  t.same(await b.topUp('evm-1:0xaa:0', bob, 1_000n, 12), { conflict: { account: ada, amount: 1_000n } }, 'the same reference for another account: a conflict, nothing credited')
  t.same(await b.balance(ada), { posted: 1_000n, pending: 0n, available: 1_000n })
  t.same(await b.balance(bob), { posted: 0n, pending: 0n, available: 0n })
  // holds
  t.equal(await b.hold('h1', ada, 'web', 600n, 20), 'held')
  t.equal(await b.hold('h1', ada, 'web', 600n, 21), 'held-before', 'a hold once per key')
  t.equal(await b.hold('h2', ada, 'web', 600n, 22), 'insufficient', 'not more than is available')
  t.same(await b.balance(ada), { posted: 1_000n, pending: 600n, available: 400n }, 'a refused hold holds nothing')
  // two holds at once for the same funds: one wins
  const race = await Promise.all([b.hold('r1', ada, 'a', 300n, 30), b.hold('r2', ada, 'b', 300n, 30)])
  t.same(race.sort(), ['held', 'insufficient'], 'two holds racing for 400 available at 300 each: one is held')
  t.same(await b.balance(ada), { posted: 1_000n, pending: 900n, available: 100n })
  // charges: once per record
  t.equal(await b.charge('c1:0', ada, 'dep-1', 'web', 70n, '2026-12-05', 40), true)
  t.equal(await b.charge('c1:0', ada, 'dep-1', 'web', 70n, '2026-12-05', 41), false, 'a usage record is charged once')
  t.equal(await b.charge('c1:1', ada, 'dep-1', 'web', 30n, '2026-12-06', 42), true)
  t.equal(await b.release('h1', 50), true)
  t.equal(await b.release('h1', 51), false, 'a hold is released once')
  t.same(await b.balance(ada), { posted: 900n, pending: 300n, available: 600n })
  t.same((await b.usageDays(ada, '2026-12-01', '2026-12-31')).map((d) => [d.day, d.workload, d.amount]), [['2026-12-05', 'web', 70n], ['2026-12-06', 'web', 30n]])
  t.same(await b.usageDays(bob, '2026-12-01', '2026-12-31'), [], 'per account')
  await t.rejects(b.charge('c2:0', ada, 'dep-1', 'web', -1n, '2026-12-05', 43), RangeError, 'no negative amount')
  await t.rejects(b.topUp('x', ada, 2n ** 60n, 1), RangeError, 'no amount beyond 2^53 µNLC')
}

t.test('the books on node:sqlite', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-books-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const db = new SqliteDatabase(join(dir, 'gateway.db'))
  t.teardown(() => db.close())
  await books(t, db)
  await capacity(t, db)
})

t.test('the books on PostgreSQL', async (t) => {
  if (!requireOrSkip(t, postgresql)) return
  const pg = await postgresOnLoopback(t)
  const db = new PostgresDatabase(pg.url)
  t.teardown(() => db.close())
  await books(t, db)
  await capacity(t, db)
})

t.test('hold sizing: the price cap (or the default) x replicas x the window, a job to its deadline', async (t) => {
  const w = (o: Record<string, unknown>) => validateWorkload({ apiVersion: 'noir/v1', name: 'w', runtime: { type: 'container', image: 'x' }, resources: { cpu: 0.1, memory: '16Mi' }, ...o })
  t.equal(holdFor(w({ kind: 'service', constraints: { maxPrice: 2_000_000 }, service: { replicas: 3 } }), DEFAULT_HOLD_POLICY), 6_000_000n)
  t.equal(holdFor(w({ kind: 'service' }), DEFAULT_HOLD_POLICY), DEFAULT_HOLD_POLICY.defaultHourlyPrice, 'no cap: the default price')
  t.equal(holdFor(w({ kind: 'job', constraints: { maxPrice: 100 }, job: { completions: 10, parallelism: 4, deadlineSeconds: 60 } }), { ...DEFAULT_HOLD_POLICY, holdHours: 5 }), 400n, 'a job: its parallelism, its deadline rounded up to an hour')
})
