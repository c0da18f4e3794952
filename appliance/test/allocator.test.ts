import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type Server } from 'node:net'
import { Level } from 'level'
import { LevelKvStore, type KvStore } from '../../core/index.ts'
import { Allocator, type AllocatorInit } from '../allocator/allocator.ts'
import { parseShare } from '../share/share.ts'
import { InsufficientCapacityError, InvalidResourceRequestError, PortsExhaustedError, ReservationExpiredError, ReservationNotFoundError } from '../errors.ts'

const GiB = 1024 ** 3
const share = parseShare('cpu=2,memory=4GiB,disk=20GiB,gpu=0')

async function openStore(t: Test, dir?: string): Promise<{ db: Level<string, unknown>; store: KvStore; dir: string }> {
  const d = dir ?? mkdtempSync(join(tmpdir(), 'noir-alloc-'))
  if (!dir) t.teardown(() => rmSync(d, { recursive: true, force: true }))
  const db = new Level<string, unknown>(d, { valueEncoding: 'json' })
  await db.open()
  t.teardown(() => db.close())
  return { db, store: new LevelKvStore(db.sublevel<string, unknown>('svc:allocator', { valueEncoding: 'json' })), dir: d }
}

const make = (store: KvStore, over: Partial<AllocatorInit> = {}): Allocator => new Allocator({ store, share, portRange: [41000, 41009], ...over })

t.test('a request beyond the share is rejected with InsufficientCapacityError naming resource, requested and free', async (t) => {
  const { store } = await openStore(t)
  const a = make(store)
  await a.open()
  await a.reserve({ cpu: 1.5, memoryBytes: GiB })
  const caught = await a.reserve({ cpu: 1, memoryBytes: GiB }).catch((x: unknown) => x)
  t.ok(caught instanceof InsufficientCapacityError)
  const c = caught as InsufficientCapacityError
  t.equal(c.name, 'InsufficientCapacityError')
  t.equal(c.resource, 'cpu')
  t.equal(c.requested, 1)
  t.equal(c.free, 0.5)
  await t.rejects(a.reserve({ cpu: 0.1, memoryBytes: 5 * GiB }), { name: 'InsufficientCapacityError', resource: 'memory' })
  await t.rejects(a.reserve({ cpu: 0.1, memoryBytes: 0, gpu: 1 }), { name: 'InsufficientCapacityError', resource: 'gpu' }, 'no GPU is shared')
})

t.test('the allocator never exceeds what the machine really has free', async (t) => {
  const { store } = await openStore(t)
  const a = make(store, { hostFree: () => ({ cpu: 2, memoryBytes: GiB, diskBytes: 100 * GiB, gpu: 0 }) })
  await a.open()
  await t.rejects(a.reserve({ cpu: 1, memoryBytes: 2 * GiB }), { name: 'InsufficientCapacityError', resource: 'memory', free: GiB })
})

t.test('bad requests are refused with InvalidResourceRequestError', async (t) => {
  const { store } = await openStore(t)
  const a = make(store)
  await a.open()
  await t.rejects(a.reserve({ cpu: -1, memoryBytes: 0 }), InvalidResourceRequestError)
  await t.rejects(a.reserve({ cpu: Number.NaN, memoryBytes: 0 }), InvalidResourceRequestError)
  await t.rejects(a.reserve({ cpu: 1, memoryBytes: 1, ports: 1.5 }), InvalidResourceRequestError)
})

t.test('no request is free: cpu below the 10-millicore floor is refused, and what is held is rounded up, never down', async (t) => {
  const { store } = await openStore(t)
  const a = make(store)
  await a.open()
  for (const cpu of [0, 1e-12, 5e-324, 0.009, Number.POSITIVE_INFINITY]) {
    await t.rejects(a.reserve({ cpu, memoryBytes: 0 }), InvalidResourceRequestError, `cpu ${cpu}`)
  }
  // 200 of the smallest requests fill exactly the two shared cores: each counts as its full 10 millicores.
  for (let i = 0; i < 200; i++) await a.reserve({ cpu: 0.01, memoryBytes: 0 })
  await t.rejects(a.reserve({ cpu: 0.01, memoryBytes: 0 }), InsufficientCapacityError, 'the 201st does not fit')
  const { store: s2 } = await openStore(t)
  const b = make(s2)
  await b.open()
  const r = await b.reserve({ cpu: 0.0101, memoryBytes: 0 })
  t.equal(r.resources.cpu, 0.011, 'a fraction of a millicore is held as a whole one')
})

t.test('an expired reservation frees its capacity, and committing it fails with ReservationExpiredError', async (t) => {
  const { store } = await openStore(t)
  let now = 1_000_000
  const reclaimed: string[] = []
  const a = make(store, { now: () => now, onReclaim: (rs) => reclaimed.push(...rs.map((r) => r.id)) })
  await a.open()
  const r = await a.reserve({ cpu: 2, memoryBytes: GiB }, { ttlMs: 5000 })
  await t.rejects(a.reserve({ cpu: 1, memoryBytes: GiB }), InsufficientCapacityError, 'held while the reservation lives')
  now += 5001
  t.same((await a.capacity()).free.cpu, 2, 'after the expiry the CPU is free again')
  t.same(reclaimed, [r.id], 'the reclaim is reported')
  await t.rejects(a.commit(r.id), ReservationNotFoundError, 'an expired and reclaimed reservation is gone')
  const r2 = await a.reserve({ cpu: 1, memoryBytes: GiB }, { ttlMs: 100 })
  now += 200
  await t.rejects(a.commit(r2.id), ReservationExpiredError, 'committing after the expiry (before a reclaim) fails')
  t.equal((await a.capacity()).used.cpu, 0)
})

t.test('the reclaim timer frees expired reservations without any call', async (t) => {
  const { store } = await openStore(t)
  const a = make(store, { reclaimEveryMs: 50 })
  await a.start()
  t.teardown(() => a.stop())
  await a.reserve({ cpu: 1, memoryBytes: GiB }, { ttlMs: 100 })
  t.equal(a.list().length, 1)
  // list() never reclaims by itself: only the timer can empty it
  while (a.list().length > 0) await new Promise((r) => setTimeout(r, 20))
  t.equal(a.list().length, 0, 'gone after its expiry')
})

t.test('commit keeps the resources until release; release is idempotent', async (t) => {
  const { store } = await openStore(t)
  let now = 0
  const a = make(store, { now: () => now })
  await a.open()
  const r = await a.reserve({ cpu: 1, memoryBytes: GiB, diskBytes: GiB }, { ttlMs: 10 })
  const c = await a.commit(r.id, { allocationId: 'alloc-1' })
  t.equal(c.state, 'committed')
  t.equal(c.allocationId, 'alloc-1')
  now += 1_000_000
  t.equal((await a.capacity()).used.cpu, 1, 'a committed allocation does not expire')
  await a.release(r.id)
  await a.release(r.id)
  t.equal((await a.capacity()).used.cpu, 0)
})

t.test('reservations survive a restart: a new allocator on the same store sees them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-alloc-restart-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let id: string
  {
    const db = new Level<string, unknown>(dir, { valueEncoding: 'json' })
    const a = make(new LevelKvStore(db.sublevel<string, unknown>('svc:allocator', { valueEncoding: 'json' })))
    await a.open()
    const r = await a.reserve({ cpu: 1.5, memoryBytes: GiB, ports: 2 }, { ttlMs: 60_000 })
    await a.commit(r.id, { allocationId: 'survivor' })
    id = r.id
    await db.close()
  }
  const { store } = await openStore(t, dir)
  const b = make(store)
  await b.open()
  const r = b.get(id)
  t.equal(r?.allocationId, 'survivor')
  t.equal(r?.state, 'committed')
  t.equal(r?.ports.length, 2)
  t.equal((await b.capacity()).used.cpu, 1.5)
  await t.rejects(b.reserve({ cpu: 1, memoryBytes: 0 }), InsufficientCapacityError, 'the restored allocation still counts')
})

t.test('ports come from the range, are never handed out twice, skip ports in use, and run out with PortsExhaustedError', async (t) => {
  const { store } = await openStore(t)
  const busy: Server = createServer()
  await new Promise<void>((r) => busy.listen(41001, '127.0.0.1', () => r()))
  t.teardown(() => new Promise<void>((r) => busy.close(() => r())))
  const a = make(store, { portRange: [41000, 41004] })
  await a.open()
  const r1 = await a.reserve({ cpu: 0, memoryBytes: 0, ports: 2 })
  const r2 = await a.reserve({ cpu: 0, memoryBytes: 0, ports: 2 })
  const given = [...r1.ports, ...r2.ports]
  t.same([...given].sort(), [41000, 41002, 41003, 41004], '41001 is in use by another process and skipped; the others handed out once each')
  t.equal(new Set(given).size, 4, 'never twice')
  await t.rejects(a.reserve({ cpu: 0, memoryBytes: 0, ports: 1 }), PortsExhaustedError)
  await a.release(r1.id)
  const r3 = await a.reserve({ cpu: 0, memoryBytes: 0, ports: 1 })
  t.ok(r1.ports.includes(r3.ports[0]!), 'released ports are reused')
})
