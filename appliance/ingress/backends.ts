// The orchestrator's side of routing (spec/ingress.md "Replica sets"): an ingress asks the deployment's
// orchestrator (`<did>/ingress`, behavior `/noir/ingress/backends`) which replicas run a deployment now, for one
// port. The answer names each running replica's node and contract, and carries an exposure grant when the owner
// opened a port the workload keeps private. A port that is neither public nor opened is refused: the replica set
// of a private service is nobody's business.
import type { NodeKey } from '../../identity/keys.ts'
import type { KvStore } from '../../core/index.ts'
import type { DeploymentView } from '../../actors/deployment/model.ts'
import type { PortAccess, PortRateLimit, Workload } from '../../actors/workload/workload.ts'
import { DeploymentNotHereError, InvalidIngressRequestError, PortNotExposedError } from './errors.ts'
import { signGrant, type ExposureGrant } from './grant.ts'

export const INGRESS_ACTOR = 'ingress'
export const BACKENDS_BEHAVIOR = '/noir/ingress/backends'
/** Scale to zero (spec/ingress.md "Scale to zero"): traffic for a service at zero wakes it; ingresses report traffic. */
export const WAKE_BEHAVIOR = '/noir/ingress/wake'
export const TRAFFIC_BEHAVIOR = '/noir/ingress/traffic'
/** A provider's answer to the orchestrator of its contracts: their replicas' health (spec/ingress.md). */
export const READINESS_BEHAVIOR = '/noir/ingress/readiness'

export interface BackendsRequest {
  deploymentId: string
  port: number
}

export interface Backend {
  index: number
  node: string
  contractId: string
}

export interface BackendsAnswer {
  deploymentId: string
  port: number
  /** The orchestrator that answered. */
  orchestrator: string
  replicas: Backend[]
  grant?: ExposureGrant
  /** The deployment's phase (`idle`: scaled to zero; traffic wakes it). */
  phase?: string
  /** The service may scale to zero (`service.scale.min: 0`): an ingress holds a request while it wakes. */
  scaleToZero?: boolean
  /** The owner's access policy for the port (`ports[].access`): the ingress checks each request against it. */
  access?: PortAccess
  /** The owner's limit on new connections to the port (`ports[].rateLimit`), applied by each ingress beside its own. */
  rateLimit?: PortRateLimit
}

export interface TrafficBody { deploymentId: string; port: number; active: number; lastTrafficAt: number }

/** What the answer reads of the orchestrator. */
export interface DeploymentSource {
  status(id: string): DeploymentView
  workloadOf(id: string): Workload | undefined
  /** Traffic for a service at zero: place its replicas again (a no-op in any other phase); the view. */
  wake(id: string, by?: string): DeploymentView
  /** An ingress's report of the deployment's traffic through it. */
  traffic(id: string, ingress: string, r: { active: number; lastTrafficAt: number }): void
}

export function parseBackendsRequest(x: unknown): BackendsRequest {
  const b = x as Partial<BackendsRequest> | null
  if (typeof b !== 'object' || b === null || typeof b.deploymentId !== 'string' || b.deploymentId.length > 160 || !Number.isInteger(b.port) || (b.port as number) < 1 || (b.port as number) > 65535) {
    throw new InvalidIngressRequestError('the body must be { deploymentId: string, port: 1-65535 }')
  }
  return { deploymentId: b.deploymentId, port: b.port as number }
}

/** Ports the owner opened (or closed again) with `noir expose`, kept in the ingress service's store. */
export class ExposureBook {
  readonly #store: KvStore<{ public: boolean; at: number }>
  readonly #open = new Map<string, boolean>()

  constructor(store: KvStore) {
    this.#store = store.scope('exposure/')
  }

  async load(): Promise<void> {
    for await (const [k, v] of this.#store.entries()) this.#open.set(k, v.public)
  }

  isOpened(deploymentId: string, port: number): boolean {
    return this.#open.get(`${deploymentId}:${port}`) === true
  }

  async set(deploymentId: string, port: number, open: boolean): Promise<void> {
    this.#open.set(`${deploymentId}:${port}`, open)
    await this.#store.put(`${deploymentId}:${port}`, { public: open, at: Date.now() })
  }
}

/** Whether a port is reachable through ingresses, and how (declared public, opened by the owner, or not). */
export function exposureOf(w: Workload, deploymentId: string, port: number, book: ExposureBook): 'public' | 'opened' | 'private' | 'undeclared' {
  const p = w.ports.find((x) => x.port === port && x.protocol === 'tcp')
  if (!p) return 'undeclared'
  if (p.public === true) return 'public'
  return book.isOpened(deploymentId, port) ? 'opened' : 'private'
}

export function backendsFor(src: DeploymentSource, book: ExposureBook, key: NodeKey, req: BackendsRequest): BackendsAnswer {
  const w = src.workloadOf(req.deploymentId)
  if (!w) throw new DeploymentNotHereError(req.deploymentId)
  const exposure = exposureOf(w, req.deploymentId, req.port, book)
  if (exposure === 'undeclared') throw new PortNotExposedError(req.deploymentId, req.port, 'the workload declares no such tcp port')
  if (exposure === 'private') throw new PortNotExposedError(req.deploymentId, req.port, 'the workload keeps it private')
  const declared = w.ports.find((x) => x.port === req.port && x.protocol === 'tcp')
  const access = declared?.access
  const rateLimit = declared?.rateLimit
  const view = src.status(req.deploymentId)
  // scaling to zero, the replicas still running are on their way out: none is offered (a request waits for the wake)
  const replicas = view.phase === 'idle' ? [] : view.replicas
    .filter((r) => r.state === 'running' && r.node !== null && r.contractId !== null && r.retiring !== true)
    .map((r) => ({ index: r.index, node: r.node!, contractId: r.contractId! }))
  return {
    deploymentId: req.deploymentId, port: req.port, orchestrator: key.did, replicas, phase: view.phase,
    ...(w.service?.scale?.min === 0 ? { scaleToZero: true } : {}),
    ...(exposure === 'opened' ? { grant: signGrant(key, req.deploymentId, req.port) } : {}),
    ...(access ? { access } : {}),
    ...(rateLimit ? { rateLimit } : {}),
  }
}

/** Who may wake a deployment or report its traffic: anyone who could send it traffic (a public or opened port). */
function checkReachable(src: DeploymentSource, book: ExposureBook, req: BackendsRequest): void {
  const w = src.workloadOf(req.deploymentId)
  if (!w) throw new DeploymentNotHereError(req.deploymentId)
  const exposure = exposureOf(w, req.deploymentId, req.port, book)
  if (exposure === 'undeclared') throw new PortNotExposedError(req.deploymentId, req.port, 'the workload declares no such tcp port')
  if (exposure === 'private') throw new PortNotExposedError(req.deploymentId, req.port, 'the workload keeps it private')
}

/** A wake from an ingress holding a request: `{ deploymentId, phase }` (the phase before the wake took effect). */
export function wakeFor(src: DeploymentSource, book: ExposureBook, req: BackendsRequest, by: string): { deploymentId: string; phase: string } {
  checkReachable(src, book, req)
  return { deploymentId: req.deploymentId, phase: src.wake(req.deploymentId, by).phase }
}

export function parseTrafficBody(x: unknown): TrafficBody {
  const req = parseBackendsRequest(x)
  const b = x as Partial<TrafficBody>
  if (!Number.isSafeInteger(b.active) || (b.active as number) < 0 || (b.active as number) > 1_000_000 || !Number.isSafeInteger(b.lastTrafficAt) || (b.lastTrafficAt as number) < 0) {
    throw new InvalidIngressRequestError('the body must be { deploymentId, port, active: 0-1000000, lastTrafficAt: ms }')
  }
  return { ...req, active: b.active as number, lastTrafficAt: b.lastTrafficAt as number }
}

/** An ingress's traffic report, counted toward the deployment's idle time: `{ ok: true }`. */
export function trafficFor(src: DeploymentSource, book: ExposureBook, t: TrafficBody, by: string): { ok: true } {
  checkReachable(src, book, t)
  src.traffic(t.deploymentId, by, { active: t.active, lastTrafficAt: t.lastTrafficAt })
  return { ok: true }
}
