// The kill-at-each-step walk (issue 25, "Must show"): every step boundary of placement, failover and stop
// (spec/failpoints.md), one after another and not a random sample. For each boundary the node that passes it
// is started with that failpoint armed (NOIR_FAILPOINTS), the scenario runs until that node kills itself
// there (SIGKILL), the node is started again, and the invariants (invariants.ts) are checked once the
// deployment has settled, and again once it has been stopped and every provider has let go of it.
//
// Four real daemons on 127.0.0.1 with Docker: A orchestrates and hosts nothing (its share is too small for the
// workload); B, C and D provide, priced so that placement is predictable: B cheapest, then C, then D. A protected
// two-replica service therefore runs on B and C with its standby held on D, so a failpoint armed on B is passed
// by placement, and one armed on D by the standby's promotion. Leases are short (3 s, renewed every second), so
// whatever a crash orphans ends within the bound spec/contracts.md states.
import { removeNodeContainers } from '../cli/commands/demo.ts'
import { DaemonCluster, eventually, type DaemonHandle } from '../scripts/testing/daemons.ts'
import { FAILPOINTS_ENV } from '../core/failpoints.ts'
import type { DeploymentView } from '../actors/orchestrator/orchestrator.ts'
import { checkInvariants, type Violation } from './invariants.ts'
import { DoubleRunSampler, observeNode, runningContainers } from './observe.ts'
import type { AckedCreate, FaultWindow, Observation } from './observation.ts'

export type CrashPhase = 'placement' | 'failover' | 'stop'
/** Which node carries the failpoint: A (orchestrator), B (the first provider picked), D (the standby). */
export type CrashRole = 'orchestrator' | 'provider' | 'standby'

export interface CrashCase {
  point: string
  phase: CrashPhase
  role: CrashRole
}

const both = (area: string, step: string): string[] => [`${area}.${step}.before`, `${area}.${step}.after`]
const cases = (phase: CrashPhase, role: CrashRole, points: string[]): CrashCase[] => points.map((point) => ({ point, phase, role }))

/** Every step boundary of placement, failover and stop, with the node that passes it. */
export const CRASH_CASES: readonly CrashCase[] = [
  ...cases('placement', 'orchestrator', ['orchestrator.create.recorded', ...['bid-round', 'commit', 'reserve-standby', 'start'].flatMap((s) => both('orchestrator', s))]),
  ...cases('placement', 'provider', [...both('provider', 'reserve'), ...both('provider', 'start')]),
  ...cases('failover', 'orchestrator', both('orchestrator', 'repair')),
  ...cases('failover', 'standby', both('provider', 'start')),
  ...cases('stop', 'orchestrator', both('orchestrator', 'release')),
  ...cases('stop', 'provider', both('provider', 'stop')),
]

const IMAGE = 'noir/busybox:latest'
const LEASE = { ms: 3000, renewMs: 1000 }
/**
 * Heartbeats (capacity reports) every second rather than the default five: a restarted node is back in its
 * peers' capacity indexes, and they in its, within a second, which is what #connected waits for.
 */
const HEARTBEAT_MS = 1000
/**
 * The service's command. A shell that is PID 1 ignores SIGTERM unless it traps it, so without the trap every
 * stop waited out the whole stop grace (2 s) before its SIGKILL; `sleep & wait` lets the trap run at once.
 * It ends with 143, as SIGTERM's default action would (a failure to the restart policy, like the kill before).
 */
const COMMAND = ['sh', '-c', "trap 'exit 143' TERM; while true; do sleep 1 & wait $!; done"]

export interface CaseResult {
  point: string
  /** The node died at the failpoint (a case whose scenario never reached its point is a failure of the walk). */
  died: boolean
  /** The deployment's create was acknowledged before the crash (else it was retried with its key after it). */
  ackedBeforeCrash: boolean
  settledMs: number
  /** Invariants after the deployment settled, then after its stop. */
  violations: Violation[]
  /** How many containers of the deployment ran once it settled (2 expected). */
  running: number
  /** After the stop: containers and live provider contracts of the deployment left. */
  leftContainers: number
  leftContracts: number
  /** Where the case's time went, in order (ms): each restart's boot and mesh, the crash, the settling, the stop... */
  laps: string
}

type Node = 'A' | 'B' | 'C' | 'D'

export class CrashRig {
  readonly cluster = new DaemonCluster()
  readonly #nodes = new Map<Node, DaemonHandle>()
  readonly #homes = new Map<Node, string>()
  #seq = 0
  /**
   * A node down from its death to its restart is a fault like a cut link: copies it ran cannot be stopped
   * until it is back, then the fence or the lease ends them (the checker's heal grace, spec/chaos.md).
   */
  #faults: FaultWindow[] = []
  readonly #downSince = new Map<Node, number>()
  #laps: Array<[string, number]> = []
  #lapFrom = Date.now()

  /** Starts the four daemons, connected, with their pubsub meshes formed. */
  async start(): Promise<void> {
    // prices in whole µNLC per CPU-hour (1 NLC, then 0.01, 0.02 and 0.03 NLC)
    // No price floor, and cpu prices far apart: the quotes differ (with the default floor all three quoted the
    // floor, so which provider was picked first was left to latency, and a provider case could miss its point)
    const orchestration = (cpuPerHour: number) => ({ beatMs: 200, bidWindowMs: 1000, replaceRetryMs: 1000, lease: LEASE, price: { cpuPerHour, minimumPerHour: 0 } })
    const a = await this.cluster.start({ config: { share: 'cpu=0.1,memory=1GiB,disk=2GiB,gpu=0', heartbeatMs: HEARTBEAT_MS, orchestration: orchestration(1_000_000) } as never })
    this.#set('A', a)
    const [b, c, d] = await Promise.all([1_000_000, 3_000_000, 6_000_000].map((p) => this.cluster.start({ bootstrap: a.multiaddrs, config: { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', heartbeatMs: HEARTBEAT_MS, orchestration: orchestration(p) } as never })))
    this.#set('B', b!)
    this.#set('C', c!)
    this.#set('D', d!)
    await this.#connected(['A', 'B', 'C', 'D'])
  }

  async stop(): Promise<void> {
    const dids = this.cluster.daemons.map((d) => d.did)
    await this.cluster.cleanup()
    await removeNodeContainers(dids)
  }

  node(n: Node): DaemonHandle {
    return this.#nodes.get(n)!
  }

  #set(n: Node, d: DaemonHandle): void {
    this.#nodes.set(n, d)
    this.#homes.set(n, d.home)
  }

  /** kill -9 of `n` (if it runs), then started again from its home; armed with `failpoint` if given. */
  async restart(n: Node, failpoint?: string): Promise<DaemonHandle> {
    const old = this.#nodes.get(n)!
    const wasDown = !old.running
    const downFrom = this.#downSince.get(n) ?? Date.now()
    await old.kill()
    const a = this.#nodes.get('A')!
    const bootstrap = n === 'A' ? [...this.#nodes.values()].filter((x) => x !== old && x.running).flatMap((x) => x.multiaddrs).slice(0, 3) : a.multiaddrs
    const d = await this.cluster.start({ home: this.#homes.get(n)!, bootstrap, ...(failpoint ? { env: { [FAILPOINTS_ENV]: failpoint } } : {}) })
    this.#set(n, d)
    this.#lap(`boot ${n}`)
    if (wasDown) this.#faults.push({ kind: 'cut', nodes: [old.did], from: downFrom, to: Date.now() })
    this.#downSince.delete(n)
    await this.#connected([n])
    this.#lap(`mesh ${n}`)
    return d
  }

  /** Notes the time since the last lap under `label`. */
  #lap(label: string): void {
    const now = Date.now()
    this.#laps.push([label, now - this.#lapFrom])
    this.#lapFrom = now
  }

  /** How many of B, C and D run now (A waits for those; one the test killed is started again later). */
  #othersUp(): number {
    return (['B', 'C', 'D'] as const).filter((n) => this.#nodes.get(n)?.running).length
  }

  /**
   * A sees every node that runs, and `fresh` (just started) are in the pubsub meshes both ways: A's peers, A's
   * capacity index holds every other node that runs (placement samples it; a restarted A starts with an empty
   * one, and a convicted node is forgotten until its next heartbeat), A's failure detector holds none of them
   * lost, and each fresh node's own capacity index (empty at its start) holds every other node that runs: it
   * has heard their heartbeats, so each side has the other's subscriptions (beats, fences) and both directions
   * carry pubsub.
   */
  async #connected(fresh: readonly Node[]): Promise<void> {
    const a = this.#nodes.get('A')!
    try {
      await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= this.#othersUp(), 30_000, 100)
    } catch (err) {
      const peers = await a.api.get<{ peers: unknown[] }>('/v1/peers').then((p) => JSON.stringify(p.peers).slice(0, 600), (e: Error) => e.message)
      const said = [...this.#nodes.entries()].map(([n, d]) => `${n}: ${d.logs().split('\n').filter((l) => /violation|quarantin|refus/i.test(l)).slice(-3).join(' / ').slice(0, 800)}`)
      throw new Error(`A is not connected to the others that run: ${(err as Error).message}; A's peers ${peers}; ${said.join('; ')}`, { cause: err })
    }
    const indexed = async (d: DaemonHandle) =>
      (await d.api.get<{ services: { orchestration?: { capacityIndex?: { nodes: number } } } }>('/v1/status')).services.orchestration?.capacityIndex?.nodes ?? 0
    const up = () => [...this.#nodes.values()].filter((d) => d.running)
    let waitingFor = ''
    try {
      await eventually(async () => {
        if ((await indexed(a)) < this.#othersUp()) return (waitingFor = "A's capacity index"), false
        const lost = lostAt(a, up().filter((d) => d !== a).map((d) => d.did))
        if (lost.length > 0) return (waitingFor = `A's failure detector, which holds ${lost.map((x) => x.slice(-6)).join(', ')} lost`), false
        for (const n of fresh) {
          const d = this.#nodes.get(n)!
          if (d.running && (await indexed(d)) < up().length - 1) return (waitingFor = `${n}'s capacity index`), false
        }
        return true
      }, 30_000, 100)
    } catch (err) {
      throw new Error(`the meshes did not form: waiting for ${waitingFor} (${(err as Error).message})`, { cause: err })
    }
  }

  /**
   * The invariants, judged until they hold or `ms` passed (what a fault orphaned may take one lease to end:
   * spec/chaos.md "reservation-owned"); the last violations seen.
   */
  async #checkUntilClean(creates: AckedCreate[], sampler: DoubleRunSampler, ms: number): Promise<Violation[]> {
    const end = Date.now() + ms
    for (;;) {
      const v = checkInvariants(await this.observe(creates, sampler))
      if (v.length === 0 || Date.now() > end) return v
      await new Promise((r) => setTimeout(r, 250))
    }
  }

  /** A protected two-replica service, created with an idempotency key; undefined if the connection dropped. */
  async create(key: string): Promise<DeploymentView | undefined> {
    const workload = {
      apiVersion: 'noir/v1', kind: 'service', name: `crash-${++this.#seq}`, lane: 'protected',
      runtime: { type: 'container', image: IMAGE, command: COMMAND },
      resources: { cpu: 0.2, memory: '16Mi' }, service: { replicas: 2 },
    }
    try {
      return await this.node('A').api.post<DeploymentView>('/v1/deployments', { workload, idempotencyKey: key })
    } catch {
      return undefined
    }
  }

  /** The same create again (the CLI's retry after a dropped connection), once A answers. */
  async recreate(key: string, name: string): Promise<DeploymentView> {
    const workload = {
      apiVersion: 'noir/v1', kind: 'service', name, lane: 'protected',
      runtime: { type: 'container', image: IMAGE, command: COMMAND },
      resources: { cpu: 0.2, memory: '16Mi' }, service: { replicas: 2 },
    }
    return eventually(() => this.node('A').api.post<DeploymentView>('/v1/deployments', { workload, idempotencyKey: key }), 30_000, 100)
  }

  get nextName(): string {
    return `crash-${this.#seq + 1}`
  }

  view(id: string): Promise<DeploymentView> {
    return this.node('A').api.get<DeploymentView>(`/v1/deployments/${id}`)
  }

  /** Running with both replicas and its standby held, as seen by A. */
  async settled(id: string, timeoutMs = 60_000): Promise<DeploymentView> {
    let last: DeploymentView | undefined
    try {
      return await eventually(async () => {
        const v = (last = await this.view(id))
        return v.phase === 'running' && v.replicas.filter((r) => r.state === 'running').length === v.desired && v.standby !== null && v
      }, timeoutMs, 100)
    } catch (err) {
      const seen = last ? `${last.phase}; replicas ${JSON.stringify(last.replicas.map((r) => [r.slot, r.state, r.node?.slice(-6)]))}; standby ${last.standby?.node.slice(-6) ?? 'none'}; reason ${last.reason}; last events ${last.events.slice(-6).map((e) => e.msg).join(' | ')}` : 'never seen'
      const status = await this.node('A').api.get<{ services: { orchestration?: unknown } }>('/v1/status').then((x) => JSON.stringify(x.services.orchestration).slice(0, 1500), (e: Error) => e.message)
      const tree = await this.node('A').api.get<unknown>('/v1/node/actors').then((x) => JSON.stringify(x).match(/failure-detector[^}]*}/)?.[0] ?? '', (e: Error) => e.message)
      const heard = this.node('A').logs().split('\n').filter((l) => /node lost|node is back|node gone/.test(l)).slice(-8).map((l) => l.slice(0, 260)).join(' / ')
      const errs = (['B', 'C', 'D'] as const).map((n) => `${n} (${this.node(n).running ? 'up' : 'down'}): ${this.node(n).logs().split('\n').filter((l) => /"level":"(error|warn)"|Error|uncaught/i.test(l)).slice(-4).map((l) => l.slice(0, 300)).join(' / ')}`).join('; ')
      throw new Error(`deployment ${id} did not settle: ${seen} (${(err as Error).message}); providers said: ${errs}; A's orchestration: ${status}; detector: ${tree}; A heard: ${heard}; nodes B ${this.node('B').did.slice(-6)} C ${this.node('C').did.slice(-6)} D ${this.node('D').did.slice(-6)}`, { cause: err })
    }
  }

  /** Asks A to stop `id` until it answers (A may be restarting), then waits for `stopped`. */
  async stopDeployment(id: string, timeoutMs = 60_000): Promise<DeploymentView> {
    await eventually(() => this.node('A').api.post(`/v1/deployments/${id}/stop`).then(() => true), timeoutMs, 100)
    return eventually(async () => {
      const v = await this.view(id)
      return v.phase === 'stopped' && v
    }, timeoutMs, 100)
  }

  /** What the checker reads, now. */
  async observe(creates: AckedCreate[], sampler: DoubleRunSampler): Promise<Observation> {
    const order: Node[] = ['A', 'B', 'C', 'D']
    const nodes = await Promise.all(order.map((n, i) => {
      const d = this.#nodes.get(n)!
      return observeNode(i, { did: d.did, live: d.running, api: d.running ? d.api : null })
    }))
    const open = [...this.#downSince.entries()].filter(([n]) => !this.#nodes.get(n)!.running).map(([n, from]): FaultWindow => ({ kind: 'cut', nodes: [this.#nodes.get(n)!.did], from, to: Date.now() }))
    return { at: Date.now(), containers: await runningContainers(order.map((n) => this.#nodes.get(n)!.did)), nodes, creates, doubleRuns: sampler.runs, faultWindows: [...this.#faults, ...open] }
  }

  /** Containers of `id`'s slots still running, and provider contracts of it still live, on any node. */
  async leftOf(id: string): Promise<{ containers: number; contracts: number }> {
    const dids = [...this.#nodes.values()].map((d) => d.did)
    const containers = (await runningContainers(dids)).filter((c) => c.slot.startsWith(`${id}/`)).length
    let contracts = 0
    for (const d of this.#nodes.values()) {
      if (!d.running) continue
      const r = await d.api.get<{ contracts: { deploymentId: string; side: string; status: string }[] }>('/v1/contracts')
      contracts += r.contracts.filter((c) => c.deploymentId === id && c.side === 'provider' && ['reserved', 'standby', 'active'].includes(c.status)).length
    }
    return { containers, contracts }
  }

  #armedNode(role: CrashRole): Node {
    return role === 'orchestrator' ? 'A' : role === 'provider' ? 'B' : 'D'
  }

  /**
   * One boundary: arm its node, drive the phase until that node dies there, start it again, let the
   * deployment settle and check; stop it, let the providers let go, and check again.
   */
  async run(c: CrashCase): Promise<CaseResult> {
    const armed = this.#armedNode(c.role)
    this.#faults = []
    this.#downSince.clear()
    this.#laps = []
    this.#lapFrom = Date.now()
    const sampler = new DoubleRunSampler([...this.#nodes.values()].map((d) => d.did)).start(250)
    let key = `crash-${c.point}-${Date.now()}`
    let trialDied: { name: string; made: DeploymentView | undefined } | undefined
    const creates: AckedCreate[] = []
    let died = false
    let ackedBeforeCrash = false
    try {
      // every node up (a case that failed half-way may have left one down), then armed first, then the
      // deployment: the armed node passes its point during the phase under test
      for (const n of ['A', 'B', 'C', 'D'] as const) if (!this.node(n).running) await this.restart(n)
      const victim = await this.restart(armed, c.point)
      // Placement scores latency too, so the cheapest provider is not always picked first: a provider point
      // that a deployment placed without it did not reach gets a further deployment (at most three), each
      // stopped before the next; the invariants judge them all.
      if (c.phase === 'placement' && c.role === 'provider') {
        for (let attempt = 0; attempt < 2; attempt++) {
          const trialName = this.nextName
          const trial = await this.create(key)
          if (!trial || (await dies(victim, 8_000))) {
            // this deployment reached the point: it is the one the case follows
            trialDied = { name: trialName, made: trial }
            break
          }
          creates.push({ key, id: trial.id, via: 0, at: Date.now(), stopAckedAt: null, replayedId: null })
          await this.settled(trial.id)
          await this.stopDeployment(trial.id)
          this.#lap('trial')
          creates.at(-1)!.stopAckedAt = Date.now()
          key = `${key}-again`
        }
      }
      const name = trialDied?.name ?? this.nextName
      const made = trialDied ? trialDied.made : await this.create(key)
      ackedBeforeCrash = made !== undefined
      let id = made?.id
      if (c.phase !== 'placement' && victim.running) {
        if (id === undefined) throw new Error(`create ${key} not answered, yet ${c.point} is not a placement point`)
        // the armed node may pass its point while the deployment is placed (then that is the crash)
        const placed = this.settled(id)
        placed.catch(() => undefined) // the victim's death may end the race first
        await Promise.race([placed, victim.exited])
      }
      if (c.phase !== 'placement' && victim.running) {
        if (c.phase === 'failover') {
          this.#downSince.set('B', Date.now())
          await this.node('B').kill() // B hosts a replica: A fails it over to D
        }
        else await this.node('A').api.post(`/v1/deployments/${id}/stop`).catch(() => undefined)
      }
      died = await dies(victim)
      this.#lap('crash')
      this.#downSince.set(armed, Date.now())
      await this.restart(armed)
      if (c.phase === 'failover' && !this.node('B').running) await this.restart('B')
      // the CLI's retry with the same key: the same deployment, whether or not the first answer arrived
      const again = await this.recreate(key, name)
      this.#lap('retry')
      if (id !== undefined && again.id !== id) throw new Error(`create ${key} retried answered ${again.id}, not ${id}`)
      id = again.id
      creates.push({ key, id, via: 0, at: Date.now(), stopAckedAt: null, replayedId: again.id })
      const mine = creates.at(-1)!

      const t0 = Date.now()
      let settledMs = -1
      let running = 0
      const violations: Violation[] = []
      if (c.phase === 'stop') {
        await this.stopDeployment(id)
        this.#lap('stop')
        mine.stopAckedAt = Date.now()
      } else {
        const v = await this.settled(id)
        settledMs = Date.now() - t0
        this.#lap('settle')
        // judged once the invariants hold (a returned node's stale copy ends with the fence or its lease)
        violations.push(...(await this.#checkUntilClean(creates, sampler, LEASE.ms * 2)))
        this.#lap('check')
        // a stale copy a restarted node took up again runs beside its replacement until the fence or its lease
        // ends it (the invariants' bound): counted once that bound has had its time
        const count = async () => (await runningContainers([...this.#nodes.values()].map((d) => d.did))).filter((x) => x.slot.startsWith(`${id}/`)).length
        running = await eventually(async () => { const n = await count(); return n === 2 && n }, LEASE.ms * 2, 250).catch(count)
        this.#lap('count')
        await this.stopDeployment(v.id)
        this.#lap('stop')
        mine.stopAckedAt = Date.now()
      }
      // whatever a crash orphaned ends within its lease (3 s) and a renewal period
      const left = await eventually(async () => {
        const l = await this.leftOf(id!)
        return l.containers === 0 && l.contracts === 0 && l
      }, LEASE.ms * 4, 250).catch(() => this.leftOf(id!))
      this.#lap('release')
      violations.push(...(await this.#checkUntilClean(creates, sampler, LEASE.ms * 2)))
      this.#lap('check')
      return { point: c.point, died, ackedBeforeCrash, settledMs, violations, running, leftContainers: left.containers, leftContracts: left.contracts, laps: this.#laps.map(([l, ms]) => `${l} ${ms}`).join(', ') }
    } finally {
      sampler.stop()
    }
  }
}

/** Whether `d` dies by SIGKILL (its failpoint) within `ms`. */
async function dies(d: DaemonHandle, ms = 30_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const r = await Promise.race([d.exited, new Promise<null>((res) => (timer = setTimeout(() => res(null), ms)))])
  clearTimeout(timer)
  return r !== null && r.signal === 'SIGKILL' && /failpoint reached/.test(d.logs())
}

/** Which of `dids` `d`'s failure detector holds lost now: each was logged `node lost` more often than `node is back`. */
function lostAt(d: DaemonHandle, dids: readonly string[]): string[] {
  const count = new Map<string, number>()
  // only the detector's lines are parsed (the log of a node that ran a while is long, and this is polled)
  for (const line of d.logs().split('\n')) {
    if (!line.includes('"node lost"') && !line.includes('"node is back"')) continue
    let l: { msg?: unknown; node?: unknown }
    try {
      l = JSON.parse(line) as { msg?: unknown; node?: unknown }
    } catch {
      continue
    }
    const node = typeof l.node === 'string' ? l.node : undefined
    if (node === undefined || !dids.includes(node)) continue
    if (l.msg === 'node lost') count.set(node, (count.get(node) ?? 0) + 1)
    else if (l.msg === 'node is back') count.set(node, (count.get(node) ?? 0) - 1)
  }
  return dids.filter((x) => (count.get(x) ?? 0) > 0)
}
