// The node service that adds the services' metrics to the node's registry (when config.json `metrics` is set):
// allocations by state, executor starts, placements and failovers this node orchestrated, ledger transfers.
// Everything is read from the services at scrape time or counted from their status events; none of them
// imports the metrics library. Plugged in by one line in appliance/daemon/services.ts, after the services
// it reads.
import { Gauge, type Registry } from 'prom-client'
import type { JsonValue, NodeContext, NodeService } from '../daemon/service.ts'
import type { ApplianceParts } from '../node-services/appliance-parts.ts'
import type { Ledger } from '../../ledger/ledger.ts'
import type { Orchestrator } from '../../actors/orchestrator/orchestrator.ts'
import { finalStates, type AllocationState } from '../allocation/allocation-machine.ts'
import { countedByLabel, countedFrom } from './counted.ts'

const STATES: readonly AllocationState[] = ['pending', 'starting', 'running', 'backoff', 'stopping', 'stopped', 'exited', 'failed']

export interface MetricsServiceInit {
  appliance: () => ApplianceParts
  ledger: () => Ledger
  orchestrator: () => Orchestrator | undefined
}

export class MetricsService implements NodeService {
  readonly name = 'metrics'
  readonly #init: MetricsServiceInit
  #unsubscribe: (() => void) | undefined
  #url: string | undefined
  /** The allocations-by-state gauge, once started with metrics on. */
  allocations: Gauge | undefined

  constructor(init: MetricsServiceInit) {
    this.#init = init
  }

  start(ctx: NodeContext): void {
    const metrics = ctx.metrics
    if (!metrics) return
    this.#url = metrics.url
    const r: Registry = metrics.registry
    const parts = this.#init.appliance()
    this.allocations = new Gauge({
      name: 'noir_allocations', help: 'Allocations on this node by state', labelNames: ['state'], registers: [r],
      collect() {
        const by = parts.allocations.summary().byState
        for (const s of STATES) this.set({ state: s }, by[s] ?? 0)
      },
    })
    // an executor start: an allocation that reaches `running` with a start time it did not have before
    const starts = new Map<string, number>()
    const lastStart = new Map<string, number>()
    this.#unsubscribe = parts.allocations.onStatus((a) => {
      if (a.state === 'running' && a.startedAt !== null && lastStart.get(a.id) !== a.startedAt) {
        lastStart.set(a.id, a.startedAt)
        starts.set(a.kind, (starts.get(a.kind) ?? 0) + 1)
      }
      if (finalStates.includes(a.state)) lastStart.delete(a.id)
    })
    countedByLabel(r, 'noir_executor_starts_total', 'Workload instances started by an executor on this node, by executor kind', 'kind', () => starts)
    const ledger = this.#init.ledger
    const stats = (): { commits: number; transfers: number } => {
      try {
        return ledger().stats
      } catch {
        return { commits: 0, transfers: 0 }
      }
    }
    countedFrom(r, 'noir_ledger_transfers_total', 'Transfers committed to this node\'s ledger', () => stats().transfers)
    countedFrom(r, 'noir_ledger_commits_total', 'Commits (batches of entries) to this node\'s ledger', () => stats().commits)
    const activity = (): { placements: number; failovers: number } => this.#init.orchestrator()?.activity ?? { placements: 0, failovers: 0 }
    countedFrom(r, 'noir_placements_total', 'Contracts this node took for a deployment slot it orchestrates (first placements and placements again)', () => activity().placements)
    countedFrom(r, 'noir_failovers_total', 'Slots this node orchestrates that run again on another node after theirs was lost', () => activity().failovers)
  }

  stop(): void {
    this.#unsubscribe?.()
  }

  status(): JsonValue {
    return { scrape: this.#url ?? null }
  }
}
