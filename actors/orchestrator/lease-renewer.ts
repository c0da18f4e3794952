// The consumer side of leases (spec/contracts.md "Leases"): every renewal period the orchestrator renews
// the leases of all its live contracts, one signed ask per provider (`/noir/market/renew`
// `{ contracts: [id] }`, in batches of at most MAX_RENEWAL_BATCH ids), never one per contract. What to renew
// comes from the deployments (the contracts their snapshots name) and from the steps in flight (a contract
// countersigned a moment ago that no snapshot names yet). The answer says which contracts the provider no
// longer holds: the orchestrator repairs those slots.
import type { GoneContract, RenewAnswer } from '../provider/leases.ts'
import { MAX_RENEWAL_BATCH } from '../provider/leases.ts'
import { MarketBehavior, type MarketBehaviorPath } from './protocol.ts'

/** One contract to renew, and where. */
export interface LeaseTarget {
  contractId: string
  node: string
  deploymentId: string
}

export interface LeaseRenewerPorts {
  askMarket(did: string, behavior: MarketBehaviorPath, body: unknown, timeoutMs: number): Promise<unknown>
  /** The contracts the live deployments name now. */
  named(): LeaseTarget[]
  /** A contract the provider no longer holds live (it was told in a renewal's answer). */
  gone(t: LeaseTarget, g: GoneContract): void
  now(): number
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void
}

export interface LeaseTimings {
  /** The lease written in each contract (ms). */
  leaseMs: number
  /** How often leases are renewed (ms): a third of the lease, so two renewals may be lost before it runs out. */
  renewMs: number
}

/** How long a contract proposed by a step stays renewed after the step settled (its snapshot names it by then). */
const SETTLED_GRACE_MS = 5000

export class LeaseRenewer {
  readonly #p: LeaseRenewerPorts
  readonly #t: LeaseTimings
  /** Contracts countersigned by a step in flight, by id; `settledAt` once the step that made it settled. */
  readonly #proposed = new Map<string, { target: LeaseTarget; settledAt: number | null }>()
  /** Providers whose last renewal has not been answered yet (one ask per provider at a time). */
  readonly #pending = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  /** Figures for `GET /v1/status`. */
  readonly stats = { rounds: 0, renewed: 0, gone: 0, refused: 0, failed: 0 }

  constructor(ports: LeaseRenewerPorts, timings: LeaseTimings) {
    this.#p = ports
    this.#t = timings
  }

  get timings(): LeaseTimings {
    return this.#t
  }

  start(): void {
    this.#timer = setInterval(() => void this.renewAll(), this.#t.renewMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
  }

  /** A step countersigned this contract: renewed from now on, until its deployment's snapshot names it. */
  proposed(t: LeaseTarget): void {
    this.#proposed.set(t.contractId, { target: t, settledAt: null })
  }

  /** The step of `deploymentId` that proposed contracts settled. */
  settled(deploymentId: string): void {
    const now = this.#p.now()
    for (const e of this.#proposed.values()) if (e.target.deploymentId === deploymentId && e.settledAt === null) e.settledAt = now
  }

  /** Whether a step in flight (or one that just settled) countersigned this contract. */
  inFlight(contractId: string): boolean {
    return this.#proposed.has(contractId)
  }

  /** Every contract to renew now, grouped by provider. */
  targets(): Map<string, LeaseTarget[]> {
    const now = this.#p.now()
    for (const [id, e] of this.#proposed) if (e.settledAt !== null && now - e.settledAt > SETTLED_GRACE_MS) this.#proposed.delete(id)
    const byNode = new Map<string, Map<string, LeaseTarget>>()
    for (const t of [...this.#p.named(), ...[...this.#proposed.values()].map((e) => e.target)]) {
      let m = byNode.get(t.node)
      if (!m) byNode.set(t.node, (m = new Map()))
      m.set(t.contractId, t)
    }
    return new Map([...byNode].map(([node, m]) => [node, [...m.values()]]))
  }

  /** One renewal round: one ask per provider (a provider still answering the last round is skipped). */
  async renewAll(): Promise<void> {
    this.stats.rounds++
    await Promise.all([...this.targets()].map(([node, list]) => this.#renewOn(node, list)))
  }

  async #renewOn(node: string, list: LeaseTarget[]): Promise<void> {
    if (this.#pending.has(node)) return
    this.#pending.add(node)
    try {
      for (let i = 0; i < list.length; i += MAX_RENEWAL_BATCH) {
        const batch = list.slice(i, i + MAX_RENEWAL_BATCH)
        const byId = new Map(batch.map((t) => [t.contractId, t]))
        let a: RenewAnswer
        try {
          a = (await this.#p.askMarket(node, MarketBehavior.renew, { contracts: [...byId.keys()] }, this.#t.renewMs)) as RenewAnswer
        } catch (err) {
          // The next round tries again; the lease allows two lost rounds before it runs out.
          this.stats.failed++
          this.#p.log('warn', 'lease renewal not answered', { node, contracts: batch.length, error: (err as Error).name, message: (err as Error).message })
          return
        }
        this.stats.renewed += a?.renewed?.length ?? 0
        for (const g of a?.gone ?? []) {
          const t = byId.get(g?.contractId)
          if (!t) continue
          this.stats.gone++
          this.#proposed.delete(t.contractId)
          this.#p.gone(t, g)
        }
        for (const r of a?.refused ?? []) {
          this.stats.refused++
          this.#p.log('warn', 'lease renewal refused', { node, contractId: r?.contractId, error: r?.error?.name, message: r?.error?.message })
        }
      }
    } finally {
      this.#pending.delete(node)
    }
  }
}
