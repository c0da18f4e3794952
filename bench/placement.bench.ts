// Placement at scale (npm run bench -- placement; spec/orchestration.md, "Placement at scale"): placements per
// second and messages per placement at 1,000, 10,000 and 100,000 simulated nodes, in the same run:
//  - the baseline, today's broadcast round: every node evaluates the request and answers, then place.ts
//    scores every bid. Measured twice: unsigned (the model of bench/orchestration.bench.ts: each node checks
//    eligibility and quotes) and signed (each node verifies the signed request, reads the workload, evaluates
//    and signs a bid or a decline, and the orchestrator verifies every answer: Provider.bid's steps with the
//    real code of actors/bidding/messages.ts). The signed broadcast costs seconds per placement at 10,000
//    nodes and is not run at 100,000 (about ten times that per placement).
//  - the capacity index + sampling path: the index is fed with heartbeat bodies of the real shape at the
//    real rate (every node every 5 s, staggered), only the sampled nodes evaluate and answer (signed as
//    above, or unsigned), rounds widen by actors/placement/sample.ts `runRounds`, place.ts scores the
//    sample's bids, and each placement reserves on its nodes and notes it in the index (index.note).
//  - signed and sampled, five ways in the same run: every answer verified (the design before), the picks
//    verified inline (placeVerified), the picks verified on the signature thread with placements pipelined
//    one at a time (actors/placement/pipelined-place.ts), and a busy orchestrator's model: BATCH (--batch,
//    32) placements asked at a time, every pick verified on the signature thread, then the same with the two
//    threads balanced (SignatureWorker inlineShare: the share of the picks verified on the orchestrator's
//    thread that evens out the two threads' CPU per placement, computed from the run before it). Figures
//    with two threads are per CPU-second of the busier one, with each thread's CPU per placement.
//  Why batches: in a real mesh the nodes answer on their own machines while the orchestrator reads other
//  answers and the signature thread verifies the picks handed to it. Here the nodes are simulated on the
//  orchestrator's thread (about 1 ms of their work per placement against ~0.2 ms of the orchestrator's), so
//  one placement at a time starves the signature thread: it gets a pick or two every millisecond, runs dry
//  and pays a timed wait for each. In the batched model the orchestrator chooses and signs the requests of a
//  batch (sample.ts runRounds, each ask waiting), the simulated nodes answer all of them (their CPU time
//  measured on this thread's clock around their work and left out of the orchestrator's), then the
//  orchestrator reads the answers, places and hands the picks over; the signature thread verifies them while
//  the nodes work on the next batch. Same code, same work per placement; only the interleaving differs.
// Every path reserves what it places, as a contract would. Nothing ends during a run: in
// a live cluster work outlives many heartbeat intervals, while a run lasts a fraction of one, so work that
// ended within the run would be seen by nobody's index and would only measure the bench's time compression.
// Instead the cluster is filled from empty up to a quarter of its cpu (a third of the placements need the
// 30% of nodes with an ssd label, so those are then about full), then set back (untimed) and filled again.
// Messages per placement count bid requests delivered and their answers (bids and declines): a broadcast
// reaches every node and every node answers. "orchestrator only" leaves out the time the simulated nodes
// spend (answering, building heartbeats), which in a real mesh runs on their own machines.
// Time: this machine is shared, so each figure is given per CPU-second of the bench's thread
// (process.threadCpuUsage; GC helper threads not counted) and, for reference, per wall-clock second. A run
// lasts --ms of CPU time and heartbeats arrive at their rate per CPU-second (as on a core of its own). The
// nodes' share of a run is measured on the wall clock and taken off the CPU time in the same proportion
// (batched paths: on this thread's CPU clock around the nodes' work). The signature thread's key cache is
// warmed with every node's key before its runs (in chunks it takes whole: a warm-up handed over at once
// went mostly to this thread past inlineVerifyOver, leaving the thread to decode a key per verification).
// Every simulated node has its own Ed25519 key (100,000 of them take 5-25 s to make here; not timed).
// Options: --sizes 1000,10000 --ms 1500 --batch 32 --inline-share 0.2 (default: computed in the run) --only PATH
import { generateKeyPairSync } from 'node:crypto'
import { availableParallelism, loadavg } from 'node:os'
import { printSection, type Figure } from './report.ts'
import { NodeKey, verifyKeyForDid, sizePublicKeyCacheFor, verifyEd25519ForDid } from '../identity/keys.ts'
import { BID_TAG, fromB64u, signingBytes } from '../actors/contracts/signed.ts'
import { didFromPublicKey } from '../identity/did-key.ts'
import type { HeartbeatBody } from '../appliance/heartbeat/heartbeat.ts'
import { checkBid, checkDecline, signBid, signBidRequest, signDecline, verifyBid, verifyBidRequest, verifyBidSignature, verifyDecline, type BidBody, type SignedBid, type SignedBidRequest, type SignedDecline } from '../actors/bidding/messages.ts'
import { placeVerified, type VerifiedPlacement } from '../actors/placement/verified-place.ts'
import { PlacementPipeline } from '../actors/placement/pipelined-place.ts'
import { verifyBidOnWorker } from '../actors/bidding/bid-verifier.ts'
import { SignatureWorker } from '../identity/signature-worker.ts'
import { CapacityIndex } from '../actors/placement/capacity-index.ts'
import { runRounds } from '../actors/placement/sample.ts'
import { constraintFailures, subtract } from '../actors/placement/constraints.ts'
import { isEligible, place, type PlacementPick } from '../actors/placement/place.ts'
import { defaultPricePolicy, quote, type PricePolicy } from '../actors/placement/price.ts'
import type { Capacity, NodeOffer } from '../actors/placement/offer.ts'
import { validateWorkload, workloadFromWire, type Workload } from '../actors/workload/workload.ts'

const GiB = 2 ** 30
const HEARTBEAT_MS = 5000
const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const SIZES = (arg('sizes') ?? '1000,10000,100000').split(',').map(Number)
const RUN_MS = Number(arg('ms') ?? 1500)
const SIGNED_BROADCAST_MAX = 10_000
/** --only sample-signed: one path alone (for a profile: node --cpu-prof bench/placement.bench.ts --only sample-signed). */
const ONLY = arg('only')

const workloads: Workload[] = [
  validateWorkload({ apiVersion: 'noir/v1', kind: 'service', name: 'web', runtime: { type: 'container', image: 'x' }, resources: { cpu: 0.5, memory: '512Mi' }, service: { replicas: 3 } }),
  validateWorkload({ apiVersion: 'noir/v1', kind: 'service', name: 'db', lane: 'protected', runtime: { type: 'container', image: 'x' }, resources: { cpu: 1, memory: '2Gi' }, constraints: { labels: { ssd: 'yes' } } }),
  validateWorkload({ apiVersion: 'noir/v1', kind: 'job', name: 'batch', runtime: { type: 'wasm', module: 'm.wasm' }, resources: { cpu: 0.25, memory: '128Mi' }, constraints: { region: ['eu'], arch: ['amd64'] } }),
]
const slots = (w: Workload): number => (w.kind === 'service' ? w.service!.replicas : 1)

// ---- the simulated cluster -------------------------------------------------------------------------------------

interface SimNode {
  did: string
  seed: Uint8Array
  key: NodeKey | undefined
  price: PricePolicy
  /** What the node offers; `free` is its real free capacity (reservations taken off). */
  offer: NodeOffer
  share: Capacity
  seq: number
  bootAt: number
}

/** Seven owners' price policies, so quotes differ between nodes as they would. */
const policies: PricePolicy[] = Array.from({ length: 7 }, (_, k) => ({ ...defaultPricePolicy, cpuPerHour: 800_000 + k * 100_000, memoryGiBPerHour: 200_000 + k * 20_000 }))

function makeNodes(n: number, seed = 1): SimNode[] {
  let s = seed
  const rnd = (): number => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const regions = ['eu', 'us', 'asia']
  return Array.from({ length: n }, (_, i) => {
    const pair = generateKeyPairSync('ed25519', { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } })
    const did = didFromPublicKey(new Uint8Array(pair.publicKey.subarray(pair.publicKey.length - 32)))
    // Partly used already, so scores differ and some nodes are too full for the bigger workloads.
    const share: Capacity = { cpu: Math.round(rnd() * 16 * 4) / 4, memoryBytes: Math.round(rnd() * 64) * GiB, gpu: 0, vramBytes: 0, diskBytes: 500 * GiB }
    return {
      did, seed: new Uint8Array(pair.privateKey.subarray(pair.privateKey.length - 32)), key: undefined, price: policies[i % 7]!, share, seq: 0, bootAt: Date.now(),
      offer: {
        nodeDid: did, ownerDid: `did:key:owner${i % Math.max(1, Math.floor(n / 3))}`, arch: rnd() < 0.8 ? 'amd64' : 'arm64', region: regions[i % 3]!,
        labels: (rnd() < 0.3 ? { ssd: 'yes' } : {}) as Record<string, string>, runtimes: ['container', 'wasm'], free: { ...share }, pricePerHour: '0', latencyMs: 1 + rnd() * 80, trust: 0.5,
      },
    }
  })
}

/** A heartbeat body as appliance/heartbeat/heartbeat.ts builds it. */
function heartbeatBody(n: SimNode): HeartbeatBody {
  const f = n.offer.free
  const free = { cpu: f.cpu, memoryBytes: f.memoryBytes, diskBytes: f.diskBytes, gpu: f.gpu }
  const share = { cpu: n.share.cpu, memoryBytes: n.share.memoryBytes, diskBytes: n.share.diskBytes, gpu: n.share.gpu }
  const used = { cpu: share.cpu - free.cpu, memoryBytes: share.memoryBytes - free.memoryBytes, diskBytes: share.diskBytes - free.diskBytes, gpu: share.gpu - free.gpu }
  const o = n.offer
  return {
    v: 1, node: n.did, seq: ++n.seq, at: n.bootAt + n.seq * HEARTBEAT_MS, intervalMs: HEARTBEAT_MS,
    capacity: { share, used, free, ports: { range: [20000, 20999], used: 0, free: 1000 } },
    allocations: { total: 0, byState: {}, running: [] },
    load: { loadavg1: 0.5, cpuNanos: 0, memoryBytes: used.memoryBytes },
    facts: { owner: o.ownerDid, arch: o.arch, region: o.region, labels: o.labels, runtimes: o.runtimes, price: n.price },
  }
}

// ---- one run ---------------------------------------------------------------------------------------------------

/**
 * sample-signed-eager is the sampled path as it was before bids were verified when acted on: every answer
 * verified as it arrives, with identity/keys.ts's public-key cache at its default 4,096 entries (the baseline
 * of sample-signed, measured in the same run). sample-signed verifies only the bids picked (placeVerified), with
 * the key cache sized to the index (sizePublicKeyCacheFor), as the orchestrator now does.
 */
type Path = 'broadcast-unsigned' | 'broadcast-signed' | 'sample-unsigned' | 'sample-signed-eager' | 'sample-signed' | 'sample-signed-thread' | 'sample-signed-batch' | 'sample-signed-balanced'
/**
 * sample-signed-thread: as sample-signed, but the picks are verified on the signature thread
 * (identity/signature-worker.ts verifyDetached, its key cache sized to the nodes and warm) while this thread
 * goes on with the next placements (actors/placement/pipelined-place.ts), at most PIPELINE_DEPTH in flight;
 * a placement is committed only once its picks verified. When the thread is behind (INLINE_VERIFY_OVER picks
 * wait on it) this thread verifies the next pick itself. Its figure is bound by the busier of the two threads.
 */
const PIPELINE_DEPTH = 16
/** Past this many picks waiting on the signature thread, this thread verifies the next itself (SignatureWorker inlineVerifyOver). */
const INLINE_VERIFY_OVER = 16
/**
 * sample-signed-batch: a busy orchestrator, BATCH placements asked at a time. Its nodes are on other
 * machines, so while they answer one batch the orchestrator's thread reads another's answers, and the
 * signature thread verifies the picks handed to it meanwhile. Here the nodes are simulated on this thread,
 * so a batch goes: the orchestrator chooses the candidates and signs the bid request of each of BATCH
 * placements (runRounds, each ask waiting); the nodes answer them all (their CPU time measured apart on this
 * thread's clock and left out of the orchestrator's); the orchestrator reads the answers, places and hands
 * the picks to the signature thread (PlacementPipeline), which verifies them while the nodes work on the
 * next batch. At most BATCH_DEPTH placements in flight; past BATCH_INLINE_OVER picks waiting on the thread,
 * this thread verifies the next itself. The difference from sample-signed-thread is only the order the
 * simulated nodes' work and the orchestrator's are interleaved in: one placement at a time there, so the
 * signature thread runs dry between placements and pays a wait (and a cold cache) every couple of jobs.
 */
const BATCH = Number(arg('batch') ?? 32)
const BATCH_DEPTH = 2 * BATCH
const BATCH_INLINE_OVER = Number(arg('inline-over') ?? 4096)
/**
 * sample-signed-balanced: as sample-signed-batch, with a share of the picks verified on this thread
 * (SignatureWorker inlineShare) so that both threads do the same work per placement. The share is computed
 * from sample-signed-batch's per-thread CPU in the same run (all picks on the thread: T µs there, M here;
 * verifying a share s here moves about s x T: s = (T - M) / 2T), or given with --inline-share.
 */
const INLINE_SHARE = arg('inline-share')

interface Result {
  path: Path
  nodes: number
  placements: number
  /** Placements per CPU-second of the bench thread, and per wall-clock second. */
  perSec: number
  perWallSec: number
  /** Placements per CPU-second of the orchestrator's own work (the nodes' share left out). */
  orchestratorPerSec: number
  messagesPerPlacement: number
  /** Ed25519 verifications of answers (bids and declines) per placement, by the orchestrator. */
  verificationsPerPlacement: number
  widenedShare: number
  broadcastShare: number
  infeasibleShare: number
  heartbeatsPerSec: number
  nodeShare: number
  /** CPU µs per placement of each step (the orchestrator's, and the nodes'), split by their wall-clock shares. */
  stepsUs: Record<string, number>
  /** CPU µs per placement of this thread's own work (the nodes' share left out), of the signature thread, and of the process's other threads (GC helpers). */
  mainUs: number
  threadUs: number
  otherUs: number
  /** Of the picks verified, the share this thread verified itself (the signature thread behind). */
  verifiedHereShare: number
  /** Placements with a pick the node refused to reserve (taken by a placement committed first). */
  refusedShare: number
  /** Placements per CPU-second of the busier thread: what two cores of their own would sustain. */
  boundPerSec: number
}

const orchestratorKey = NodeKey.generate()
const cpuMs = (): number => {
  const u = process.threadCpuUsage()
  return (u.user + u.system) / 1000
}

class Run {
  readonly nodes: SimNode[]
  readonly byDid: Map<string, SimNode>
  /** The index's clock: the run's CPU time, as the heartbeats' (a loaded machine must not age nodes out). */
  clockMs = 0
  index = new CapacityIndex({ now: () => this.clockMs })
  /** Wall time spent being the nodes (answers, heartbeat bodies); making nodes' keys and resetting the cluster are setup, left out of everything. */
  nodeMs = 0
  setupMs = 0
  setupCpuMs = 0
  messages = 0
  verifications = 0
  /** Verify every answer as it arrives (the eager baseline), or keep each bid's signature for placeVerified. */
  readonly eager: boolean
  /** The signed bids of the placement under way, by node, for verification when picked. */
  readonly signedBids = new Map<string, SignedBid>()
  /** The same bids by the offer made of them (a pipelined placement's picks are verified after later rounds). */
  readonly bidOfOffer = new WeakMap<NodeOffer, SignedBid>()
  heartbeats = 0
  /** Wall time of the orchestrator's steps (the nodes' time is `nodeMs`). */
  readonly steps = { heartbeats: 0, choose: 0, signRequest: 0, verify: 0, place: 0, commit: 0 }
  /** Wall time inside ask(), nodes included (what runRounds spent outside the index). */
  askMs = 0
  /** Picks a node refused to reserve (the capacity went to a placement committed before it). */
  refusedReservations = 0
  /** Cpu reserved since the last reset, and the most before the next (a quarter of the cluster's). */
  reserved = 0
  readonly fillLimit: number

  constructor(nodes: SimNode[], byDid: Map<string, SimNode>, eager = true) {
    this.eager = eager
    this.nodes = nodes
    this.byDid = byDid
    this.fillLimit = nodes.reduce((a, n) => a + n.share.cpu, 0) / 4
    this.reset()
  }

  /** An empty cluster and an index fed with one heartbeat of every node (setup). */
  reset(): void {
    const t = performance.now()
    const c = cpuMs()
    this.index = new CapacityIndex({ now: () => this.clockMs })
    for (const n of this.nodes) {
      n.offer.free = { ...n.share }
      this.index.observe(n.did, heartbeatBody(n))
    }
    this.reserved = 0
    this.setupCpuMs += cpuMs() - c
    this.setupMs += performance.now() - t
  }

  keyOf(n: SimNode): NodeKey {
    if (!n.key) {
      const t = performance.now()
      const c = cpuMs()
      n.key = NodeKey.fromSeed(n.seed)
      this.setupCpuMs += cpuMs() - c
      this.setupMs += performance.now() - t
    }
    return n.key
  }

  /** One node's answer to a signed bid request (Provider.bid's steps). */
  answer(n: SimNode, key: NodeKey, signed: SignedBidRequest, now: number): { bid: SignedBid } | { decline: SignedDecline } {
    const req = verifyBidRequest(signed, now)
    if (req.exclude.includes(n.did)) return { decline: signDecline(key, req.id, ['excluded by the orchestrator'], now) }
    const w = workloadFromWire(req.workload)
    const o = n.offer
    o.pricePerHour = String(quote(n.price, w.resources, w.lane))
    const failures = constraintFailures(w, o).filter((x) => x.constraint !== 'maxLatencyMs' && x.constraint !== 'minTrust')
    if (failures.length > 0) return { decline: signDecline(key, req.id, failures, now) }
    return { bid: signBid(key, { requestId: req.id, deploymentId: req.deploymentId, owner: o.ownerDid, arch: o.arch, region: o.region, labels: o.labels, runtimes: o.runtimes, free: o.free, pricePerHour: o.pricePerHour, now }) }
  }

  /**
   * The batched model of a busy orchestrator (sample-signed-batch): the bid request is signed now and the
   * ask waits; `answerPending` later has the nodes answer every waiting ask (their work, timed apart on this
   * thread's CPU clock), then reads the answers (the orchestrator's work) and resolves each ask's offers.
   */
  askLater(targets: SimNode[], w: Workload, count: number): Promise<NodeOffer[]> {
    const now = Date.now()
    const t = performance.now()
    const req = signBidRequest(orchestratorKey, { deploymentId: 'bench', workload: w, count, ttlMs: 30_000, now })
    this.steps.signRequest += performance.now() - t
    return new Promise((resolve) => {
      this.#waiting.push({ targets, req, now, resolve })
      const arrived = this.#askArrived
      this.#askArrived = undefined
      arrived?.()
    })
  }

  readonly #waiting: { targets: SimNode[]; req: SignedBidRequest; now: number; resolve: (offers: NodeOffer[]) => void }[] = []
  #askArrived: (() => void) | undefined
  /** The nodes' CPU time (ms) in the batched model, measured on this thread's clock around their work. */
  nodeCpuMs = 0

  /** Resolves when an ask waits (at once if one does). */
  askArrived(): Promise<void> {
    if (this.#waiting.length > 0) return Promise.resolve()
    return new Promise((resolve) => (this.#askArrived = resolve))
  }

  /** The nodes answer every ask waiting (all of them first: their share of the run), then the orchestrator reads the answers. */
  answerPending(): void {
    const asks = this.#waiting.splice(0)
    if (asks.length === 0) return
    const t = performance.now()
    const c = cpuMs()
    const setup0 = this.setupMs
    const setupCpu0 = this.setupCpuMs
    const answers = asks.map((a) => a.targets.map((n) => this.answer(n, this.keyOf(n), a.req, a.now)))
    this.nodeCpuMs += cpuMs() - c - (this.setupCpuMs - setupCpu0)
    this.nodeMs += performance.now() - t - (this.setupMs - setup0)
    const t1 = performance.now()
    for (let i = 0; i < asks.length; i++) {
      const a = asks[i]!
      const offers: NodeOffer[] = []
      const got = answers[i]!
      for (let j = 0; j < got.length; j++) {
        const n = a.targets[j]!
        this.messages += 2
        const ans = got[j]!
        if ('bid' in ans) {
          const b = checkBid(ans.bid, { requestId: a.req.body.id, now: a.now })
          if (b.node !== n.did) throw new Error('bid relayed by another node')
          const offer: NodeOffer = { nodeDid: b.node, ownerDid: b.owner, arch: b.arch, region: b.region, labels: b.labels, runtimes: b.runtimes, free: b.free, pricePerHour: b.pricePerHour, latencyMs: n.offer.latencyMs, trust: 0.5 }
          this.bidOfOffer.set(offer, ans.bid)
          offers.push(offer)
        } else {
          checkDecline(ans.decline, n.did) // as the orchestrator: shape and sender (authenticated by the transport), no signature
        }
      }
      a.resolve(offers)
    }
    this.steps.verify += performance.now() - t1
  }

  /** Asks `targets`; returns the offers of those that bid (signed: every answer checked, and verified when eager). */
  ask(targets: Iterable<SimNode>, w: Workload, count: number, signed: boolean): NodeOffer[] {
    const t0 = performance.now()
    const setup0 = this.setupMs
    const offers = this.#ask(targets, w, count, signed)
    this.askMs += performance.now() - t0 - (this.setupMs - setup0)
    return offers
  }

  #ask(targets: Iterable<SimNode>, w: Workload, count: number, signed: boolean): NodeOffer[] {
    const offers: NodeOffer[] = []
    const now = Date.now()
    if (!signed) {
      const t = performance.now()
      const price = (n: SimNode): string => String(quote(n.price, w.resources, w.lane))
      for (const n of targets) {
        this.messages += 2
        if (!isEligible(w, n.offer)) continue
        n.offer.pricePerHour = price(n)
        offers.push(n.offer)
      }
      this.nodeMs += performance.now() - t // the unsigned model is all the nodes' work (as in orchestration.bench.ts)
      return offers
    }
    let t = performance.now()
    const req = signBidRequest(orchestratorKey, { deploymentId: 'bench', workload: w, count, ttlMs: 30_000, now })
    this.steps.signRequest += performance.now() - t
    for (const n of targets) {
      this.messages += 2
      const key = this.keyOf(n)
      t = performance.now()
      const a = this.answer(n, key, req, now)
      const t1 = performance.now()
      this.nodeMs += t1 - t
      if ('bid' in a) {
        let b: BidBody
        if (this.eager) {
          b = verifyBid(a.bid, { requestId: req.body.id, now })
          this.verifications++
        } else {
          b = checkBid(a.bid, { requestId: req.body.id, now })
          if (b.node !== n.did) throw new Error('bid relayed by another node')
          this.signedBids.set(b.node, a.bid)
        }
        const offer: NodeOffer = { nodeDid: b.node, ownerDid: b.owner, arch: b.arch, region: b.region, labels: b.labels, runtimes: b.runtimes, free: b.free, pricePerHour: b.pricePerHour, latencyMs: n.offer.latencyMs, trust: 0.5 }
        if (!this.eager) this.bidOfOffer.set(offer, a.bid)
        offers.push(offer)
      } else if (this.eager) {
        verifyDecline(a.decline) // the design before: every answer verified, declines too
        this.verifications++
      } else {
        checkDecline(a.decline, n.did) // as the orchestrator: shape and sender (authenticated by the transport), no signature
      }
      this.steps.verify += performance.now() - t1
    }
    return offers
  }

  /** What a countersigned contract does: the node reserves and the index notes it; a half-full cluster starts again. */
  commit(w: Workload, picks: PlacementPick[], useIndex: boolean): void {
    for (const p of picks) {
      const n = this.byDid.get(p.offer.nodeDid)!
      // the node reserves only what it still has: a placement scored while others were in flight (pipelined)
      // may pick capacity an earlier one took; the node refuses it, as a real one refuses the proposal
      if (!isEligible(w, { ...n.offer, pricePerHour: '0', latencyMs: 0, trust: 1 })) {
        this.refusedReservations++
        continue
      }
      n.offer.free = subtract(n.offer.free, w.resources)
      if (useIndex) this.index.note(n.did, w.resources)
      this.reserved += w.resources.cpu
    }
    if (this.reserved >= this.fillLimit) this.reset()
  }

  /** The heartbeats due by `elapsedMs` (of CPU time): every node once per interval, staggered. */
  beats(elapsedMs: number): void {
    this.clockMs = elapsedMs
    const due = Math.floor((elapsedMs / HEARTBEAT_MS) * this.nodes.length)
    if (this.heartbeats >= due) return
    // the nodes build their heartbeats (their work), then the orchestrator indexes them
    const t = performance.now()
    const c = cpuMs()
    const beats: [string, HeartbeatBody][] = []
    while (this.heartbeats < due) {
      const n = this.nodes[this.heartbeats++ % this.nodes.length]!
      beats.push([n.did, heartbeatBody(n)])
    }
    const t1 = performance.now()
    this.nodeCpuMs += cpuMs() - c
    this.nodeMs += t1 - t
    for (const [did, body] of beats) this.index.observe(did, body)
    this.steps.heartbeats += performance.now() - t1
  }
}

/** One signature thread per cluster, its key cache sized to the nodes and warmed with every node's key (untimed, as the main thread's). */
const threads = new Map<string, SignatureWorker<unknown>>()
async function threadFor(nodes: SimNode[], inlineVerifyOver: number, inlineShare = 0): Promise<SignatureWorker<unknown>> {
  const key = `${nodes.length}/${inlineVerifyOver}/${inlineShare}`
  let worker = threads.get(key)
  if (worker) return worker
  worker = new SignatureWorker<unknown>({ onFailure: () => {}, inlineVerifyOver, inlineShare, onThreadLost: (err) => console.log(`  (signature thread lost: ${err.message})`) })
  worker.sizeKeyCacheFor(nodes.length)
  worker.start()
  const zero = new Uint8Array(64)
  // in chunks the thread takes whole: past inlineVerifyOver waiting, verifyDetached verifies here instead
  // (before, all but the first 16 keys were warmed on this thread, so the thread decoded a key per verification)
  const chunk = Math.max(1, Math.min(inlineVerifyOver, 4096))
  for (let i = 0; i < nodes.length; i += chunk) {
    for (const n of nodes.slice(i, i + chunk)) worker.verifyDetached(n.did, zero, zero, 'warm-up', () => {})
    await worker.drained()
  }
  threads.set(key, worker)
  return worker
}

async function measure(path: Path, nodes: SimNode[], byDid: Map<string, SimNode>, ms: number, maxPlacements = Infinity, inlineShare = 0): Promise<Result> {
  const batched = path === 'sample-signed-batch' || path === 'sample-signed-balanced'
  const threaded = path === 'sample-signed-thread' || batched
  const worker = threaded ? await threadFor(nodes, batched ? BATCH_INLINE_OVER : INLINE_VERIFY_OVER, inlineShare) : undefined
  const lazy = path === 'sample-signed' || threaded
  // the key cache as each design has it (process-wide: set before every run of a path)
  sizePublicKeyCacheFor(lazy ? nodes.length : 0)
  // A long-running orchestrator's cache holds the keys of the nodes it has bid with: warm it (untimed), as a
  // run of a few seconds would otherwise measure the cold start of each key.
  if (lazy) for (const n of nodes) verifyKeyForDid(n.did)
  const run = new Run(nodes, byDid, !lazy)
  run.setupMs = run.setupCpuMs = 0 // the first fill of the index came before the clock started
  const signed = path.includes('-signed')
  const sampled = path.startsWith('sample')
  let placements = 0
  let widened = 0
  let broadcasts = 0
  let infeasible = 0
  // the pipelined path: placements handed out once their picks verified on the thread
  let completed = 0
  let waitMs = 0
  let commitMs = 0
  let handMs = 0
  /** Picks verified on this thread because the signature thread was behind (or gone). */
  let verifiedHere = 0
  const commitPlaced = (w: Workload, v: VerifiedPlacement): void => {
    const t1 = performance.now()
    const setup0 = run.setupMs
    const res = v.result
    if (res.ok) run.commit(w, res.standby ? [...res.picks, res.standby] : res.picks, sampled)
    else infeasible++
    completed++
    const spent = performance.now() - t1
    commitMs += spent
    run.steps.commit += spent - (run.setupMs - setup0)
  }
  const pipe = worker
    ? new PlacementPipeline<Workload>({
      verify: (offer, done) => {
        const v0 = performance.now()
        const c1 = commitMs
        const sb = run.bidOfOffer.get(offer)!
        run.verifications++
        if (verifyBidOnWorker(worker, sb.body, sb.sig, done, false) === 'checked') verifiedHere++
        // handing a job over collects the answers ready, which may commit placements: counted as commits
        handMs += performance.now() - v0 - (commitMs - c1)
      },
      onPlaced: commitPlaced,
    })
    : undefined
  const t0 = performance.now()
  const c0 = cpuMs()
  const p0 = process.cpuUsage()
  const thread0 = worker?.threadCpuMicros ?? 0
  // Runs and heartbeats follow the thread's CPU time, so a loaded machine slows the run, not the figures.
  let cpuElapsed = 0
  if (batched && pipe && worker) {
    // BATCH placements asked at a time: the nodes answer a batch while the signature thread verifies the last one's picks
    let started = 0
    const placeOne = async (w: Workload): Promise<void> => {
      const count = slots(w)
      const standby = w.lane === 'protected'
      const r = await runRounds<NodeOffer>({
        index: run.index, workload: w, count, standby,
        ask: (dids) => run.askLater(dids.map((d) => byDid.get(d)!), w, count),
        broadcast: (_plan, asked) => run.askLater(nodes.filter((n) => !asked.has(n.did)), w, count),
      })
      if (r.rounds.length > 1) widened++
      if (r.broadcast) broadcasts++
      const t = performance.now()
      const hand0 = handMs
      const commit0 = commitMs
      pipe.submit({ workload: w, count, offers: r.bids, standby }, w)
      run.steps.place += performance.now() - t - (handMs - hand0) - (commitMs - commit0)
      run.steps.verify += handMs - hand0
    }
    while (cpuElapsed < ms && started < maxPlacements) {
      run.beats(cpuElapsed)
      const batch: Promise<void>[] = []
      for (let k = 0; k < BATCH; k++) batch.push(placeOne(workloads[started++ % workloads.length]!))
      const all = Promise.all(batch).then(() => true as const)
      for (;;) {
        run.answerPending()
        if ((await Promise.race([all, run.askArrived()])) === true) break
      }
      // the batch's picks were handed over without waking the thread per pick: one wake-up for them all
      worker.flush()
      worker.poll()
      while (pipe.inFlight >= BATCH_DEPTH) {
        const tw = performance.now()
        const c1 = commitMs
        worker.awaitOutcomes(2)
        waitMs += performance.now() - tw - (commitMs - c1)
      }
      cpuElapsed = cpuMs() - c0 - run.setupCpuMs
    }
    placements = started // (counted again once the placements in flight are done, below)
  }
  // one placement at a time (batched: the loop above ran the whole run, so this one does not start)
  while (cpuElapsed < ms && placements < maxPlacements) {
    const w = workloads[placements % workloads.length]!
    const count = slots(w)
    const standby = w.lane === 'protected'
    let offers: NodeOffer[]
    if (sampled) {
      run.beats(cpuElapsed)
      const t = performance.now()
      const ask0 = run.askMs
      const setup0 = run.setupMs
      const r = await runRounds<NodeOffer>({
        index: run.index, workload: w, count, standby,
        ask: (dids) => run.ask(dids.map((d) => byDid.get(d)!), w, count, signed),
        broadcast: (_plan, asked) => run.ask(nodes.filter((n) => !asked.has(n.did)), w, count, signed),
      })
      offers = r.bids
      run.steps.choose += performance.now() - t - (run.askMs - ask0) - (run.setupMs - setup0)
      if (r.rounds.length > 1) widened++
      if (r.broadcast) broadcasts++
    } else offers = run.ask(nodes, w, count, signed)
    let t = performance.now()
    let res
    if (pipe && worker) {
      // place and hand the picks to the thread; collect what it finished; wait only when too much is in flight
      const hand0 = handMs
      const commit0 = commitMs
      const wait0 = waitMs
      pipe.submit({ workload: w, count, offers, standby }, w)
      run.signedBids.clear()
      worker.poll()
      while (pipe.inFlight >= PIPELINE_DEPTH) {
        const tw = performance.now()
        const c1 = commitMs
        worker.awaitOutcomes(2)
        waitMs += performance.now() - tw - (commitMs - c1)
      }
      const handed = handMs - hand0
      run.steps.verify += handed
      run.steps.place += performance.now() - t - handed - (commitMs - commit0) - (waitMs - wait0)
      placements++
      if (placements < 64 || (placements & 15) === 0) cpuElapsed = cpuMs() - c0 - run.setupCpuMs
      continue
    } else if (lazy) {
      // the picks' signatures, in the order of the choice (a bad one is dropped and the next best taken)
      let verifyMs = 0
      res = placeVerified({ workload: w, count, offers, standby }, (offer) => {
        const v0 = performance.now()
        const sb = run.signedBids.get(offer.nodeDid)!
        run.verifications++
        try {
          verifyBidSignature(sb.body, sb.sig)
        } finally {
          verifyMs += performance.now() - v0
        }
      }).result
      run.signedBids.clear()
      run.steps.verify += verifyMs
      t += verifyMs
    } else res = place({ workload: w, count, offers, standby })
    const t1 = performance.now()
    run.steps.place += t1 - t
    const setup0 = run.setupMs
    if (res.ok) run.commit(w, res.standby ? [...res.picks, res.standby] : res.picks, sampled)
    else infeasible++
    run.steps.commit += performance.now() - t1 - (run.setupMs - setup0)
    placements++
    if (placements < 64 || (placements & 15) === 0) cpuElapsed = cpuMs() - c0 - run.setupCpuMs
  }
  if (pipe && worker) {
    // the placements still in flight are finished inside the run (their time counts)
    while (pipe.inFlight > 0) {
      const tw = performance.now()
      const c1 = commitMs
      worker.awaitOutcomes(5)
      waitMs += performance.now() - tw - (commitMs - c1)
    }
    placements = completed
  }
  const elapsed = performance.now() - t0
  const cpuSeconds = (cpuMs() - c0 - run.setupCpuMs) / 1000
  const p1 = process.cpuUsage(p0)
  // the signature thread's own CPU (it publishes it as it works; it ran dry at the end of the drain above)
  const threadSeconds = worker ? ((worker.threadCpuMicros - thread0) | 0) / 1e6 : 0
  const otherSeconds = Math.max(0, (p1.user + p1.system) / 1e6 - (cpuMs() - c0) / 1000 - threadSeconds)
  const seconds = (elapsed - run.setupMs) / 1000
  // the nodes' share of this thread's busy time (time blocked waiting for the signature thread left out)
  const busySeconds = seconds - waitMs / 1000
  // batched: the nodes' CPU time is measured on this thread's clock around their work; otherwise their
  // share of the busy wall-clock time is taken off the CPU time
  const nodeShare = batched ? run.nodeCpuMs / 1000 / cpuSeconds : run.nodeMs / 1000 / busySeconds
  const mainSeconds = cpuSeconds * (1 - nodeShare)
  return {
    path, nodes: nodes.length, placements, perSec: placements / cpuSeconds, perWallSec: placements / seconds, orchestratorPerSec: placements / mainSeconds,
    mainUs: (1e6 * mainSeconds) / placements, threadUs: (1e6 * threadSeconds) / placements, otherUs: (1e6 * otherSeconds) / placements, boundPerSec: placements / Math.max(mainSeconds, threadSeconds), verifiedHereShare: run.verifications > 0 ? verifiedHere / run.verifications : 0, refusedShare: run.refusedReservations / placements,
    messagesPerPlacement: run.messages / placements, verificationsPerPlacement: run.verifications / placements, widenedShare: widened / placements, broadcastShare: broadcasts / placements,
    infeasibleShare: infeasible / placements, heartbeatsPerSec: run.heartbeats / cpuSeconds, nodeShare,
    // each step's wall share of the run, applied to the CPU time (a loaded machine stretches the wall clock)
    stepsUs: batched
      ? stepsOfBatch(run, placements, mainSeconds, busySeconds)
      : Object.fromEntries([...Object.entries(run.steps), ['nodes answering', run.nodeMs]].map(([k, v]) => [k, (((1000 * (v as number)) / placements) * cpuSeconds) / busySeconds])),
  }
}

/**
 * Batched: the orchestrator's CPU µs per placement by step, by their shares of its wall-clock time (the nodes'
 * time, measured on the CPU clock, apart). Choosing candidates runs interleaved with the other placements of
 * the batch, so it is what is left.
 */
function stepsOfBatch(run: Run, placements: number, mainSeconds: number, busySeconds: number): Record<string, number> {
  const orchestratorWallMs = 1000 * busySeconds - run.nodeMs
  const perUs = (v: number): number => ((1000 * v) / placements) * ((1000 * mainSeconds) / orchestratorWallMs)
  const steps: Record<string, number> = Object.fromEntries(Object.entries(run.steps).map(([k, v]) => [k, perUs(v)]))
  steps.choose = Math.max(0, (1e6 * mainSeconds) / placements - Object.values(steps).reduce((a, b) => a + b, 0))
  steps['nodes answering'] = (1000 * run.nodeCpuMs) / placements
  return steps
}

/**
 * The floor, in the same run: CPU µs of one Ed25519 verification of a signed bid (node:crypto, key cached),
 * in a bare loop on this thread over distinct nodes' bids. What a placement's 2.33 verifications cost at the
 * least on whichever thread does them; on this shared machine it moves with the load (82-115 µs seen).
 */
function bareVerify(nodes: SimNode[]): number {
  const n = Math.min(nodes.length, 2000)
  const now = Date.now()
  const bids = nodes.slice(0, n).map((x) => {
    const o = x.offer
    return signBid(NodeKey.fromSeed(x.seed), { requestId: 'calibration', deploymentId: 'bench', owner: o.ownerDid, arch: o.arch, region: o.region, labels: o.labels, runtimes: o.runtimes, free: o.free, pricePerHour: '1000000', now })
  })
  const jobs = bids.map((b) => ({ did: b.body.node, message: signingBytes(BID_TAG, b.body), sig: fromB64u(b.sig) }))
  sizePublicKeyCacheFor(nodes.length)
  for (const j of jobs) verifyKeyForDid(j.did)
  const c = cpuMs()
  for (const j of jobs) if (!verifyEd25519ForDid(j.did, j.message, j.sig)) throw new Error('calibration: a genuine bid does not verify')
  return (1000 * (cpuMs() - c)) / jobs.length
}
const bareVerifyUs = new Map<number, number>()

// ---- the runs --------------------------------------------------------------------------------------------------

const results: Result[] = []
/** The inline share of sample-signed-balanced, by cluster size. */
const shares = new Map<number, number>()
for (const size of SIZES) {
  const t = performance.now()
  const nodes = makeNodes(size)
  const byDid = new Map(nodes.map((n) => [n.did, n]))
  console.log(`  (${size.toLocaleString('en-US')} nodes and their keys made in ${Math.round(performance.now() - t)} ms)`)
  if (ONLY) {
    console.log(JSON.stringify(await measure(ONLY as Path, nodes, byDid, RUN_MS, Infinity, Number(INLINE_SHARE ?? 0))))
    continue
  }
  // Warm-up (JIT) on every path but the signed broadcast, which is too slow to repeat.
  await measure('sample-signed-eager', nodes, byDid, 200)
  await measure('sample-signed', nodes, byDid, 200)
  await measure('sample-signed-thread', nodes, byDid, 200)
  await measure('sample-signed-batch', nodes, byDid, 200)
  await measure('sample-unsigned', nodes, byDid, 200)
  await measure('broadcast-unsigned', nodes, byDid, 200, 20)
  results.push(await measure('broadcast-unsigned', nodes, byDid, RUN_MS))
  if (size <= SIGNED_BROADCAST_MAX) results.push(await measure('broadcast-signed', nodes, byDid, RUN_MS * 2, size >= 10_000 ? 2 : Infinity))
  results.push(await measure('sample-unsigned', nodes, byDid, RUN_MS))
  results.push(await measure('sample-signed-eager', nodes, byDid, RUN_MS))
  results.push(await measure('sample-signed', nodes, byDid, RUN_MS))
  results.push(await measure('sample-signed-thread', nodes, byDid, RUN_MS))
  bareVerifyUs.set(size, bareVerify(nodes))
  const allOnThread = await measure('sample-signed-batch', nodes, byDid, RUN_MS)
  results.push(allOnThread)
  const share = INLINE_SHARE !== undefined ? Number(INLINE_SHARE) : Math.min(0.9, Math.max(0, (allOnThread.threadUs - allOnThread.mainUs) / (2 * allOnThread.threadUs)))
  shares.set(size, share)
  await measure('sample-signed-balanced', nodes, byDid, 200, Infinity, share)
  results.push(await measure('sample-signed-balanced', nodes, byDid, RUN_MS, Infinity, share))
  for (const w of threads.values()) await w.stop()
  threads.clear()
}
if (ONLY) process.exit(0)

const get = (path: Path, n: number): Result | undefined => results.find((r) => r.path === path && r.nodes === n)
const fmtN = (n: number): string => n.toLocaleString('en-US')
const throughput: Figure[] = []
const orchestratorOnly: Figure[] = []
const wall: Figure[] = []
const byThread: Figure[] = []
const messages: Figure[] = []
const verifications: Figure[] = []
const rounds: Figure[] = []
for (const n of SIZES) {
  const bu = get('broadcast-unsigned', n)!
  const bs = get('broadcast-signed', n)
  const su = get('sample-unsigned', n)!
  const ss = get('sample-signed', n)!
  const se = get('sample-signed-eager', n)!
  const ts = get('sample-signed-thread', n)!
  const tb = get('sample-signed-batch', n)!
  const bb = get('sample-signed-balanced', n)!
  const share = `${(100 * (shares.get(n) ?? 0)).toFixed(0)}% of the picks verified here`
  const eagerBase = (v: (r: Result) => number) => ({ name: 'every answer verified, 4,096 keys cached', value: v(se) })
  const signedBase = (v: (r: Result) => number) => (bs ? { name: 'broadcast, signed', value: v(bs) } : undefined)
  throughput.push(
    { name: `${fmtN(n)} nodes: broadcast, unsigned bids`, value: bu.perSec, unit: 'place/s', better: 'higher' },
    ...(bs ? [{ name: `${fmtN(n)} nodes: broadcast, signed bids (${bs.placements} placed)`, value: bs.perSec, unit: 'place/s', better: 'higher' as const }] : []),
    { name: `${fmtN(n)} nodes: index + sample, unsigned bids`, value: su.perSec, unit: 'place/s', baseline: { name: 'broadcast, unsigned', value: bu.perSec }, better: 'higher' },
    { name: `${fmtN(n)} nodes: index + sample, signed bids, every answer verified`, value: se.perSec, unit: 'place/s', ...(bs ? { baseline: signedBase((r) => r.perSec)! } : {}), better: 'higher' },
    { name: `${fmtN(n)} nodes: index + sample, signed bids, verified when picked`, value: ss.perSec, unit: 'place/s', baseline: eagerBase((r) => r.perSec), better: 'higher' },
    { name: `${fmtN(n)} nodes: index + sample, signed bids, picks verified on the signature thread (this thread's CPU)`, value: ts.perSec, unit: 'place/s', baseline: { name: 'verified when picked, inline', value: ss.perSec }, better: 'higher' },
  )
  orchestratorOnly.push(
    ...(bs ? [{ name: `${fmtN(n)} nodes: broadcast, signed`, value: bs.orchestratorPerSec, unit: 'place/s', better: 'higher' as const }] : []),
    { name: `${fmtN(n)} nodes: index + sample, signed, every answer verified`, value: se.orchestratorPerSec, unit: 'place/s', ...(bs ? { baseline: signedBase((r) => r.orchestratorPerSec)! } : {}), better: 'higher' },
    { name: `${fmtN(n)} nodes: index + sample, signed, verified when picked`, value: ss.orchestratorPerSec, unit: 'place/s', baseline: eagerBase((r) => r.orchestratorPerSec), better: 'higher' },
    // two threads: the figure is bound by the busier one (per CPU-second of it), what two cores of their own sustain
    { name: `${fmtN(n)} nodes: index + sample, signed, picks verified on the signature thread, pipelined (busier thread)`, value: ts.boundPerSec, unit: 'place/s', baseline: { name: 'verified when picked, inline', value: ss.orchestratorPerSec }, better: 'higher' },
    { name: `${fmtN(n)} nodes: index + sample, signed, ${BATCH} placements asked at a time, every pick verified on the signature thread (busier thread)`, value: tb.boundPerSec, unit: 'place/s', baseline: { name: 'verified when picked, inline', value: ss.orchestratorPerSec }, better: 'higher' },
    { name: `${fmtN(n)} nodes: index + sample, signed, ${BATCH} placements asked at a time, the two threads balanced (${share}; busier thread)`, value: bb.boundPerSec, unit: 'place/s', baseline: { name: 'verified when picked, inline', value: ss.orchestratorPerSec }, better: 'higher', ...(n === 10_000 ? { target: '>= 5,000/s (Nomad C1M 3,750/s)' } : {}) },
    { name: `${fmtN(n)} nodes: the same, against one placement at a time on the signature thread (busier thread)`, value: bb.boundPerSec, unit: 'place/s', baseline: { name: 'pipelined one at a time', value: ts.boundPerSec }, better: 'higher' },
    // Unsigned, the orchestrator's work is the decision alone: what placement costs if the sampled nodes' binding
    // statement is their contract countersignature (made in both designs) rather than a bid.
    { name: `${fmtN(n)} nodes: index + sample, no bid signatures`, value: su.orchestratorPerSec, unit: 'place/s', baseline: { name: 'broadcast, unsigned', value: bu.orchestratorPerSec }, better: 'higher', ...(n === 10_000 ? { target: '>= 5,000/s' } : {}) },
  )
  wall.push(
    { name: `${fmtN(n)} nodes: index + sample, unsigned bids`, value: su.perWallSec, unit: 'place/s', baseline: { name: 'broadcast, unsigned', value: bu.perWallSec }, better: 'higher' },
    { name: `${fmtN(n)} nodes: index + sample, signed bids, verified when picked`, value: ss.perWallSec, unit: 'place/s', baseline: eagerBase((r) => r.perWallSec), better: 'higher' },
    { name: `${fmtN(n)} nodes: index + sample, signed bids, picks verified on the signature thread`, value: ts.perWallSec, unit: 'place/s', baseline: { name: 'verified when picked, inline', value: ss.perWallSec }, better: 'higher' },
    { name: `${fmtN(n)} nodes: index + sample, signed bids, ${BATCH} at a time, balanced`, value: bb.perWallSec, unit: 'place/s', baseline: { name: 'verified when picked, inline', value: ss.perWallSec }, better: 'higher' },
  )
  byThread.push(
    { name: `${fmtN(n)} nodes: this thread (orchestrator's own), picks verified on the signature thread`, value: ts.mainUs, unit: 'µs', baseline: { name: 'verified inline', value: ss.mainUs }, better: 'lower' },
    { name: `${fmtN(n)} nodes: the signature thread, picks verified on it (${(100 * (1 - ts.verifiedHereShare)).toFixed(0)}% of them; the rest here, the thread being behind)`, value: ts.threadUs, unit: 'µs', better: 'lower' },
    { name: `${fmtN(n)} nodes: GC helper threads, picks verified on the signature thread`, value: ts.otherUs, unit: 'µs', baseline: { name: 'verified inline', value: ss.otherUs }, better: 'lower' },
    { name: `${fmtN(n)} nodes: this thread (orchestrator's own), ${BATCH} placements at a time`, value: tb.mainUs, unit: 'µs', baseline: { name: 'one at a time', value: ts.mainUs }, better: 'lower' },
    { name: `${fmtN(n)} nodes: the signature thread, ${BATCH} at a time (${(100 * (1 - tb.verifiedHereShare)).toFixed(0)}% of the picks; ${(tb.threadUs / Math.max(1e-9, tb.verificationsPerPlacement * (1 - tb.verifiedHereShare))).toFixed(0)} µs per verification there)`, value: tb.threadUs, unit: 'µs', baseline: { name: `one at a time (${(ts.threadUs / Math.max(1e-9, ts.verificationsPerPlacement * (1 - ts.verifiedHereShare))).toFixed(0)} µs per verification)`, value: ts.threadUs }, better: 'lower' },
    { name: `${fmtN(n)} nodes: this thread (orchestrator's own), ${BATCH} at a time, balanced (${share})`, value: bb.mainUs, unit: 'µs', baseline: { name: 'one at a time', value: ts.mainUs }, better: 'lower' },
    { name: `${fmtN(n)} nodes: the signature thread, ${BATCH} at a time, balanced`, value: bb.threadUs, unit: 'µs', baseline: { name: 'one at a time', value: ts.threadUs }, better: 'lower' },
    { name: `${fmtN(n)} nodes: GC helper threads, ${BATCH} at a time, balanced`, value: bb.otherUs, unit: 'µs', baseline: { name: 'one at a time', value: ts.otherUs }, better: 'lower' },
  )
  messages.push({ name: `${fmtN(n)} nodes: index + sample`, value: ss.messagesPerPlacement, unit: 'msg', baseline: { name: 'broadcast', value: bu.messagesPerPlacement }, better: 'lower' })
  verifications.push({ name: `${fmtN(n)} nodes: index + sample, verified when picked`, value: ss.verificationsPerPlacement, unit: 'verif', baseline: { name: 'every answer', value: se.verificationsPerPlacement }, better: 'lower' })
  rounds.push(
    { name: `${fmtN(n)} nodes: placements needing a second round`, value: 100 * ss.widenedShare, unit: '%', better: 'lower' },
    { name: `${fmtN(n)} nodes: placements that fell back to broadcast`, value: 100 * ss.broadcastShare, unit: '%', better: 'lower' },
    { name: `${fmtN(n)} nodes: infeasible placements`, value: 100 * ss.infeasibleShare, unit: '%', baseline: { name: 'broadcast', value: 100 * bu.infeasibleShare }, better: 'lower' },
    { name: `${fmtN(n)} nodes: heartbeats indexed per CPU-second`, value: ss.heartbeatsPerSec, unit: 'beats/s', better: 'higher' },
    { name: `${fmtN(n)} nodes: the nodes' share of the run`, value: 100 * ss.nodeShare, unit: '%', better: 'lower' },
    { name: `${fmtN(n)} nodes: picks refused at reservation (capacity taken by a placement in flight), pipelined`, value: 100 * ts.refusedShare, unit: '%', baseline: { name: 'inline', value: 100 * ss.refusedShare }, better: 'lower' },
    { name: `${fmtN(n)} nodes: picks refused at reservation, ${BATCH} at a time, balanced`, value: 100 * bb.refusedShare, unit: '%', baseline: { name: 'inline', value: 100 * ss.refusedShare }, better: 'lower' },
  )
}
printSection('placements per CPU-second, in-process (the orchestrator and the nodes it asks on one thread)', throughput)
printSection("placements per CPU-second of the orchestrator's own work (the nodes' share left out)", orchestratorOnly)
printSection(`placements per wall-clock second (this machine is shared: load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores)`, wall)
printSection('CPU µs per signed sampled placement, by thread (the orchestrator\'s own work; the nodes\' share left out)', byThread)
printSection('the floor: one Ed25519 verification of a bid, bare loop on this thread, same run (CPU µs)', SIZES.map((n) => ({ name: `${fmtN(n)} nodes' keys`, value: bareVerifyUs.get(n) ?? 0, unit: 'µs', better: 'lower' as const })))
printSection('messages per placement (bid requests delivered + answers)', messages)
printSection("signature verifications per placement by the orchestrator (bids and declines)", verifications)
printSection('the sampled path, signed bids', rounds)
const stepNames: Record<string, string> = {
  heartbeats: 'heartbeats indexed (observe)', choose: 'candidates from the index', signRequest: 'bid request signed', verify: 'signatures verified, or handed to the thread (picks, declines)',
  place: 'place.ts scoring (threaded: and collecting answers)', commit: 'reservation noted', 'nodes answering': 'the nodes (verify, read, evaluate, sign)',
}
for (const n of SIZES) {
  for (const [r, how] of [[get('sample-signed', n)!, 'picks verified inline'], [get('sample-signed-thread', n)!, 'picks handed to the signature thread; its work not included'], [get('sample-signed-balanced', n)!, `${BATCH} at a time, balanced, the signature thread's work not included; the nodes' CPU measured apart`]] as const) {
    const total = Object.values(r.stepsUs).reduce((a, b) => a + b, 0)
    printSection(`where a signed sampled placement's time goes at ${fmtN(n)} nodes, ${how} (this thread's CPU µs per placement by wall-clock shares; ${Math.round(total)} in all)`,
      Object.entries(r.stepsUs).map(([k, v]) => ({ name: `${stepNames[k] ?? k} (${((100 * v) / total).toFixed(0)}%)`, value: v, unit: 'µs', better: 'lower' as const })))
  }
}
