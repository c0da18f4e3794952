// Five real daemons, each in its own network namespace (scripts/testing/netns.ts), for one schedule:
// node 0 orchestrates and names node 1 its standby orchestrator; nodes 1-4 provide (node 0 has too little
// cpu to host a replica). Each listens on its namespace's address at a fixed port, so a restarted node keeps
// its address; each runs with its schedule's clock offset (NOIR_CLOCK_OFFSET_MS). kill -9, restart, cut,
// partition and delay act on it; `destroy()` removes every process, container, namespace and rule it made.
import { NodeKey } from '../identity/keys.ts'
import { NetnsLab } from '../scripts/testing/netns.ts'
import { DaemonCluster, eventually, type DaemonHandle } from '../scripts/testing/daemons.ts'
import { removeNodeContainers } from '../cli/local-mesh.ts'
import { NODE_COUNT, ORCHESTRATOR, STANDBY } from './schedule.ts'

const PORT = 4001
// Short leases (spec/contracts.md "Leases"): what a fault orphans ends within 6 s, well inside the convergence
// bound; a degraded deployment tries again every 2 s.
const FAST = { beatMs: 200, bidWindowMs: 1_000, replaceRetryMs: 2_000, lease: { ms: 6_000, renewMs: 2_000 } }
const PROVIDER_SHARE = 'cpu=1,memory=1GiB,disk=2GiB,gpu=0'
/** Too little for a replica (0.2 cpu): the orchestrating node hosts nothing, so killing it kills no replica. */
const ORCHESTRATOR_SHARE = 'cpu=0.1,memory=1GiB,disk=2GiB,gpu=0'

export class ChaosCluster {
  readonly lab: NetnsLab
  readonly #daemons = new DaemonCluster()
  readonly #handles: Array<DaemonHandle | undefined> = []
  readonly #homes: string[] = []
  readonly #offsets: number[]
  readonly #dids: string[] = []
  #cuts: number[] = Array.from({ length: NODE_COUNT }, () => 0)
  #addrs: string[] = []
  /** How long the daemons took to start, and to connect to one another, ms. */
  startedMs = 0
  /** Starts on their way, by node. */
  readonly #launching = new Map<number, Promise<DaemonHandle>>()
  connectedMs = 0

  private constructor(lab: NetnsLab, offsets: number[]) {
    this.lab = lab
    this.#offsets = offsets
  }

  /** Makes the namespaces and starts the five daemons, connected, with their pubsub meshes formed. */
  static async start(clockOffsetsMs: number[]): Promise<ChaosCluster> {
    const cluster = new ChaosCluster(NetnsLab.create(NODE_COUNT), clockOffsetsMs)
    try {
      await cluster.#startAll()
    } catch (err) {
      await cluster.destroy()
      throw err
    }
    return cluster
  }

  get dids(): readonly string[] {
    return this.#dids
  }

  async #startAll(): Promise<void> {
    const keys = Array.from({ length: NODE_COUNT }, () => NodeKey.generate())
    for (let i = 0; i < NODE_COUNT; i++) {
      const orchestration =
        i === ORCHESTRATOR ? { ...FAST, standby: keys[STANDBY]!.did } : i === STANDBY ? { ...FAST, standbyFor: [keys[ORCHESTRATOR]!.did] } : FAST
      const config = { share: i === ORCHESTRATOR ? ORCHESTRATOR_SHARE : PROVIDER_SHARE, pingIntervalMs: 1_000, orchestration }
      const { home } = await this.#daemons.makeHome({ key: keys[i]!, config: config as never })
      this.#homes.push(home)
      this.#dids.push(keys[i]!.did)
    }
    // fixed ports and known keys: every node's address is known before it starts, so all bootstrap from all
    this.#addrs = keys.map((k, i) => `/ip4/${this.lab.node(i).ip}/tcp/${PORT}/p2p/${k.peerId.toString()}`)
    const t0 = Date.now()
    await Promise.all(keys.map((_, i) => this.#launch(i)))
    this.startedMs = Date.now() - t0
    for (let i = 0; i < NODE_COUNT; i++) {
      await eventually(async () => (await this.node(i).api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= NODE_COUNT - 1, 30_000, 200)
    }
    this.connectedMs = Date.now() - t0
    await new Promise((r) => setTimeout(r, 1_500)) // pubsub meshes
  }

  async #launch(i: number): Promise<DaemonHandle> {
    const bootstrap = this.#addrs.filter((_, j) => j !== i)
    const offset = this.#offsets[i] ?? 0
    const handle = await this.#daemons.start({
      home: this.#homes[i]!,
      prefix: this.lab.prefix(i),
      listen: [`/ip4/${this.lab.node(i).ip}/tcp/${PORT}`],
      bootstrap,
      apiViaSocket: true,
      readyTimeoutMs: 180_000, // a starved machine runs the enrolment benchmark slowly; not a fault
      ...(offset !== 0 ? { env: { NOIR_CLOCK_OFFSET_MS: String(offset) } } : {}),
    })
    this.#handles[i] = handle
    return handle
  }

  /** Node i's current daemon (the latest start); throws when it never started. */
  node(i: number): DaemonHandle {
    const h = this.#handles[i]
    if (!h) throw new Error(`node ${i} has not started`)
    return h
  }

  /** What node `i` printed (its current process; the killed one's output is kept by its handle). */
  logsOf(i: number): string {
    return this.#handles[i]?.logs() ?? ''
  }

  live(i: number): boolean {
    return this.#handles[i]?.running ?? false
  }

  /** kill -9. */
  async kill(i: number): Promise<void> {
    // a start on its way is let finish first: killed before it is up, it would come up after the kill
    await this.#launching.get(i)?.catch(() => undefined)
    await this.#handles[i]?.kill()
  }

  /**
   * Starts node i again from its home (a no-op if it runs), bootstrapping from every other node. Two restarts
   * of one node at once (two kills whose restarts overlap, or the heal) share one start: a second process on
   * the same home would find the store locked (DaemonAlreadyRunningError).
   */
  async restart(i: number): Promise<void> {
    const inFlight = this.#launching.get(i)
    if (inFlight) {
      await inFlight
      return
    }
    if (this.live(i)) return
    const p = this.#launch(i).finally(() => this.#launching.delete(i))
    this.#launching.set(i, p)
    await p
  }

  /** Cuts node i's link; nested cuts of one node are counted, the link returns with the last restore. */
  cut(i: number): void {
    if (this.#cuts[i]!++ === 0) this.lab.cut(i)
  }

  restore(i: number): void {
    if (this.#cuts[i]! > 0 && --this.#cuts[i]! === 0) this.lab.restore(i)
  }

  /** Lifts every network fault: links up, partitions healed, delays removed. */
  healNetwork(): void {
    for (let i = 0; i < NODE_COUNT; i++) {
      if (this.#cuts[i]! > 0) this.lab.restore(i)
      this.lab.undelay(i)
    }
    this.#cuts = this.#cuts.map(() => 0)
    this.lab.heal()
  }

  /** Kills every daemon, removes their containers and homes, then the namespaces. */
  async destroy(): Promise<void> {
    try {
      await this.#daemons.cleanup()
      await removeNodeContainers([...this.#dids])
    } finally {
      this.lab.destroy()
    }
  }
}
