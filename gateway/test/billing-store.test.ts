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

/** A hold drawn down by its charges, refilled to its window, short when the account cannot pay, released with its remainder. */
async function runningOut(t: Test, db: GatewayDatabase): Promise<void> {
  const accounts = await GatewayStore.open(db)
  const b = await BillingStore.open(db)
  const cy = (await accounts.createAccount('cy-runs-out@example.org', 'h', 1))!.id
  const bal = async () => { const x = await b.balance(cy); return [x.posted, x.pending, x.available] }
  await b.topUp('evm-1:0xcc:0', cy, 1_000n, 1)
  t.equal(await b.hold('w1', cy, 'web', 400n, 2), 'held')
  await b.attachHold('w1', 'dep-w')
  t.equal(await b.charge('w:0', cy, 'dep-w', 'web', 150n, '2026-12-05', 3, 'w1'), true)
  t.equal(await b.charge('w:0', cy, 'dep-w', 'web', 150n, '2026-12-05', 4, 'w1'), false, 'a record again draws nothing more')
  t.same(await bal(), [850n, 250n, 600n], 'a charge the hold covers: posted and pending fall together, available does not move')
  t.same(await b.refill('w1', 5), { kind: 'covered' }, 'holding 250 of a 400 window: no refill')
  await b.charge('w:1', cy, 'dep-w', 'web', 100n, '2026-12-05', 6, 'w1')
  t.same(await b.refill('w1', 7), { kind: 'refilled', amount: 250n }, 'below half its window: topped back up to 400')
  t.same(await bal(), [750n, 400n, 350n])
  await b.charge('w:2', cy, 'dep-w', 'web', 300n, '2026-12-05', 8, 'w1')
  const both = await Promise.all([b.refill('w1', 9), b.refill('w1', 9)])
  t.same(both.map((r) => r.kind).sort(), ['covered', 'refilled'], 'two refills at once (two gateways): one tops it up')
  t.same(await bal(), [450n, 400n, 50n])
  await b.charge('w:3', cy, 'dep-w', 'web', 350n, '2026-12-05', 10, 'w1')
  t.same(await b.refill('w1', 11), { kind: 'short', since: 11, now: true, needed: 350n }, 'the account cannot refill it: short, nothing taken')
  t.same(await b.refill('w1', 12), { kind: 'short', since: 11, now: false, needed: 350n }, 'still short: the first time is kept')
  t.same(await bal(), [100n, 50n, 50n])
  await b.charge('w:4', cy, 'dep-w', 'web', 120n, '2026-12-05', 13, 'w1')
  t.same(await bal(), [-20n, 0n, -20n], 'usage beyond the hold is charged all the same: the account owes')
  t.equal(await b.hold('w2', cy, 'other', 10n, 14), 'insufficient', 'an account that owes can hold nothing')
  const [open] = (await b.holdsOf(cy)).filter((h) => h.holdKey === 'w1')
  t.same([open!.amount, open!.captured, open!.windowAmount, open!.shortSince], [950n, 950n, 400n, 11], 'the hold: 950 held in all (400, then 250 and 300 refilled), all of it used')
  await b.topUp('evm-1:0xcc:1', cy, 1_000n, 15)
  t.same(await b.refill('w1', 16), { kind: 'refilled', amount: 400n }, 'funds arrived: refilled')
  t.equal((await b.holdsOf(cy)).find((h) => h.holdKey === 'w1')!.shortSince, null, 'and no longer short')
  t.same(await bal(), [980n, 400n, 580n])
  t.equal(await b.markStopped('w1', 17), true)
  t.equal(await b.markStopped('w1', 18), false, 'stopped for want of funds once')
  t.equal(await b.release('w1', 19, 1_000), true)
  t.same(await bal(), [980n, 0n, 980n], 'released: what it still held is available again')
  t.ok((await b.meteredHolds(500)).some((h) => h.holdKey === 'w1'), 'released before its last records: still metered')
  t.equal(await b.charge('w:5', cy, 'dep-w', 'web', 30n, '2026-12-05', 20, 'w1'), true, 'a late record is charged')
  t.same(await bal(), [950n, 0n, 950n], 'from what is available (the hold is gone)')
  t.notOk((await b.meteredHolds(1_000)).some((h) => h.holdKey === 'w1'), 'metered no longer after its late window')
  await b.settled('w1')
  t.notOk((await b.meteredHolds(500)).some((h) => h.holdKey === 'w1'), 'nor once its records are all in')
  t.same(await b.refill('w1', 21), { kind: 'closed' }, 'a released hold is not refilled')
}

t.test('a hold made before holds were drawn down: the columns are added at open, the hold reads as before', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-books-old-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const db = new SqliteDatabase(join(dir, 'gateway.db'))
  t.teardown(() => db.close())
  const accounts = await GatewayStore.open(db)
  const dee = (await accounts.createAccount('dee@example.org', 'h', 1))!.id
  await db.migrate(`CREATE TABLE billing_holds (
    hold_key TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), deployment_id TEXT, workload TEXT NOT NULL,
    amount BIGINT NOT NULL, state TEXT NOT NULL, created_at BIGINT NOT NULL, released_at BIGINT)`)
  await db.run("INSERT INTO billing_holds (hold_key, account_id, deployment_id, workload, amount, state, created_at) VALUES ('old', ?, 'dep-old', 'web', 300, 'open', 1)", [dee])
  await db.migrate('CREATE TABLE billing_balances (account_id TEXT PRIMARY KEY REFERENCES accounts(id), posted BIGINT NOT NULL, pending BIGINT NOT NULL)')
  await db.run('INSERT INTO billing_balances (account_id, posted, pending) VALUES (?, 1000, 300)', [dee])
  const b = await BillingStore.open(db)
  const [h] = await b.holdsOf(dee)
  t.same([h!.amount, h!.captured, h!.windowAmount, h!.shortSince], [300n, 0n, 300n, null], 'the old hold: nothing drawn, its window its amount')
  await b.charge('o:0', dee, 'dep-old', 'web', 100n, '2026-12-05', 2, 'old')
  t.same(await b.balance(dee), { posted: 900n, pending: 200n, available: 700n }, 'and it is drawn down from now on')
  await BillingStore.open(db)
  t.pass('opened again: nothing added twice')
})

t.test('the books on node:sqlite', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-books-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const db = new SqliteDatabase(join(dir, 'gateway.db'))
  t.teardown(() => db.close())
  await books(t, db)
  await runningOut(t, db)
  await capacity(t, db)
})

t.test('the books on PostgreSQL', async (t) => {
  if (!requireOrSkip(t, postgresql)) return
  const pg = await postgresOnLoopback(t)
  const db = new PostgresDatabase(pg.url)
  t.teardown(() => db.close())
  await books(t, db)
  await runningOut(t, db)
  await capacity(t, db)
})

t.test('hold sizing: the price cap (or the default) x replicas x the window, a job to its deadline', async (t) => {
  const w = (o: Record<string, unknown>) => validateWorkload({ apiVersion: 'noir/v1', name: 'w', runtime: { type: 'container', image: 'x' }, resources: { cpu: 0.1, memory: '16Mi' }, ...o })
  t.equal(holdFor(w({ kind: 'service', constraints: { maxPrice: 2_000_000 }, service: { replicas: 3 } }), DEFAULT_HOLD_POLICY), 6_000_000n)
  t.equal(holdFor(w({ kind: 'service' }), DEFAULT_HOLD_POLICY), DEFAULT_HOLD_POLICY.defaultHourlyPrice, 'no cap: the default price')
  t.equal(holdFor(w({ kind: 'job', constraints: { maxPrice: 100 }, job: { completions: 10, parallelism: 4, deadlineSeconds: 60 } }), { ...DEFAULT_HOLD_POLICY, holdSeconds: 5 * 3600 }), 400n, 'a job: its parallelism, its deadline rounded up to an hour')
})
