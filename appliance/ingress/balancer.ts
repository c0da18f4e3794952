// Picks the replica for each new connection of one route (spec/ingress.md "Routing"): round-robin over the
// running replicas the deployment's orchestrator names, skipping for a short while one that refused or could
// not be reached, and trying the next at once when opening the stream fails. The replica set is asked again
// every REFRESH_MS while there is traffic, and at once when every replica failed (a failover moved them).
import type { Stream } from '@libp2p/interface'
import { errorFields, type Log } from '../../p2p/log.ts'
import type { Backend, BackendsAnswer } from './backends.ts'
import type { RouteSpec } from './config.ts'
import { DeploymentNotHereError, IngressError, NoReadyReplicaError, PortNotExposedError, UpstreamUnreachableError } from './errors.ts'
import { encodeFrame, parseOpenAnswer, readFrame, type OpenRequest } from './protocol.ts'

export const REFRESH_MS = 1000
/** How long a request for a service at zero is held while it wakes (placement, start, health check). */
export const COLD_START_MS = 120_000
/** While holding: how often the replica set is asked again, and a wake sent again while still idle. */
const COLD_POLL_MS = 250
const WAKE_EVERY_MS = 1000
/** How long a replica that failed is skipped (unless every one is). */
export const DOWN_MS = 2000
const ANSWER_TIMEOUT_MS = 10_000

export interface BalancerDeps {
  /** Asks the route's orchestrators (in order) for its replica set. */
  backends(route: RouteSpec): Promise<BackendsAnswer>
  /** Opens an `/noir/ingress/1` stream to a node. */
  openStream(node: string): Promise<Stream>
  /** Asks the route's orchestrators to wake a service at zero (spec/ingress.md "Scale to zero"). */
  wake?(route: RouteSpec): Promise<void>
  log: Log
}

export interface ReplicaSeen {
  contractId: string
  node: string
  index: number
  /** Connections this ingress opened on it. */
  connections: number
  /** Why it was last skipped (null: it took the last connection asked of it). */
  lastRefusal: string | null
  downUntil: number
}

export class RouteBalancer {
  readonly route: RouteSpec
  readonly #d: BalancerDeps
  #answer: BackendsAnswer | undefined
  #fetchedAt = 0
  #refreshing: Promise<BackendsAnswer> | undefined
  #next = 0
  readonly #seen = new Map<string, ReplicaSeen>()

  constructor(route: RouteSpec, deps: BalancerDeps) {
    this.route = route
    this.#d = deps
  }

  /** What this ingress knows of the route's replicas (for `noir endpoints`). */
  replicas(): ReplicaSeen[] {
    const live = new Set(this.#answer?.replicas.map((r) => r.contractId) ?? [])
    return [...this.#seen.values()].filter((r) => live.has(r.contractId)).map((r) => ({ ...r }))
  }

  /**
   * A stream to a ready replica whose provider accepted the open request (paused; nothing read past the
   * answer). `early` (the request head already read) is sent right behind the open frame, saving a round trip:
   * the provider forwards it only once its checks passed, and a refused attempt sends it again to the next one.
   */
  async open(early?: Uint8Array, bearer?: string): Promise<{ stream: Stream; backend: Backend; coldStartMs?: number }> {
    const r = await this.each((b, answer) => this.openOn(b, answer, early, bearer))
    return { stream: r.value, backend: r.backend, ...(r.coldStartMs !== undefined ? { coldStartMs: r.coldStartMs } : {}) }
  }

  /**
   * Calls `attempt` with one ready replica after another (round-robin, replicas that failed last) until one
   * resolves: a rejection means the replica refused or could not be reached, nothing was sent to it, and the
   * next is tried. A service at zero is held here while it wakes. NoReadyReplicaError when every one failed.
   */
  async each<T>(attempt: (b: Backend, answer: BackendsAnswer) => Promise<T>): Promise<{ value: T; backend: Backend; coldStartMs?: number }> {
    let tried = 0
    let last: Error | undefined
    const t0 = Date.now()
    // a service that scales to zero is held here while it wakes: polled until a replica takes the connection
    let cold = false
    for (let round = 0; round < 2 || (cold && Date.now() - t0 < COLD_START_MS); round++) {
      let answer: BackendsAnswer
      try {
        answer = await this.#current(round > 0)
        if (answer.replicas.length === 0 && answer.scaleToZero) {
          cold = true
          answer = await this.#awaitReplicas(answer, t0 + COLD_START_MS)
        }
      } catch (err) {
        throw err instanceof IngressError ? err : new UpstreamUnreachableError(`the orchestrator of '${this.route.name}'`, (err as Error).message)
      }
      if (round > 0 && cold) await new Promise((r) => setTimeout(r, COLD_POLL_MS))
      for (const b of this.#order(answer.replicas)) {
        tried++
        try {
          const value = await attempt(b, answer)
          const s = this.#seenOf(b)
          s.connections++
          s.lastRefusal = null
          s.downUntil = 0
          if (cold) {
            const coldStartMs = Date.now() - t0
            this.#d.log.info('ingress cold start', { route: this.route.name, ms: coldStartMs })
            return { value, backend: b, coldStartMs }
          }
          return { value, backend: b }
        } catch (err) {
          last = err as Error
          this.markDown(b, `${last.name}: ${last.message}`)
          this.#d.log.info('ingress replica skipped', { route: this.route.name, node: b.node, contractId: b.contractId, ...errorFields(err) })
        }
      }
    }
    throw new NoReadyReplicaError(this.route.name, tried, last ? `${last.name}: ${last.message}` : undefined)
  }

  /** A replica that failed a connection after it was opened (it ended without answering): skipped for a while. */
  markDown(b: Backend, why: string): void {
    const s = this.#seenOf(b)
    s.lastRefusal = why
    s.downUntil = Date.now() + DOWN_MS
  }

  /** Wakes the service and asks again until its replica set is not empty (NoReadyReplicaError at the deadline). */
  async #awaitReplicas(first: BackendsAnswer, deadline: number): Promise<BackendsAnswer> {
    let answer = first
    let wokeAt = 0
    while (answer.replicas.length === 0) {
      if (Date.now() >= deadline) throw new NoReadyReplicaError(this.route.name, 0, `the service did not wake within ${COLD_START_MS / 1000} s (phase ${answer.phase ?? 'unknown'})`)
      if (answer.phase === 'idle' && Date.now() - wokeAt >= WAKE_EVERY_MS && this.#d.wake) {
        wokeAt = Date.now()
        await this.#d.wake(this.route).catch((err: unknown) => this.#d.log.info('ingress wake not answered', { route: this.route.name, ...errorFields(err) }))
      }
      await new Promise((r) => setTimeout(r, COLD_POLL_MS))
      answer = await this.#current(true)
    }
    return answer
  }

  /**
   * The owner's access policy and rate limit for the route's port, from the replica set (cached as for `open`: asked of the
   * orchestrator at most once a second per route, however many connections arrive).
   */
  async policy(): Promise<Pick<BackendsAnswer, 'access' | 'rateLimit'>> {
    try {
      const a = await this.#current(false)
      return { ...(a.access ? { access: a.access } : {}), ...(a.rateLimit ? { rateLimit: a.rateLimit } : {}) }
    } catch (err) {
      throw err instanceof IngressError ? err : new UpstreamUnreachableError(`the orchestrator of '${this.route.name}'`, (err as Error).message)
    }
  }

  /** Round-robin from the next position; replicas marked down go last (tried only when the others failed). */
  #order(replicas: Backend[]): Backend[] {
    if (replicas.length === 0) return []
    const start = this.#next++ % replicas.length
    const rotated = [...replicas.slice(start), ...replicas.slice(0, start)]
    const now = Date.now()
    const up = rotated.filter((b) => (this.#seen.get(b.contractId)?.downUntil ?? 0) <= now)
    const down = rotated.filter((b) => (this.#seen.get(b.contractId)?.downUntil ?? 0) > now)
    return [...up, ...down]
  }

  #seenOf(b: Backend): ReplicaSeen {
    let s = this.#seen.get(b.contractId)
    if (!s) {
      s = { contractId: b.contractId, node: b.node, index: b.index, connections: 0, lastRefusal: null, downUntil: 0 }
      this.#seen.set(b.contractId, s)
    }
    return s
  }

  async #current(force: boolean): Promise<BackendsAnswer> {
    const fresh = Date.now() - this.#fetchedAt < REFRESH_MS
    if (this.#answer && fresh && !force) return this.#answer
    const p = this.#refresh()
    // a stale answer serves while a new one comes (unless every replica of it just failed)
    if (this.#answer && !force) {
      p.catch(() => undefined)
      return this.#answer
    }
    return p
  }

  #refresh(): Promise<BackendsAnswer> {
    this.#refreshing ??= this.#d.backends(this.route).then((a) => {
      this.#answer = a
      this.#fetchedAt = Date.now()
      // replicas that moved away are forgotten (a long-lived route sees many failovers)
      const live = new Set(a.replicas.map((r) => r.contractId))
      for (const id of this.#seen.keys()) if (!live.has(id)) this.#seen.delete(id)
      return a
    }, (err: unknown) => {
      // the owner closed the port (or the deployment is gone): nothing stale is served after that answer
      if (err instanceof PortNotExposedError || err instanceof DeploymentNotHereError) this.#answer = undefined
      throw err
    }).finally(() => {
      this.#refreshing = undefined
    })
    return this.#refreshing
  }

  /** Opens an ingress stream to replica `b` (its provider's checks passed; paused). Rejects with its refusal. */
  async openOn(b: Backend, answer: BackendsAnswer, early: Uint8Array | undefined, bearer: string | undefined): Promise<Stream> {
    const stream = await this.#d.openStream(b.node)
    try {
      const req: OpenRequest = { v: 1, deploymentId: answer.deploymentId, contractId: b.contractId, port: answer.port, ...(answer.grant ? { grant: answer.grant } : {}), ...(bearer !== undefined ? { bearer } : {}) }
      stream.send(encodeFrame(req))
      if (early && early.byteLength > 0) stream.send(early)
      const refused = parseOpenAnswer(await readFrame(stream, ANSWER_TIMEOUT_MS))
      if (refused) throw refused
      return stream
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  }
}
