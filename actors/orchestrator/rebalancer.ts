// Rebalancing (spec/migration.md "Rebalancing"): best-effort service replicas move when another node quotes
// clearly less for the same work. Every `everyMs` the orchestrator asks a sample of nodes (not the ones that
// run the deployment) for bids on each eligible replica; when the cheapest quote is at least `marginBps`
// below the replica's contract price, the replica is migrated there (`Orchestrator.migrate`, which bids again
// with that node only, verifies the signed bid and moves the state), with the reason in its history.
// Hysteresis: the margin (a move back needs the old node to undercut the new price by the margin again),
// a cool-down per deployment after any migration, one move per deployment per pass, and a rate limit on
// moves per hour across the node.
import type { DeploymentView, MigrationRecord } from '../deployment/model.ts'

export interface RebalancePolicy {
  /** How often replicas are priced against other nodes' quotes, ms. */
  everyMs: number
  /** How much cheaper (basis points of the current price) a quote must be to move for it. */
  marginBps: number
  /** No move of a deployment within this long after its last migration (any slot, any reason), ms. */
  cooldownMs: number
  /** At most this many rebalancing moves per rolling hour, across all deployments. */
  maxMovesPerHour: number
}

/** Once a minute; 20% cheaper; ten minutes between moves of one deployment; six moves an hour. */
export const DEFAULT_REBALANCE_POLICY: Readonly<RebalancePolicy> = { everyMs: 60_000, marginBps: 2_000, cooldownMs: 600_000, maxMovesPerHour: 6 }

export interface Quote {
  node: string
  /** µNLC per replica-hour. */
  pricePerHour: bigint
}

export interface RebalancerPorts {
  deployments(): DeploymentView[]
  /** Quotes for one more replica of the deployment's workload, from nodes other than `exclude`. */
  quotes(view: DeploymentView, exclude: string[]): Promise<Quote[]>
  migrate(id: string, replica: number, to: string, why: string): Promise<MigrationRecord>
  now(): number
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void
}

export interface RebalanceMove {
  deploymentId: string
  replica: number
  from: string
  to: string
  why: string
  ok: boolean
  error?: string
}

/** The replicas a pass may consider: running best-effort services, with a priced contract, no migration in flight, past the cool-down. */
export function rebalanceCandidates(views: DeploymentView[], now: number, policy: RebalancePolicy): { view: DeploymentView; replica: number; node: string; price: bigint }[] {
  const out: { view: DeploymentView; replica: number; node: string; price: bigint }[] = []
  for (const v of views) {
    if (v.phase !== 'running' || v.kind !== 'service' || v.lane !== 'best-effort') continue
    const migrations = v.migrations ?? []
    if (migrations.some((m) => m.doneAt === null)) continue
    const last = Math.max(0, ...migrations.map((m) => m.doneAt ?? m.requestedAt))
    if (last > 0 && now - last < policy.cooldownMs) continue
    // the first eligible replica only: one move per deployment per pass
    const r = v.replicas.find((x) => x.state === 'running' && x.node !== null && x.pricePerHour !== null && /^\d+$/.test(x.pricePerHour))
    if (r) out.push({ view: v, replica: r.index, node: r.node!, price: BigInt(r.pricePerHour!) })
  }
  return out.sort((a, b) => (a.view.id < b.view.id ? -1 : a.view.id > b.view.id ? 1 : 0))
}

/** The cheapest quote when it is at least `marginBps` below `current`; undefined otherwise. */
export function clearlyCheaper(current: bigint, quotes: Quote[], marginBps: number): Quote | undefined {
  const best = [...quotes].sort((a, b) => (a.pricePerHour < b.pricePerHour ? -1 : a.pricePerHour > b.pricePerHour ? 1 : a.node < b.node ? -1 : 1))[0]
  if (!best) return undefined
  return best.pricePerHour * 10_000n <= current * BigInt(10_000 - marginBps) ? best : undefined
}

export class Rebalancer {
  readonly #p: RebalancerPorts
  readonly #policy: RebalancePolicy
  /** When each move of the last hour was made (the rate limit). */
  readonly #moves: number[] = []
  #timer: NodeJS.Timeout | undefined
  #running = false

  constructor(ports: RebalancerPorts, policy: Partial<RebalancePolicy> = {}) {
    this.#p = ports
    this.#policy = { ...DEFAULT_REBALANCE_POLICY, ...policy }
  }

  get policy(): Readonly<RebalancePolicy> {
    return this.#policy
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.pass(), this.#policy.everyMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** One pass: prices each candidate and moves what is clearly cheaper elsewhere, within the rate limit. */
  async pass(): Promise<RebalanceMove[]> {
    if (this.#running) return []
    this.#running = true
    const done: RebalanceMove[] = []
    try {
      const now = this.#p.now()
      while (this.#moves.length > 0 && now - this.#moves[0]! >= 3_600_000) this.#moves.shift()
      for (const c of rebalanceCandidates(this.#p.deployments(), now, this.#policy)) {
        if (this.#moves.length >= this.#policy.maxMovesPerHour) break
        const busy = c.view.replicas.map((r) => r.node).filter((n): n is string => n !== null)
        let quotes: Quote[]
        try {
          quotes = await this.#p.quotes(c.view, busy)
        } catch (err) {
          this.#p.log('warn', 'rebalancing: no quotes', { deploymentId: c.view.id, error: (err as Error).message })
          continue
        }
        const best = clearlyCheaper(c.price, quotes, this.#policy.marginBps)
        if (!best) continue
        const pct = Number(((c.price - best.pricePerHour) * 10_000n) / c.price) / 100
        const why = `rebalanced: ${best.node} quotes ${best.pricePerHour} µNLC/h, ${pct}% below the ${c.price} of ${c.node} (margin ${this.#policy.marginBps / 100}%)`
        this.#moves.push(this.#p.now())
        try {
          const m = await this.#p.migrate(c.view.id, c.replica, best.node, why)
          done.push({ deploymentId: c.view.id, replica: c.replica, from: c.node, to: m.to ?? best.node, why, ok: m.ok === true })
          this.#p.log('info', 'rebalanced', { deploymentId: c.view.id, replica: c.replica, from: c.node, to: best.node, price: String(c.price), quote: String(best.pricePerHour) })
        } catch (err) {
          done.push({ deploymentId: c.view.id, replica: c.replica, from: c.node, to: best.node, why, ok: false, error: `${(err as Error).name}: ${(err as Error).message}` })
          this.#p.log('warn', 'rebalancing move failed', { deploymentId: c.view.id, to: best.node, error: (err as Error).message })
        }
      }
    } finally {
      this.#running = false
    }
    return done
  }
}

/** config.json `orchestration.rebalance`: an object of whole numbers (marginBps 1-9999), or undefined when absent; throws with the field named. */
export function rebalancePolicyFrom(v: unknown): Partial<RebalancePolicy> | undefined {
  if (v === undefined || v === false) return undefined
  if (v === true) return {}
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError("'rebalance' is true, or an object { everyMs, marginBps, cooldownMs, maxMovesPerHour }")
  const out: Partial<RebalancePolicy> = {}
  const bounds: Record<keyof RebalancePolicy, [number, number]> = { everyMs: [1000, 86_400_000], marginBps: [1, 9_999], cooldownMs: [0, 604_800_000], maxMovesPerHour: [1, 3600] }
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!(k in bounds)) throw new TypeError(`'rebalance.${k}' is not a field (${Object.keys(bounds).join(', ')})`)
    const [lo, hi] = bounds[k as keyof RebalancePolicy]
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < lo || x > hi) throw new TypeError(`'rebalance.${k}' must be a whole number from ${lo} to ${hi}`)
    out[k as keyof RebalancePolicy] = x
  }
  return out
}
