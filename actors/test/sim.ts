// An in-process market for unit tests of the orchestration logic: real Providers and Orchestrators (each
// with its market, contract and deployment actors on an ActorSystem of its own), real signatures and
// contracts, in-memory capacity, a scripted runner instead of executors, and a simulated network (asks go
// through a JSON round trip to the provider, whose facade asks its market actor; a node can be cut off).
// The must-show tests use real daemons.
import { SignatureWorker } from '../../identity/signature-worker.ts'
import { NodeKey } from '../../identity/keys.ts'
import { MemoryContractStore } from './memory-contract-store.ts'
import { MemoryCapacity } from '../provider/memory-capacity.ts'
import type { InstanceStatus, LogEntry, WorkloadRunner } from '../provider/ports.ts'
import { Provider } from '../provider/provider.ts'
import { defaultPricePolicy } from '../placement/price.ts'
import { Orchestrator, type OrchestratorOptions } from '../orchestrator/orchestrator.ts'
import { MarketBehavior } from '../orchestrator/protocol.ts'
import type { Capacity } from '../placement/offer.ts'
import type { Workload } from '../workload/workload.ts'
import type { CapacityPort } from '../provider/ports.ts'

const GiB = 2 ** 30

export class ScriptedRunner implements WorkloadRunner {
  readonly instances = new Map<string, { contractId: string; workload: Workload; state: InstanceStatus['state']; logs: LogEntry[] }>()
  readonly #listeners = new Set<(s: InstanceStatus) => void>()
  #n = 0
  readonly node: string
  /** When set, stop() rejects with it (an instance the node cannot stop). */
  failStop: Error | undefined
  constructor(node: string) {
    this.node = node
  }
  runtimes() {
    return ['container', 'wasm'] as ('container' | 'wasm')[]
  }
  async start(o: { contractId: string; workload: Workload }): Promise<{ instanceId: string }> {
    const instanceId = `${this.node.slice(-6)}-${++this.#n}`
    this.instances.set(instanceId, { contractId: o.contractId, workload: o.workload, state: 'running', logs: [{ ts: Date.now(), stream: 'stdout', line: `started on ${this.node}` }] })
    setImmediate(() => this.#emit({ instanceId, state: 'running', at: Date.now() }))
    if (o.workload.kind === 'job') {
      const code = Number(o.workload.env.EXIT_CODE ?? 0)
      setTimeout(() => this.exit(instanceId, code), Number(o.workload.env.RUN_MS ?? 20))
    }
    return { instanceId }
  }
  exit(instanceId: string, code: number): void {
    const i = this.instances.get(instanceId)
    if (!i || i.state !== 'running') return
    i.state = 'exited'
    this.#emit({ instanceId, state: 'exited', code, at: Date.now() })
  }
  async stop(instanceId: string): Promise<void> {
    if (this.failStop) throw this.failStop
    const i = this.instances.get(instanceId)
    if (i && i.state === 'running') i.state = 'stopped'
  }
  onStatus(l: (s: InstanceStatus) => void): () => void {
    this.#listeners.add(l)
    return () => this.#listeners.delete(l)
  }
  async logs(instanceId: string, o: { since: number; limit: number }) {
    const i = this.instances.get(instanceId)
    return { lines: (i?.logs ?? []).filter((l) => l.ts > o.since).slice(0, o.limit), ended: i?.state !== 'running' }
  }
  running(): number {
    return [...this.instances.values()].filter((i) => i.state === 'running').length
  }
  async liveInstances(): Promise<{ instanceId: string; contractId: string }[]> {
    return [...this.instances].filter(([, i]) => i.state === 'running').map(([instanceId, i]) => ({ instanceId, contractId: i.contractId }))
  }
  #emit(s: InstanceStatus): void {
    for (const l of this.#listeners) l(s)
  }
}

export class UnreachableError extends Error {
  override name = 'UnreachableError'
}

export interface SimNode {
  key: NodeKey
  did: string
  provider: Provider
  runner: ScriptedRunner
  capacity: CapacityPort
  contracts: MemoryContractStore
  orchestrator: Orchestrator
}

export class SimMarket {
  readonly nodes: SimNode[] = []
  readonly down = new Set<string>()
  /** Every ask the orchestrators made: behavior and time-out. */
  readonly asks: { from: string; to: string; behavior: string; timeoutMs: number }[] = []
  #beats: NodeJS.Timeout | undefined

  /** Each node's signature thread (the `signatures` option), stopped by close(). */
  readonly signatureWorkers: SignatureWorker<unknown>[] = []

  constructor(count: number, o: { share?: Partial<Capacity>; capacity?: (i: number, share: Capacity) => CapacityPort; orchestrator?: OrchestratorOptions; owners?: (i: number) => string; signatures?: boolean } = {}) {
    for (let i = 0; i < count; i++) {
      const key = NodeKey.generate()
      const runner = new ScriptedRunner(key.did)
      const share: Capacity = { cpu: 2, memoryBytes: 4 * GiB, gpu: 0, vramBytes: 0, diskBytes: 50 * GiB, ...(o.share ?? {}) }
      const capacity = o.capacity?.(i, share) ?? new MemoryCapacity(share)
      const contracts = new MemoryContractStore()
      const node: SimNode = { key, did: key.did, runner, capacity, contracts } as SimNode
      node.provider = new Provider({
        key, facts: { did: key.did, owner: o.owners?.(i) ?? key.did, arch: 'amd64', region: 'eu', labels: {} }, capacity, runner, contracts, price: defaultPricePolicy,
        report: (consumer, r) => {
          if (this.down.has(key.did)) return
          this.byDid(consumer)?.orchestrator.report(JSON.parse(JSON.stringify(r)), key.did)
        },
      })
      node.orchestrator = new Orchestrator({
        key,
        askMarket: (to, behavior, body, timeoutMs) => {
          this.asks.push({ from: key.did, to, behavior, timeoutMs })
          return this.ask(key.did, to, behavior, body)
        },
        publish: async () => {},
        candidates: () => this.nodes.map((n) => n.did).filter((d) => d !== key.did && !this.down.has(d)),
        latencyMs: () => 1,
        contracts, // one store per node, both sides (as on a daemon)
        ...(o.signatures ? { signatures: this.#signatureWorker() } : {}),
      }, { bidWindowMs: 300, heartbeatIntervalMs: 50, checkIntervalMs: 20, ...(o.orchestrator ?? {}) })
      void node.provider.start()
      node.orchestrator.start()
      this.nodes.push(node)
    }
    // Every live node beats every 50 ms to every orchestrator.
    this.#beats = setInterval(() => {
      for (const n of this.nodes) if (!this.down.has(n.did)) for (const m of this.nodes) if (!this.down.has(m.did)) m.orchestrator.heartbeat(n.did)
    }, 50)
  }

  #signatureWorker(): SignatureWorker<unknown> {
    const w = new SignatureWorker<unknown>({ onFailure: () => {} })
    this.signatureWorkers.push(w)
    return w
  }

  byDid(did: string): SimNode | undefined {
    return this.nodes.find((n) => n.did === did)
  }

  async ask(from: string, to: string, behavior: string, body: unknown): Promise<unknown> {
    if (this.down.has(to) || this.down.has(from)) throw new UnreachableError(`${to} unreachable`)
    const p = this.byDid(to)?.provider
    if (!p) throw new UnreachableError(`${to} unknown`)
    const b = JSON.parse(JSON.stringify(body)) as never
    let r: unknown
    switch (behavior) {
      case MarketBehavior.bid: r = await p.bid(b); break
      case MarketBehavior.propose: r = await p.propose(b, from); break
      case MarketBehavior.start: r = await p.startWork(b, from); break
      case MarketBehavior.stop: r = await p.stopWork(b, from); break
      case MarketBehavior.logs: r = await p.logs(b, from); break
      case MarketBehavior.fence: r = await p.fence(b, from); break
      case MarketBehavior.renew: r = await p.renew(b, from); break
      case MarketBehavior.contractsOfConsumer: r = await p.contractsOf(b, from); break
      default: throw new Error(`unknown behavior ${behavior}`)
    }
    return JSON.parse(JSON.stringify(r))
  }

  close(): void {
    clearInterval(this.#beats)
    for (const w of this.signatureWorkers) void w.stop()
    for (const n of this.nodes) {
      void n.orchestrator.stop()
      void n.provider.stop()
    }
  }
}

export async function until<T>(fn: () => T | undefined | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
