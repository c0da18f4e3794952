import t from 'tap'
import * as fc from 'fast-check'
import { CapacityIndex } from '../placement/capacity-index.ts'
import type { PlacementFacts } from '../placement/capacity-report.ts'
import { isEligible } from '../placement/place.ts'
import { defaultPricePolicy, quote } from '../placement/price.ts'
import type { NodeOffer } from '../placement/offer.ts'
import { chooseCandidates, roundMessages, roundPlan, runRounds, shouldWiden, neededBids } from '../placement/sample.ts'
import { CapacityIndexFullError, InvalidHeartbeatError } from '../errors.ts'
import { validateWorkload, type Arch, type RuntimeType, type Workload } from '../workload/workload.ts'
import { workload } from './helpers.ts'

const GiB = 2 ** 30
const did = (i: number): string => `did:key:node${String(i).padStart(6, '0')}`

interface BeatOptions {
  seq?: number
  at?: number
  intervalMs?: number
  free?: { cpu?: number; memoryBytes?: number; diskBytes?: number; gpu?: number }
  facts?: Partial<PlacementFacts> | null
}

/** A heartbeat body as appliance/heartbeat builds it (share/used/ports/allocations/load included). */
function beat(i: number, o: BeatOptions = {}): Record<string, unknown> {
  const free = { cpu: 4, memoryBytes: 8 * GiB, diskBytes: 100 * GiB, gpu: 0, ...o.free }
  const facts: PlacementFacts = { owner: `did:key:owner${i}`, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container', 'wasm'], price: defaultPricePolicy, ...o.facts }
  return {
    v: 1, node: did(i), seq: o.seq ?? 1, at: o.at ?? 1_700_000_000_000, intervalMs: o.intervalMs ?? 1000,
    capacity: { share: free, used: { cpu: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 }, free, ports: { range: [20000, 20999], used: 0, free: 1000 } },
    allocations: { total: 0, byState: {}, running: [] },
    load: { loadavg1: 0.1, cpuNanos: 0, memoryBytes: 0 },
    ...(o.facts === null ? {} : { facts }),
  }
}

/** A deterministic random source (mulberry32), so draws are the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

class Clock {
  t = 1_000_000
  now = (): number => this.t
}

function filled(n: number, o: { clock?: Clock; random?: () => number; beat?: (i: number) => BeatOptions } = {}): CapacityIndex {
  // a clock that stands still unless a test moves it: a slow machine must not age the nodes out mid-test
  const index = new CapacityIndex({ now: (o.clock ?? new Clock()).now, random: o.random ?? seeded(n) })
  for (let i = 0; i < n; i++) index.observe(did(i), beat(i, o.beat?.(i) ?? {}))
  return index
}

t.test('a node silent for three of its intervals leaves the index', async (t) => {
  const clock = new Clock()
  const index = filled(2, { clock })
  const w = workload()
  clock.t += 2000
  index.observe(did(1), beat(1, { seq: 2 })) // node 1 keeps beating, node 0 falls silent
  clock.t += 999 // node 0: 2,999 ms since its beat
  t.ok(index.has(did(0)), 'within three intervals it is held')
  t.same(new Set(index.sample({ workload: w, want: 5 }).dids), new Set([did(0), did(1)]))
  clock.t += 2
  t.notOk(index.get(did(0)), 'three intervals and a bit: gone')
  t.notOk(Array.from({ length: 20 }, () => index.sample({ workload: w, want: 5 }).dids).flat().includes(did(0)), 'never sampled once silent')
  t.ok(index.has(did(1)))
  clock.t += 3000
  t.equal(index.prune(), 1, 'prune removes the node that fell silent next')
  t.equal(index.size, 0)
  t.equal(index.stats().expired, 2)
})

t.test('a stale beat keeps nothing alive: an older or repeated body changes nothing, a restart is taken', async (t) => {
  const clock = new Clock()
  const index = new CapacityIndex({ now: clock.now })
  index.observe(did(1), beat(1, { seq: 5, at: 5000, free: { cpu: 2 } }))
  clock.t += 2500
  index.observe(did(1), beat(1, { seq: 4, at: 4000, free: { cpu: 8 } })) // delayed, older
  t.equal(index.get(did(1))!.free.cpu, 2, 'the older beat did not overwrite')
  clock.t += 600
  t.notOk(index.get(did(1)), 'and did not keep the node fresh')
  index.observe(did(1), beat(1, { seq: 1, at: 9000, free: { cpu: 3 } })) // restarted daemon: seq from 1, later time
  t.equal(index.get(did(1))!.free.cpu, 3, 'a restarted node is taken again')
})

t.test('a query never returns a node that fails a hard constraint', async (t) => {
  const archs: Arch[] = ['amd64', 'arm64', 'riscv64']
  const runtimes: RuntimeType[] = ['container', 'wasm', 'microvm', 'actor']
  const node = fc.record({
    arch: fc.constantFrom(...archs),
    region: fc.constantFrom('eu', 'us', 'asia'),
    ssd: fc.boolean(),
    owner: fc.integer({ min: 0, max: 3 }),
    runtimes: fc.subarray(runtimes, { minLength: 0 }),
    cpu: fc.constantFrom(0, 0.25, 0.5, 1, 1.5, 2, 4, 16, 200),
    mem: fc.integer({ min: 0, max: 40 }),
    gpu: fc.constantFrom(0, 0, 1, 2, 8),
    cheap: fc.boolean(),
  })
  const wl = fc.record({
    runtime: fc.constantFrom<RuntimeType>('container', 'wasm'),
    cpu: fc.constantFrom(0.1, 0.25, 0.5, 1, 2, 3, 100),
    memGi: fc.constantFrom(0.0625, 0.5, 1, 4, 16),
    gpu: fc.constantFrom(0, 1, 2),
    arch: fc.option(fc.subarray(archs, { minLength: 1 }), { nil: undefined }),
    region: fc.option(fc.subarray(['eu', 'us', 'asia'], { minLength: 1 }), { nil: undefined }),
    ssd: fc.boolean(),
    deny: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    allow: fc.option(fc.subarray([0, 1, 2, 3], { minLength: 1 }), { nil: undefined }),
    maxPrice: fc.option(fc.constantFrom('500000', '2000000', '10000000', '200000000'), { nil: undefined }),
  })
  fc.assert(fc.property(fc.array(node, { minLength: 1, maxLength: 60 }), wl, fc.integer(), (nodes, q, seed) => {
    const index = new CapacityIndex({ now: new Clock().now, random: seeded(seed) })
    const offers = new Map<string, NodeOffer>()
    nodes.forEach((n, i) => {
      const price = n.cheap ? { ...defaultPricePolicy, cpuPerHour: 100_000 } : defaultPricePolicy
      const facts: PlacementFacts = { owner: `did:key:owner${n.owner}`, arch: n.arch, region: n.region, labels: n.ssd ? { ssd: 'yes' } : {}, runtimes: n.runtimes, price }
      const free = { cpu: n.cpu, memoryBytes: n.mem * 512 * 2 ** 20, gpu: n.gpu, diskBytes: 50 * GiB }
      index.observe(did(i), beat(i, { free, facts }))
      offers.set(did(i), { nodeDid: did(i), ownerDid: facts.owner, arch: n.arch, region: n.region, labels: facts.labels, runtimes: n.runtimes, free: { ...free, vramBytes: 0 }, pricePerHour: '0', latencyMs: 0, trust: 1 })
    })
    const owners = (xs: number[]) => xs.map((o) => `did:key:owner${o}`)
    const w: Workload = workload({
      runtime: q.runtime === 'wasm' ? { type: 'wasm', module: 'm.wasm' } : { type: 'container', image: 'x' },
      resources: { cpu: q.cpu, memory: `${q.memGi}Gi`, gpu: q.gpu },
      constraints: {
        ...(q.arch ? { arch: q.arch } : {}), ...(q.region ? { region: q.region } : {}), ...(q.ssd ? { labels: { ssd: 'yes' } } : {}),
        ...(q.deny !== undefined || q.allow ? { owners: { ...(q.deny !== undefined ? { deny: owners([q.deny]) } : {}), ...(q.allow ? { allow: owners(q.allow.filter((a) => a !== q.deny)) } : {}) } } : {}),
        ...(q.maxPrice !== undefined ? { maxPrice: q.maxPrice } : {}),
      },
    })
    const eligible = (d: string): boolean => {
      const o = offers.get(d)!
      const n = nodes[Number(d.slice(-6))]!
      return isEligible(w, { ...o, pricePerHour: String(quote(n.cheap ? { ...defaultPricePolicy, cpuPerHour: 100_000 } : defaultPricePolicy, w.resources, w.lane)) })
    }
    const all = [...offers.keys()].filter(eligible)
    const s = index.sample({ workload: w, want: nodes.length, budget: 10_000 })
    for (const d of s.dids) if (!eligible(d)) throw new Error(`${d} fails a hard constraint and was sampled`)
    // With a budget past the pool, the draw is complete: every eligible node is found.
    if (new Set(s.dids).size !== all.length) throw new Error(`found ${s.dids.length} of ${all.length} eligible nodes`)
  }), { numRuns: 300 })
  t.pass('300 random indexes and workloads: every sampled node met every hard constraint, none was missed')
})

t.test('sampling returns distinct nodes and never an excluded one', async (t) => {
  const index = filled(200)
  const w = workload()
  const exclude = new Set(Array.from({ length: 100 }, (_, i) => did(i * 2)))
  for (let k = 0; k < 200; k++) {
    const s = index.sample({ workload: w, want: 10, exclude })
    if (new Set(s.dids).size !== 10 || s.dids.some((d) => exclude.has(d))) return t.fail(`draw ${k}: ${s.dids.join(' ')}`)
  }
  t.pass('200 draws of 10: each ten distinct nodes, none excluded')
  const all = index.sample({ workload: w, want: 1000, exclude, budget: 1000 })
  t.equal(all.dids.length, 100, 'asked for more than there are: every node not excluded, once')
  t.ok(all.exhausted)
})

t.test('sampling is spread: over many draws every feasible node is chosen, none much more than the rest', async (t) => {
  const index = filled(100, { beat: (i) => (i % 4 === 0 ? { free: { cpu: 0.5 } } : {}) }) // a quarter cannot take 1 cpu
  const w = workload()
  const counts = new Map<string, number>()
  for (let k = 0; k < 3000; k++) for (const d of index.sample({ workload: w, want: 4 }).dids) counts.set(d, (counts.get(d) ?? 0) + 1)
  t.equal(counts.size, 75, 'every one of the 75 feasible nodes was chosen')
  const values = [...counts.values()]
  const mean = (3000 * 4) / 75
  t.ok(Math.min(...values) > mean * 0.6 && Math.max(...values) < mean * 1.4, `counts within 40% of the mean ${mean} (min ${Math.min(...values)}, max ${Math.max(...values)})`)
})

t.test('a noted reservation changes the next choice until the node reports it', async (t) => {
  const clock = new Clock()
  const index = new CapacityIndex({ now: clock.now })
  index.observe(did(1), beat(1, { free: { cpu: 1 } }))
  index.observe(did(2), beat(2, { free: { cpu: 1 } }))
  const w = workload() // 1 cpu, 1 GiB
  t.same(new Set(index.sample({ workload: w, want: 2 }).dids), new Set([did(1), did(2)]))
  t.ok(index.note(did(1), w.resources))
  t.equal(index.get(did(1))!.free.cpu, 0)
  t.same(index.sample({ workload: w, want: 2 }).dids, [did(2)], 'the node just reserved on is no longer a candidate')
  clock.t += 500
  index.observe(did(1), beat(1, { seq: 2, at: 1_700_000_001_000, free: { cpu: 1 } })) // may have been built before the reservation
  t.same(index.sample({ workload: w, want: 2 }).dids, [did(2)], 'the next beat may predate the reservation: still noted')
  clock.t += 1000
  index.observe(did(1), beat(1, { seq: 3, at: 1_700_000_002_000, free: { cpu: 0 } }))
  t.equal(index.get(did(1))!.notes, 0, 'the second beat after the note was built after it: the node speaks for itself')
  t.equal(index.get(did(1))!.free.cpu, 0)
  t.notOk(index.note(did(9), w.resources), 'a node not in the index: nothing to note')
})

t.test('a heartbeat body with bad fields is refused with InvalidHeartbeatError and nothing is indexed', async (t) => {
  const index = new CapacityIndex()
  const bad: [string, unknown, string][] = [
    ['not an object', 'hello', '$'],
    ['negative cpu', beat(1, { free: { cpu: -1 } }), '$.capacity.free.cpu'],
    ['NaN memory', beat(1, { free: { memoryBytes: NaN } }), '$.capacity.free.memoryBytes'],
    ['no capacity', { ...beat(1), capacity: undefined }, '$.capacity.free'],
    ['an interval that never ages out', beat(1, { intervalMs: 1e12 }), '$.intervalMs'],
    ['a version it does not know', { ...beat(1), v: 2 }, '$.v'],
    ['a fractional sequence', beat(1, { seq: 1.5 }), '$.seq'],
    ['an unknown arch', beat(1, { facts: { arch: 'sparc' as Arch } }), '$.facts.arch'],
    ['a label that is not a string', beat(1, { facts: { labels: { ssd: 1 } as unknown as Record<string, string> } }), '$.facts.labels.ssd'],
    ['runtimes that are not a list', beat(1, { facts: { runtimes: 'container' as unknown as RuntimeType[] } }), '$.facts.runtimes'],
    ['a negative price', beat(1, { facts: { price: { ...defaultPricePolicy, cpuPerHour: -1 } } }), '$.facts.price.cpuPerHour'],
    ['a price of a fraction of a µNLC', beat(1, { facts: { price: { ...defaultPricePolicy, memoryGiBPerHour: 0.25 } } }), '$.facts.price.memoryGiBPerHour'],
    ['an owner that is not a DID', beat(1, { facts: { owner: 'bob' } }), '$.facts.owner'],
  ]
  for (const [what, body, path] of bad) {
    const err = t.throws(() => index.observe(did(1), body), InvalidHeartbeatError, what) as InvalidHeartbeatError | undefined
    t.ok(err?.issues.some((i) => i.path === path), `${what}: names ${path}`)
  }
  const forged = t.throws(() => index.observe(did(2), beat(1)), InvalidHeartbeatError, 'a body naming another node than its signer') as InvalidHeartbeatError
  t.match(forged.issues[0]!.reason, /signed it/)
  t.equal(index.size, 0, 'nothing indexed')

  index.observe(did(1), beat(1, { free: { cpu: 2 } }))
  t.throws(() => index.observe(did(1), beat(1, { seq: 2, at: 1_700_000_001_000, free: { cpu: -5 } })), InvalidHeartbeatError)
  t.equal(index.get(did(1))!.free.cpu, 2, 'a refused update leaves what was held')
  index.observe(did(3), beat(3, { facts: { runtimes: ['container', 'gpu-container' as RuntimeType] } }))
  t.same(index.get(did(3))!.facts?.runtimes, ['container'], 'a runtime name this version does not know is left out, not refused')
})

t.test('a node whose heartbeat has no facts (an older version) is held but never sampled', async (t) => {
  const index = new CapacityIndex()
  index.observe(did(1), beat(1, { facts: null }))
  index.observe(did(2), beat(2))
  t.ok(index.has(did(1)))
  t.equal(index.stats().withoutFacts, 1)
  t.same(index.sample({ workload: workload(), want: 4 }).dids, [did(2)])
  index.observe(did(1), beat(1, { seq: 2, at: 1_700_000_001_000 })) // upgraded
  t.equal(index.stats().withoutFacts, 0)
  t.equal(index.sample({ workload: workload(), want: 4 }).dids.length, 2)
})

t.test('a full index refuses a new node with CapacityIndexFullError, after dropping the stale ones', async (t) => {
  const clock = new Clock()
  const index = new CapacityIndex({ maxNodes: 2, now: clock.now })
  index.observe(did(1), beat(1))
  index.observe(did(2), beat(2))
  t.throws(() => index.observe(did(3), beat(3)), CapacityIndexFullError)
  index.observe(did(2), beat(2, { seq: 2, at: 1_700_000_001_000 })) // a known node still updates
  clock.t += 3500
  t.doesNotThrow(() => index.observe(did(3), beat(3)), 'stale nodes made room')
})

t.test('the round plan: d x needed, at least a few, then four times more, then the broadcast', async (t) => {
  t.same(roundPlan(0, 1), { round: 0, kind: 'sample', size: 4 })
  t.same(roundPlan(0, 3), { round: 0, kind: 'sample', size: 6 })
  t.same(roundPlan(1, 3), { round: 1, kind: 'sample', size: 24 })
  t.same(roundPlan(2, 3), { round: 2, kind: 'broadcast' })
  t.equal(neededBids(2, true), 3, 'the protected lane wants one more bid for its standby')
  t.equal(roundMessages(roundPlan(0, 3), 100_000), 12, 'a first round costs the same at any size')
  t.equal(roundMessages(roundPlan(2, 3), 100_000), 200_000)
  t.ok(shouldWiden(1, 2))
  t.notOk(shouldWiden(2, 2))
  t.throws(() => roundPlan(-1, 1), RangeError)
})

t.test('widening: a short sample goes to a bigger round, an index with no more candidates to the broadcast', async (t) => {
  // random() = 0 draws the pool in order: nodes 0-69 (denied owner) come first, 70-99 fit
  const index = filled(100, { random: () => 0, beat: (i) => ({ facts: { owner: i < 70 ? 'did:key:denied' : `did:key:owner${i}` } }) })
  const w = workload({ constraints: { owners: { deny: ['did:key:denied'] } } })
  const c = chooseCandidates(index, w, 1, [])
  t.equal(c.plan.kind, 'sample')
  t.equal(c.plan.round, 1, 'the first sample looked at its 64 entries and found none: the second, four times bigger')
  t.ok(c.widened)
  t.equal(c.dids.length, 16)
  t.ok(c.dids.every((d) => Number(d.slice(-6)) >= 70))

  const one = filled(50, { beat: (i) => ({ free: { cpu: i === 7 ? 4 : 0.5 } }) })
  const b = chooseCandidates(one, workload({ service: { replicas: 2 } }), 2, [])
  t.same(b, { dids: [], widened: true, plan: { round: 2, kind: 'broadcast' }, touched: 1 }, 'one node fits, two are needed: only the broadcast can find more')
  const ok = chooseCandidates(one, workload(), 1, [])
  t.same(ok.dids, [did(7)], 'one is enough for one slot')
  t.notOk(ok.widened)
})

t.test('rounds: declines widen the sample to other nodes, then the broadcast; enough bids stop at once', async (t) => {
  const index = filled(1000)
  const w = workload({ service: { replicas: 2 } })
  const seen: string[][] = []
  const declineAll = await runRounds<string>({
    index, workload: w, count: 2, exclude: [did(5)],
    ask: (dids) => {
      seen.push(dids)
      return [] // every node asked declines
    },
    broadcast: (_plan, asked) => {
      t.equal(asked.size, 4 + 16, 'the broadcast knows who answered already')
      return [did(998), did(999)]
    },
  })
  t.same(declineAll.rounds.map((r) => (r.plan.kind === 'sample' ? r.plan.size : 'broadcast')), [4, 16, 'broadcast'])
  t.equal(new Set(seen.flat()).size, 20, 'the second round asks other nodes than the first')
  t.notOk(seen.flat().includes(did(5)), 'never an excluded node')
  t.ok(declineAll.broadcast)
  t.same(declineAll.bids, [did(998), did(999)])

  const quick = await runRounds<string>({ index, workload: w, count: 2, ask: (dids) => dids, broadcast: () => t.fail('no broadcast') as never })
  t.equal(quick.rounds.length, 1)
  t.equal(quick.asked.size, 4)
  t.notOk(quick.broadcast)
  t.equal(roundMessages(quick.rounds[0]!.plan, 1000), 8, 'two slots: four requests, four answers')
})

t.test('cost: the entries a query touches do not grow with the number of nodes', async (t) => {
  const regions = ['eu', 'us', 'asia']
  const nodeBeat = (i: number): BeatOptions => {
    const r = seeded(i)
    return {
      free: { cpu: Math.floor(r() * 64) / 4, memoryBytes: Math.floor(r() * 64) * GiB },
      facts: { region: regions[i % 3]!, arch: r() < 0.8 ? 'amd64' : 'arm64', labels: r() < 0.3 ? { ssd: 'yes' } : {} },
    }
  }
  const queries = [
    workload({ resources: { cpu: 0.5, memory: '512Mi' }, service: { replicas: 3 } }),
    workload({ lane: 'protected', resources: { cpu: 1, memory: '2Gi' }, constraints: { labels: { ssd: 'yes' } } }),
    validateWorkload({ apiVersion: 'noir/v1', kind: 'job', name: 'batch', runtime: { type: 'wasm', module: 'm.wasm' }, resources: { cpu: 0.25, memory: '128Mi' }, constraints: { region: ['eu'], arch: ['amd64'] } }),
    workload({ resources: { cpu: 15, memory: '60Gi' } }), // few nodes fit: rejections inside the boundary classes
  ]
  const perSize: Record<number, { touched: number; pool: number; found: number }> = {}
  for (const n of [1000, 10_000, 100_000]) {
    const index = filled(n, { beat: nodeBeat })
    let touched = 0
    let pool = 0
    let found = 0
    let most = 0
    for (let k = 0; k < 400; k++) {
      const w = queries[k % queries.length]!
      const c = chooseCandidates(index, w, w.kind === 'service' ? w.service!.replicas : 1, [], { standby: w.lane === 'protected' })
      const s = index.sample({ workload: w, want: 6 })
      touched += s.touched
      pool += s.pool
      found += c.dids.length
      most = Math.max(most, c.touched)
    }
    perSize[n] = { touched: touched / 400, pool: pool / 400, found: found / 400 }
    t.ok(most <= 64 + 128, `${n} nodes: no choice looked at more than its two budgets (most ${most})`)
  }
  t.comment(JSON.stringify(perSize))
  t.ok(perSize[100_000]!.pool > 50 * perSize[1000]!.touched, 'the pools grow with the nodes...')
  t.ok(perSize[100_000]!.touched <= perSize[1000]!.touched * 1.5 + 2, `...the entries touched do not (${perSize[1000]!.touched} at 1,000, ${perSize[100_000]!.touched} at 100,000)`)
})
