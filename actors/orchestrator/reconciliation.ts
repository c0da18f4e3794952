// Reconciliation after a restart (spec/contracts.md "Reconciliation"): the orchestrator asks each provider it
// has dealt with (and the nodes it knows of) for the live contracts it acts for
// (`/noir/market/contracts-of-consumer`), and judges each one against its deployments: a contract its
// deployment names is adopted (its lease is renewed, its instance was re-attached by the provider), one a
// step in flight just made is left to that step, and any other (no deployment, a finished deployment, or the
// duplicate of a proposal re-run after the crash) is stopped at once instead of holding capacity until its
// lease runs out.
import type { ContractLeaseView } from '../provider/leases.ts'
import { MarketBehavior, type MarketBehaviorPath } from './protocol.ts'

/** What the orchestrator does with one contract a provider holds for it. */
export type Verdict = { do: 'adopt' } | { do: 'leave'; why: string } | { do: 'stop'; why: string }

export interface ReconcilePorts {
  askMarket(did: string, behavior: MarketBehaviorPath, body: unknown, timeoutMs: number): Promise<unknown>
  judge(c: ContractLeaseView): Verdict
  /** Stops the contract on its provider and marks this side's record ended. */
  stop(node: string, contractId: string, why: string): Promise<void>
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void
}

export interface ReconcileReport {
  /** Nodes asked, answered, and those that never answered within the attempts. */
  asked: number
  answered: number
  unreachable: string[]
  adopted: string[]
  stopped: { contractId: string; node: string; why: string }[]
  left: string[]
  /** Stops that failed (the lease ends those). */
  failed: { contractId: string; node: string; error: string }[]
  done: boolean
}

export interface ReconcileOptions {
  /** Tries per node (a restarted node reconnects to its peers over the first seconds). Default 10. */
  attempts?: number
  pauseMs?: number
  timeoutMs?: number
}

export function emptyReport(): ReconcileReport {
  return { asked: 0, answered: 0, unreachable: [], adopted: [], stopped: [], left: [], failed: [], done: false }
}

/** Asks every node in `nodes`, judges each answer, and fills `report` as it goes. */
export async function reconcile(nodes: readonly string[], p: ReconcilePorts, report: ReconcileReport, o: ReconcileOptions = {}): Promise<ReconcileReport> {
  const attempts = o.attempts ?? 10
  report.asked = nodes.length
  await Promise.all(nodes.map(async (node) => {
    for (let i = 0; i < attempts; i++) {
      let answer: { contracts?: ContractLeaseView[] }
      try {
        answer = (await p.askMarket(node, MarketBehavior.contractsOfConsumer, {}, o.timeoutMs ?? 5000)) as { contracts?: ContractLeaseView[] }
      } catch (err) {
        if (i === attempts - 1) {
          report.unreachable.push(node)
          p.log('warn', 'reconciliation: node not reachable; its contracts end with their leases', { node, error: (err as Error).name })
          return
        }
        await new Promise((r) => setTimeout(r, o.pauseMs ?? 2000).unref())
        continue
      }
      report.answered++
      for (const c of Array.isArray(answer?.contracts) ? answer.contracts : []) await settle(node, c, p, report)
      return
    }
  }))
  report.done = true
  const { adopted, stopped, left, failed, unreachable } = report
  p.log('info', 'reconciliation done', { adopted: adopted.length, stopped: stopped.length, left: left.length, failed: failed.length, unreachable: unreachable.length })
  return report
}

async function settle(node: string, c: ContractLeaseView, p: ReconcilePorts, report: ReconcileReport): Promise<void> {
  if (typeof c?.contractId !== 'string') return
  const v = p.judge(c)
  if (v.do === 'adopt') return void report.adopted.push(c.contractId)
  if (v.do === 'leave') return void report.left.push(c.contractId)
  try {
    await p.stop(node, c.contractId, v.why)
    report.stopped.push({ contractId: c.contractId, node, why: v.why })
    p.log('warn', 'reconciliation: contract stopped', { node, contractId: c.contractId, deployment: c.deploymentId, why: v.why })
  } catch (err) {
    report.failed.push({ contractId: c.contractId, node, error: `${(err as Error).name}: ${(err as Error).message}` })
  }
}
