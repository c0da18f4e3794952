// Orchestrator continuity beyond one node (spec/orchestration.md "Standby orchestrator"): an orchestrating
// node names a standby (another node its owner controls) and issues it a capability (`/noir/orchestrate`).
//   StandbyReplicator  on the orchestrating node: sends each deployment's latest snapshot to the standby
//                      (coalesced per deployment, in order, retried until it lands)
//   StandbyReplicas    on the standby: keeps what it received from the nodes it stands by for (and only
//                      those: deny by default), so it can take their deployments over when one is lost
import { CapabilityVerifier, issueCapability } from '../../identity/capabilities.ts'
import type { NodeKey } from '../../identity/keys.ts'
import { finalPhases, type DeploymentContext } from '../deployment/model.ts'
import { phaseOfSnapshot } from '../deployment/machine.ts'
import { InvalidTermsError, NotStandbyError } from '../errors.ts'
import { checkName } from '../../core/index.ts'
import { ORCHESTRATE_ABILITY } from '../provider/orchestrator-authority.ts'
import type { DeploymentRecord } from './checkpoints.ts'

/** How long the capability an orchestrating node gives its standby lasts. Renewed at every start. */
export const STANDBY_TOKEN_TTL_MS = 30 * 24 * 3600_000

export interface ReplicaBody {
  record: DeploymentRecord
  /** The capability chain: issued by the sender to this node, ability /noir/orchestrate. */
  token: string
}

export interface StandbyReplicaStore {
  save(from: string, body: ReplicaBody): Promise<void>
  loadAll(): Promise<{ from: string; body: ReplicaBody }[]>
}

export class StandbyReplicator {
  readonly #standby: string
  readonly #send: (body: ReplicaBody) => Promise<unknown>
  readonly #warn: (msg: string, fields?: Record<string, unknown>) => void
  readonly #pending = new Map<string, DeploymentRecord>()
  /** The deployment whose snapshot is on its way, and who waits for a deployment to be replicated. */
  #inFlight: string | undefined
  readonly #waiters = new Map<string, Array<(ok: boolean) => void>>()
  #token: string | undefined
  #busy = false
  #retry: NodeJS.Timeout | undefined
  #stopped = false
  /** Snapshots the standby confirmed. */
  sent = 0

  constructor(o: { standby: string; send: (body: ReplicaBody) => Promise<unknown>; warn: (msg: string, fields?: Record<string, unknown>) => void }) {
    this.#standby = o.standby
    this.#send = o.send
    this.#warn = o.warn
  }

  get standby(): string {
    return this.#standby
  }

  /** Issues the capability the standby presents to providers when it takes over. */
  async start(key: NodeKey, now = Date.now()): Promise<void> {
    this.#token = await issueCapability(key, { audience: this.#standby, abilities: [{ can: ORCHESTRATE_ABILITY }], ttlMs: STANDBY_TOKEN_TTL_MS, now })
    this.#flush()
  }

  stop(): void {
    this.#stopped = true
    if (this.#retry) clearTimeout(this.#retry)
  }

  put(record: DeploymentRecord): void {
    this.#pending.set(record.id, record)
    this.#flush()
  }

  get backlog(): number {
    return this.#pending.size
  }

  /**
   * Resolves true once the standby confirmed the latest snapshot of `id` handed to `put`, or false after
   * `timeoutMs` (the standby is down or unreachable: the caller goes on, the snapshot keeps being retried).
   */
  replicated(id: string, timeoutMs: number): Promise<boolean> {
    if (!this.#pending.has(id) && this.#inFlight !== id) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs)
      const done = (ok: boolean): void => {
        clearTimeout(timer)
        const list = this.#waiters.get(id)
        if (list) {
          const rest = list.filter((w) => w !== done)
          if (rest.length > 0) this.#waiters.set(id, rest)
          else this.#waiters.delete(id)
        }
        resolve(ok)
      }
      this.#waiters.set(id, [...(this.#waiters.get(id) ?? []), done])
    })
  }

  #flush(): void {
    if (this.#busy || this.#stopped || this.#retry || !this.#token || this.#pending.size === 0) return
    this.#busy = true
    void (async () => {
      try {
        while (this.#pending.size > 0 && !this.#stopped) {
          const [id, record] = this.#pending.entries().next().value!
          this.#pending.delete(id)
          this.#inFlight = id
          try {
            await this.#send({ record, token: this.#token! })
            this.sent++
            this.#inFlight = undefined
            if (!this.#pending.has(id)) for (const w of [...(this.#waiters.get(id) ?? [])]) w(true)
          } catch (err) {
            this.#inFlight = undefined
            // The newest snapshot wins: put it back unless a newer one arrived meanwhile.
            if (!this.#pending.has(id)) this.#pending.set(id, record)
            this.#warn('deployment snapshot not replicated to the standby orchestrator', { standby: this.#standby, deployment: id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) })
            this.#retry = setTimeout(() => {
              this.#retry = undefined
              this.#flush()
            }, 1000)
            this.#retry.unref()
            return
          }
        }
      } finally {
        this.#busy = false
      }
    })()
  }
}

export interface Replicated {
  from: string
  body: ReplicaBody
}

export class StandbyReplicas {
  readonly #self: string
  readonly #for: ReadonlySet<string>
  readonly #store: StandbyReplicaStore | undefined
  readonly #byNode = new Map<string, Map<string, ReplicaBody>>()
  readonly #verified = new Map<string, string>()
  readonly #now: () => number

  constructor(o: { self: string; standbyFor: readonly string[]; store?: StandbyReplicaStore; now?: () => number }) {
    this.#self = o.self
    this.#for = new Set(o.standbyFor)
    this.#store = o.store
    this.#now = o.now ?? Date.now
  }

  /** The nodes this node stands by for. */
  get standingFor(): ReadonlySet<string> {
    return this.#for
  }

  async load(): Promise<number> {
    if (!this.#store) return 0
    let n = 0
    for (const { from, body } of await this.#store.loadAll()) {
      if (!this.#for.has(from)) continue
      this.#keep(from, body)
      n++
    }
    return n
  }

  /** A snapshot from `from`: accepted only from a node this one stands by for, with its capability. */
  async accept(from: string, body: unknown): Promise<void> {
    if (!this.#for.has(from)) throw new NotStandbyError(`this node is not the standby orchestrator of ${from}`)
    const b = body as ReplicaBody
    const r = b?.record
    const ctx = (r?.snapshot as { context?: DeploymentContext } | undefined)?.context
    if (!r || r.v !== 2 || !isActorName(r.id) || ctx?.id !== r.id || typeof b.token !== 'string' || !Array.isArray(ctx.replicas)) {
      throw new InvalidTermsError('replica: { record: { v: 2, id, snapshot }, token } with the snapshot of that deployment required')
    }
    if (this.#verified.get(from) !== b.token) {
      try {
        await new CapabilityVerifier({ trustedRoots: [from], now: this.#now }).verify(b.token, { audience: this.#self, ability: ORCHESTRATE_ABILITY })
      } catch (err) {
        throw new NotStandbyError(`replica refused: the capability does not name this node: ${(err as Error).name}: ${(err as Error).message}`)
      }
      this.#verified.set(from, b.token)
    }
    this.#keep(from, b)
    await this.#store?.save(from, b)
  }

  /** The deployments of `from` not in a final phase. */
  live(from: string): ReplicaBody[] {
    return [...(this.#byNode.get(from)?.values() ?? [])].filter((b) => !finalPhases.includes(phaseOfSnapshot(b.record.snapshot as { value: unknown })))
  }

  #keep(from: string, body: ReplicaBody): void {
    let m = this.#byNode.get(from)
    if (!m) this.#byNode.set(from, (m = new Map()))
    const old = m.get(body.record.id)
    if (!old || old.record.savedAt <= body.record.savedAt) m.set(body.record.id, body)
  }
}

/** A deployment id names its actor on the standby (`orchestrator/<id>`): it must be an actor name. */
function isActorName(id: unknown): id is string {
  try {
    checkName(id as string)
    return true
  } catch {
    return false
  }
}
