// The capacity index: what the mesh's signed heartbeats say about each node's free capacity and facts, kept
// so that a placement can draw a few feasible candidates without asking, or even looking at, every node.
// Nodes are bucketed by their hard facts (runtime, arch, region), and inside a bucket by a size class of
// their free resources (powers of two of cpu, memory and gpu), so a query names the few class lists that can
// hold the request and draws from them at random without replacement (Sparrow's batch sampling, Nomad's
// limit iterator): its work is bounded by a touch budget, not by the number of nodes. Label and owner
// constraints have posting lists of their own, used when they are the smaller pool. A node silent for
// `missedBeats` of its own intervals leaves the index; `note()` takes off what a placement just reserved
// until the node's own heartbeats show it. spec/orchestration.md, "Placement at scale".
import { CapacityIndexFullError } from '../errors.ts'
import { maxPriceOf, type Lane, type ResourceRequest, type RuntimeType, type Workload } from '../workload/workload.ts'
import { parseCapacityReport, type PlacementFacts } from './capacity-report.ts'
import type { Capacity } from './offer.ts'
import { quote } from './price.ts'

export interface CapacityIndexOptions {
  /** A node whose heartbeat is this many of its intervals late leaves the index. Default 3. */
  missedBeats?: number
  /** Most nodes held; past it a new node is refused with CapacityIndexFullError (stale ones are pruned first). Default 250,000. */
  maxNodes?: number
  now?: () => number
  random?: () => number
}

/** One node as the index sees it (a copy). */
export interface IndexedNode {
  did: string
  /** Undefined for a node whose heartbeat carries no facts (an older version): never a sampling candidate. */
  facts: PlacementFacts | undefined
  /** Free capacity as the node last reported it. */
  reported: Capacity
  /** `reported` less the reservations noted since (what the index samples on). */
  free: Capacity
  /** Reservations noted and not yet shown by the node's heartbeats. */
  notes: number
  seq: number
  /** Local receive time of the last heartbeat, and when the node leaves the index without another. */
  receivedAt: number
  expiresAt: number
}

export interface SampleQuery {
  workload: Workload
  /** How many distinct feasible nodes to draw. */
  want: number
  /** Nodes never to return (already asked, lost, fenced, refused). */
  exclude?: ReadonlySet<string>
  /** Most index entries to look at. Default max(64, 8 x want). */
  budget?: number
}

export interface IndexSample {
  /** Distinct nodes that meet every hard constraint the index can judge, in draw order (at most `want`). */
  dids: string[]
  /** Index entries looked at: the work of the query, bounded by the budget whatever the number of nodes. */
  touched: number
  /** Entries in the pool the draw came from (the class lists, or a label or owner posting list). */
  pool: number
  /** Every entry of the pool was looked at: the index holds no further candidate for this workload. */
  exhausted: boolean
}

export interface CapacityIndexStats {
  nodes: number
  /** Nodes whose heartbeats carry no facts (reached only by a broadcast round). */
  withoutFacts: number
  buckets: number
  /** Nodes that left the index for silence since it was made. */
  expired: number
}

// ---- size classes ---------------------------------------------------------------------------------------------
// Class k >= 1 of a dimension holds free amounts in [base * 2^(k-1), base * 2^k); class 0 less than base; the
// top class everything above. A request can only be met in classes whose upper bound exceeds it.
const CPU_BASE = 0.25
const CPU_TOP = 10
const MEM_BASE = 64 * 2 ** 20
const MEM_TOP = 14
const GPU_BASE = 1
const GPU_TOP = 4

const classOf = (amount: number, base: number, top: number): number =>
  amount < base ? 0 : Math.min(top, 1 + Math.floor(Math.log2(amount / base)))
/** The lowest class whose members may hold `need` (upper bound above it). */
const minClassFor = (need: number, base: number, top: number): number => {
  if (need <= 0) return 0
  for (let k = 0; k < top; k++) if (base * 2 ** k > need) return k
  return top
}
const sizeClass = (f: Capacity): number =>
  (classOf(f.cpu + 1e-9, CPU_BASE, CPU_TOP) << 8) | (classOf(f.memoryBytes, MEM_BASE, MEM_TOP) << 4) | classOf(f.gpu, GPU_BASE, GPU_TOP)

// ---- posting lists with O(1) removal ---------------------------------------------------------------------------
interface Slot {
  entry: Entry
  list: Slot[]
  pos: number
  postings: Postings
  key: string | number
}

class Postings {
  readonly lists = new Map<string | number, Slot[]>()
  add(key: string | number, entry: Entry): Slot {
    let list = this.lists.get(key)
    if (!list) this.lists.set(key, (list = []))
    const s: Slot = { entry, list, pos: list.length, postings: this, key }
    list.push(s)
    return s
  }
  static remove(s: Slot): void {
    const last = s.list.pop()!
    if (last !== s) {
      s.list[s.pos] = last
      last.pos = s.pos
    }
    if (s.list.length === 0) s.postings.lists.delete(s.key)
  }
}

interface Bucket {
  runtime: RuntimeType
  arch: string
  region: string
  classes: Postings
}

interface Note {
  res: Capacity
  /** The node's heartbeat sequence when noted: a beat two further on was built after the reservation. */
  seq: number
  at: number
}

interface Entry {
  did: string
  seq: number
  at: number
  intervalMs: number
  receivedAt: number
  expiresAt: number
  reported: Capacity
  free: Capacity
  notes: Note[]
  facts: PlacementFacts | undefined
  sizeClass: number
  classSlots: Slot[]
  otherSlots: Slot[]
}

/** The hard constraints of one workload, compiled once for every query about it. */
interface CompiledQuery {
  runtime: RuntimeType
  arch: ReadonlySet<string> | undefined
  region: ReadonlySet<string> | undefined
  labelKeys: string[]
  allow: readonly string[] | undefined
  minCpu: number
  minMem: number
  minGpu: number
  fits(e: Entry): boolean
}

const labelKey = (k: string, v: string): string => `${k}\u0000${v}`
const EMPTY: Slot[] = []

function compile(w: Workload): CompiledQuery {
  const c = w.constraints
  const r: ResourceRequest = w.resources
  const lane: Lane = w.lane
  const runtime = w.runtime.type
  const arch = c.arch ? new Set<string>(c.arch) : undefined
  const region = c.region ? new Set(c.region) : undefined
  const labels = c.labels ? Object.entries(c.labels) : []
  const deny = c.owners?.deny ? new Set(c.owners.deny) : undefined
  const allowList = c.owners?.allow
  const allow = allowList ? new Set(allowList) : undefined
  const maxPrice = maxPriceOf(c)
  return {
    runtime, arch, region, labelKeys: labels.map(([k, v]) => labelKey(k, v)), allow: allowList,
    minCpu: minClassFor(r.cpu, CPU_BASE, CPU_TOP), minMem: minClassFor(r.memoryBytes, MEM_BASE, MEM_TOP), minGpu: minClassFor(r.gpu, GPU_BASE, GPU_TOP),
    fits(e: Entry): boolean {
      const f = e.facts
      if (!f) return false
      const free = e.free
      if (r.cpu > free.cpu + 1e-9 || r.memoryBytes > free.memoryBytes || r.gpu > free.gpu || r.vramBytes > free.vramBytes || r.diskBytes > free.diskBytes) return false
      if (!f.runtimes.includes(runtime)) return false
      if (arch && !arch.has(f.arch)) return false
      if (region && !region.has(f.region)) return false
      for (let i = 0; i < labels.length; i++) if (f.labels[labels[i]![0]] !== labels[i]![1]) return false
      if (deny?.has(f.owner)) return false
      if (allow && !allow.has(f.owner)) return false
      if (maxPrice !== undefined && f.price && quote(f.price, r, lane) > maxPrice) return false
      return true
    },
  }
}

const sameFacts = (a: PlacementFacts | undefined, b: PlacementFacts | undefined): boolean => {
  if (!a || !b) return a === b
  if (a.owner !== b.owner || a.arch !== b.arch || a.region !== b.region || a.runtimes.length !== b.runtimes.length) return false
  if (a.runtimes.some((r, i) => b.runtimes[i] !== r)) return false
  const ka = Object.keys(a.labels)
  return ka.length === Object.keys(b.labels).length && ka.every((k) => a.labels[k] === b.labels[k])
}

const capacityOf = (f: { cpu: number; memoryBytes: number; diskBytes: number; gpu: number; vramBytes?: number }): Capacity =>
  ({ cpu: f.cpu, memoryBytes: f.memoryBytes, gpu: f.gpu, vramBytes: f.vramBytes ?? 0, diskBytes: f.diskBytes })

export class CapacityIndex {
  readonly #entries = new Map<string, Entry>()
  readonly #buckets = new Map<string, Bucket>()
  readonly #byRuntime = new Map<RuntimeType, Bucket[]>()
  readonly #labels = new Postings()
  readonly #owners = new Postings()
  readonly #queries = new WeakMap<Workload, CompiledQuery>()
  readonly #missedBeats: number
  readonly #maxNodes: number
  readonly #now: () => number
  readonly #random: () => number
  #withoutFacts = 0
  #expired = 0

  constructor(o: CapacityIndexOptions = {}) {
    this.#missedBeats = o.missedBeats ?? 3
    this.#maxNodes = o.maxNodes ?? 250_000
    if (!(this.#missedBeats > 0) || !(this.#maxNodes > 0)) throw new RangeError('missedBeats and maxNodes must be > 0')
    this.#now = o.now ?? Date.now
    this.#random = o.random ?? Math.random
  }

  /** Nodes held (stale ones included until they are touched or pruned). */
  get size(): number {
    return this.#entries.size
  }

  /**
   * Takes one heartbeat body signed by `from` (throws InvalidHeartbeatError, and indexes nothing, when it is
   * malformed or names another node). An older beat than the one held changes nothing. Returns the node's
   * DID (use `get` for what the index now holds).
   */
  observe(from: string, body: unknown): string {
    const r = parseCapacityReport(body, from)
    const now = this.#now()
    const reported = capacityOf(r.capacity.free)
    const expiresAt = now + this.#missedBeats * r.intervalMs
    let e = this.#entries.get(r.node)
    if (e) {
      if (r.seq <= e.seq && r.at <= e.at) return e.did
      // A lower sequence with a later time: the daemon restarted; what was noted before is moot.
      const restarted = r.seq <= e.seq
      const keepFor = this.#missedBeats * r.intervalMs
      e.notes = restarted || e.notes.length === 0 ? [] : e.notes.filter((n) => r.seq < n.seq + 2 && now - n.at < keepFor)
      e.seq = r.seq
      e.at = r.at
      e.intervalMs = r.intervalMs
      e.receivedAt = now
      e.expiresAt = expiresAt
      e.reported = reported
      if (!sameFacts(e.facts, r.facts)) {
        this.#unindex(e)
        e.facts = r.facts
        this.#refreshFree(e)
        this.#index(e)
      } else {
        e.facts = r.facts // the price policy may have changed; it is not indexed
        this.#refreshFree(e)
      }
      return e.did
    }
    if (this.#entries.size >= this.#maxNodes && (this.prune(), this.#entries.size >= this.#maxNodes)) {
      throw new CapacityIndexFullError(`the capacity index holds its most nodes (${this.#maxNodes})`, { maxNodes: this.#maxNodes })
    }
    e = {
      did: r.node, seq: r.seq, at: r.at, intervalMs: r.intervalMs, receivedAt: now, expiresAt, reported, free: reported, notes: [],
      facts: r.facts, sizeClass: sizeClass(reported), classSlots: [], otherSlots: [],
    }
    this.#entries.set(e.did, e)
    this.#index(e)
    return e.did
  }

  /**
   * Takes `reserved` off what `did` has free, until the node's heartbeats show it (from the second beat after
   * this call, which was built after the reservation), so consecutive placements do not all pick a node whose
   * last beat still looks empty. Call it when a node holds a reservation (its contract countersigned), once per
   * replica. False when the node is not in the index.
   */
  note(did: string, reserved: ResourceRequest): boolean {
    const e = this.#fresh(did)
    if (!e) return false
    e.notes.push({ res: { cpu: reserved.cpu, memoryBytes: reserved.memoryBytes, gpu: reserved.gpu, vramBytes: reserved.vramBytes, diskBytes: reserved.diskBytes }, seq: e.seq, at: this.#now() })
    this.#refreshFree(e)
    return true
  }

  /** The node as the index sees it; undefined when unknown or silent too long. */
  get(did: string): IndexedNode | undefined {
    const e = this.#fresh(did)
    return e ? view(e) : undefined
  }

  has(did: string): boolean {
    return this.#fresh(did) !== undefined
  }

  /** Drops a node (e.g. its failure detector convicted it). */
  forget(did: string): boolean {
    const e = this.#entries.get(did)
    if (!e) return false
    this.#remove(e)
    return true
  }

  /** Removes every node silent for too long (a full pass: call it once an interval, not per placement). */
  prune(): number {
    const now = this.#now()
    let n = 0
    for (const e of this.#entries.values()) {
      if (e.expiresAt < now) {
        this.#remove(e)
        this.#expired++
        n++
      }
    }
    for (const [key, b] of this.#buckets) {
      if (b.classes.lists.size > 0) continue
      this.#buckets.delete(key)
      const list = this.#byRuntime.get(b.runtime)!
      list.splice(list.indexOf(b), 1)
    }
    return n
  }

  stats(): CapacityIndexStats {
    return { nodes: this.#entries.size, withoutFacts: this.#withoutFacts, buckets: this.#buckets.size, expired: this.#expired }
  }

  /**
   * Draws up to `want` distinct nodes at random among those that meet the workload's hard constraints (runtime,
   * arch, region, labels, owners, price ceiling by the node's price policy, and every resource), without
   * replacement, looking at no more than `budget` entries. Latency and trust are not judged here.
   */
  sample(q: SampleQuery): IndexSample {
    const want = Math.max(0, Math.floor(q.want))
    const budget = q.budget ?? Math.max(64, 8 * want)
    const cq = this.#compiled(q.workload)
    const pool = this.#pool(cq)
    const total = pool.total
    const dids: string[] = []
    if (want === 0 || total === 0) return { dids, touched: 0, pool: total, exhausted: total === 0 }
    const now = this.#now()
    const exclude = q.exclude
    const chosen = new Set<string>()
    const stale: Entry[] = []
    // Sparse Fisher-Yates over the pool's positions: a uniform draw without replacement, O(1) per draw.
    const moved = new Map<number, number>()
    const { segments, ends } = pool
    let i = 0
    for (; i < total && dids.length < want && i < budget; i++) {
      const j = i + Math.floor(this.#random() * (total - i))
      const at = moved.get(j) ?? j
      moved.set(j, moved.get(i) ?? i)
      let s = 0
      let hi = ends.length - 1
      while (s < hi) {
        const mid = (s + hi) >> 1
        if (ends[mid]! > at) hi = mid
        else s = mid + 1
      }
      const e = segments[s]![at - (s === 0 ? 0 : ends[s - 1]!)]!.entry
      if (e.expiresAt < now) {
        stale.push(e)
        continue
      }
      if (exclude?.has(e.did) || chosen.has(e.did) || !cq.fits(e)) continue
      chosen.add(e.did)
      dids.push(e.did)
    }
    for (const e of stale) {
      if (this.#entries.get(e.did) === e) {
        this.#remove(e)
        this.#expired++
      }
    }
    return { dids, touched: i, pool: total, exhausted: i === total }
  }

  // ---- internals ----------------------------------------------------------------------------------------------

  #compiled(w: Workload): CompiledQuery {
    let cq = this.#queries.get(w)
    if (!cq) this.#queries.set(w, (cq = compile(w)))
    return cq
  }

  /** The smallest pool that holds every candidate: the fitting class lists, or a label or owner posting list. */
  #pool(cq: CompiledQuery): { segments: Slot[][]; ends: number[]; total: number } {
    let segments: Slot[][] = []
    let total = 0
    for (const b of this.#byRuntime.get(cq.runtime) ?? []) {
      if ((cq.arch && !cq.arch.has(b.arch)) || (cq.region && !cq.region.has(b.region))) continue
      for (const [cls, list] of b.classes.lists) {
        if ((cls as number) >> 8 < cq.minCpu || (((cls as number) >> 4) & 15) < cq.minMem || ((cls as number) & 15) < cq.minGpu) continue
        segments.push(list)
        total += list.length
      }
    }
    for (const k of cq.labelKeys) {
      const list = this.#labels.lists.get(k) ?? EMPTY
      if (list.length < total) {
        segments = [list]
        total = list.length
      }
    }
    if (cq.allow) {
      const lists = cq.allow.map((o) => this.#owners.lists.get(o) ?? EMPTY)
      const n = lists.reduce((a, l) => a + l.length, 0)
      if (n < total) {
        segments = lists
        total = n
      }
    }
    const ends: number[] = []
    let acc = 0
    for (const s of segments) ends.push((acc += s.length))
    return { segments, ends, total }
  }

  #fresh(did: string): Entry | undefined {
    const e = this.#entries.get(did)
    if (!e || e.expiresAt >= this.#now()) return e
    this.#remove(e)
    this.#expired++
    return undefined
  }

  #refreshFree(e: Entry): void {
    if (e.notes.length === 0) e.free = e.reported
    else {
      const f = { ...e.reported }
      for (const n of e.notes) {
        f.cpu -= n.res.cpu
        f.memoryBytes -= n.res.memoryBytes
        f.gpu -= n.res.gpu
        f.vramBytes -= n.res.vramBytes
        f.diskBytes -= n.res.diskBytes
      }
      e.free = f
    }
    const cls = sizeClass(e.free)
    if (cls === e.sizeClass) return
    e.sizeClass = cls
    for (let i = 0; i < e.classSlots.length; i++) {
      const old = e.classSlots[i]!
      Postings.remove(old)
      e.classSlots[i] = old.postings.add(cls, e)
    }
  }

  #index(e: Entry): void {
    const f = e.facts
    if (!f) {
      this.#withoutFacts++
      return
    }
    e.sizeClass = sizeClass(e.free)
    for (const rt of f.runtimes) e.classSlots.push(this.#bucket(rt, f.arch, f.region).classes.add(e.sizeClass, e))
    for (const [k, v] of Object.entries(f.labels)) e.otherSlots.push(this.#labels.add(labelKey(k, v), e))
    e.otherSlots.push(this.#owners.add(f.owner, e))
  }

  #unindex(e: Entry): void {
    if (!e.facts) this.#withoutFacts--
    for (const s of e.classSlots) Postings.remove(s)
    for (const s of e.otherSlots) Postings.remove(s)
    e.classSlots = []
    e.otherSlots = []
  }

  #remove(e: Entry): void {
    this.#unindex(e)
    this.#entries.delete(e.did)
  }

  #bucket(runtime: RuntimeType, arch: string, region: string): Bucket {
    const key = `${runtime}\u0000${arch}\u0000${region}`
    let b = this.#buckets.get(key)
    if (!b) {
      b = { runtime, arch, region, classes: new Postings() }
      this.#buckets.set(key, b)
      let list = this.#byRuntime.get(runtime)
      if (!list) this.#byRuntime.set(runtime, (list = []))
      list.push(b)
    }
    return b
  }
}

function view(e: Entry): IndexedNode {
  return {
    did: e.did, facts: e.facts && { ...e.facts, labels: { ...e.facts.labels }, runtimes: [...e.facts.runtimes] }, reported: { ...e.reported }, free: { ...e.free }, notes: e.notes.length, seq: e.seq,
    receivedAt: e.receivedAt, expiresAt: e.expiresAt,
  }
}
