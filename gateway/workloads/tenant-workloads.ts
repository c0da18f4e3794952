// Customers' workloads through the gateway (spec/gateway.md "Workloads"): the gateway is its customers'
// orchestrator on the mesh by driving its own node's deployments API (the node it was started with). It
// records which account owns which deployment and answers every other account as if the deployment did not
// exist. A create is recorded (account, idempotency key) BEFORE the node is asked and the node gets a key
// derived from both, so a create retried after a dropped connection or a crash of the gateway returns the
// same deployment, and two accounts using the same key never meet.
import { createHash, randomUUID } from 'node:crypto'
import type { ApiClient, Json } from '../../appliance/daemon/api-client.ts'
import { callNode } from './node-call.ts'
import { deploymentWaitQuery, type DeploymentWait } from '../../actors/orchestrator/deployment-wait.ts'
import { InvalidWorkloadError, WorkloadParseError } from '../../actors/errors.ts'
import { parseWorkloadText, validateWorkload, workloadSpec, type Workload } from '../../actors/workload/workload.ts'
import { GatewayError, IdempotencyConflictError, InvalidRequestError, MeshUnavailableError, NodeRefusedError, NotFoundError } from '../errors.ts'
import type { TenantStore } from '../store/tenant-store.ts'

/** The node the gateway drives: its local API client (appliance/daemon/api-client.ts). */
export type NodeLink = Pick<ApiClient, 'get' | 'post' | 'stream'>

/** What billing does around a create (gateway/billing/account-billing.ts): hold at admission, follow or release. */
export interface CreateBilling {
  admit(accountId: string, holdKey: string, w: Workload): Promise<void>
  attached(holdKey: string, deploymentId: string): Promise<void>
  refused(holdKey: string): Promise<void>
}

/** Deploys inside a capacity reservation (gateway/capacity/capacity-reservations.ts): fitted, bound, slots taken. */
export interface ReservedCreates {
  fit(accountId: string, reservationId: string, w: Workload): Promise<Workload>
  bind(holdKey: string, reservationId: string, w: Workload): Promise<void>
  reservationOf(holdKey: string): Promise<string | undefined>
  admit(holdKey: string): Promise<void>
  attached(holdKey: string, deploymentId: string): Promise<void>
  refused(holdKey: string): Promise<void>
}

export const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/

export interface LogLine { ts: number; stream: string; line: string }

export class TenantWorkloads {
  readonly #store: TenantStore
  readonly #node: NodeLink | undefined
  readonly #now: () => number
  readonly #admit: ((accountId: string, w: Workload) => Promise<void>) | undefined
  readonly #billing: CreateBilling | undefined
  readonly #capacity: ReservedCreates | undefined

  /** `admit`: checks the account may deploy the workload (its secrets exist); throws a typed error to refuse. */
  constructor(o: { store: TenantStore; node?: NodeLink; now?: () => number; admit?: (accountId: string, w: Workload) => Promise<void>; billing?: CreateBilling; capacity?: ReservedCreates }) {
    this.#billing = o.billing
    this.#capacity = o.capacity
    this.#store = o.store
    this.#node = o.node
    this.#now = o.now ?? Date.now
    this.#admit = o.admit
  }

  /** Finishes creates a crash interrupted (recorded, never answered), with their own keys. */
  async resume(): Promise<number> {
    let n = 0
    for (const c of await this.#store.unsettledCreates()) {
      // the node returns the deployment it recorded under this key, or creates it now: the create was
      // asked for, and the customer's retry with the key will find it
      // a crash may have come before the hold: held now (once per key), or the create waits for funds
      // a create into a reservation takes its slots (once); any other is held like a new deploy
      const reserved = await this.#capacity?.reservationOf(nodeKey(c.accountId, c.key))
      if (reserved !== undefined || this.#billing) {
        try {
          if (reserved !== undefined) await this.#capacity!.admit(nodeKey(c.accountId, c.key))
          else await this.#billing!.admit(c.accountId, nodeKey(c.accountId, c.key), validateWorkload(JSON.parse(c.workload)))
        } catch (err) {
          if (err instanceof GatewayError) continue
          throw err
        }
      }
      const view = await this.#call(() => this.#link().post<{ id: string }>('/v1/deployments', { workload: JSON.parse(c.workload) as Json, idempotencyKey: nodeKey(c.accountId, c.key) }))
      await this.#store.settleCreate(c.accountId, c.key, view.id)
      if (reserved !== undefined) await this.#capacity!.attached(nodeKey(c.accountId, c.key), view.id)
      else await this.#billing?.attached(nodeKey(c.accountId, c.key), view.id)
      n++
    }
    return n
  }

  /**
   * Creates (or, with a key used before, returns) a deployment of `workload` owned by `accountId`; with
   * `reservation`, inside that capacity reservation of the account's (no hold of its own: the reservation's).
   */
  async deploy(accountId: string, workload: unknown, idempotencyKey?: string, reservation?: string): Promise<Json> {
    const node = this.#link()
    const key = idempotencyKey ?? randomUUID()
    if (!IDEMPOTENCY_KEY.test(key)) throw new InvalidRequestError('an idempotency key is 1-128 characters of A-Z a-z 0-9 . _ : -', { field: 'idempotencyKey' })
    let w = this.#validate(workload)
    await this.#admit?.(accountId, w)
    const holdKey = nodeKey(accountId, key)
    if (reservation !== undefined) {
      if (!this.#capacity) throw new InvalidRequestError('this gateway takes no capacity reservations (it keeps no books)', { field: 'reservation' })
      w = await this.#capacity.fit(accountId, reservation, w)
      // named before the create is recorded: a restart that finishes the create knows it runs in the reservation
      await this.#capacity.bind(holdKey, reservation, w)
    }
    const spec = JSON.stringify(workloadSpec(w))
    const recorded = await this.#store.recordCreate(accountId, key, spec, this.#now())
    if (recorded.workload !== spec) throw new IdempotencyConflictError(`idempotency key ${key} was used for another workload`, { field: 'idempotencyKey' })
    if (reservation === undefined && (await this.#capacity?.reservationOf(holdKey)) !== undefined) throw new IdempotencyConflictError(`idempotency key ${key} was used for a deploy into a reservation`, { field: 'idempotencyKey' })
    // the hold (or the reservation's slots) after the record (a retried create finds the same key) and before the node is asked
    const billing: Pick<CreateBilling, 'attached' | 'refused'> | undefined = reservation !== undefined ? this.#capacity : this.#billing
    try {
      if (reservation !== undefined) await this.#capacity!.admit(holdKey)
      else await this.#billing?.admit(accountId, holdKey, w)
    } catch (err) {
      // refused (402): the create is forgotten, so no restart finishes it once funds arrive; a retry asks again
      await this.#store.forgetCreate(accountId, key)
      throw err
    }
    let view: { id: string } & Record<string, Json>
    try {
      view = await this.#call(() => node.post<{ id: string } & Record<string, Json>>('/v1/deployments', { workload: JSON.parse(spec) as Json, idempotencyKey: holdKey }))
    } catch (err) {
      // the node said no: nothing runs, nothing stays held (a dropped connection keeps it: the create may have happened)
      if (err instanceof NodeRefusedError) await billing?.refused(holdKey)
      throw err
    }
    await this.#store.settleCreate(accountId, key, view.id)
    await billing?.attached(holdKey, view.id)
    return view
  }

  async list(accountId: string): Promise<Json[]> {
    const mine = new Set(await this.#store.deploymentsOf(accountId))
    if (mine.size === 0) return []
    const all = await this.#call(() => this.#link().get<{ deployments: ({ id: string } & Record<string, Json>)[] }>('/v1/deployments'))
    return all.deployments.filter((d) => mine.has(d.id))
  }

  /**
   * The deployment's view; with `wait`, the node's long poll (answered once the phase is one of `wait.until`,
   * the deployment has had more than `wait.events` events, or after `wait.waitMs`), ended early when `signal`
   * aborts (the customer went away).
   */
  async status(accountId: string, id: string, wait?: DeploymentWait, signal?: AbortSignal): Promise<Json> {
    await this.#own(accountId, id)
    const path = `/v1/deployments/${encodeURIComponent(id)}${wait ? `?${deploymentWaitQuery(wait)}` : ''}`
    return this.#call(() => this.#link().get(path, signal ? { signal } : {}))
  }

  async stop(accountId: string, id: string): Promise<Json> {
    await this.#own(accountId, id)
    return this.#call(() => this.#link().post(`/v1/deployments/${encodeURIComponent(id)}/stop`))
  }

  async usage(accountId: string, id: string): Promise<Json> {
    await this.#own(accountId, id)
    return this.#call(() => this.#link().get(`/v1/deployments/${encodeURIComponent(id)}/usage`))
  }

  /** The deployment's log lines (following when `follow`), until `signal` aborts or the node ends the stream. */
  async logs(accountId: string, id: string, o: { replica: number; follow: boolean; signal: AbortSignal }): Promise<AsyncGenerator<LogLine>> {
    await this.#own(accountId, id)
    if (!Number.isInteger(o.replica) || o.replica < 0 || o.replica > 999) throw new InvalidRequestError('replica is a whole number from 0', { field: 'replica' })
    const node = this.#link()
    await this.status(accountId, id) // a refusal now, as a status code, rather than inside the stream
    return node.stream<LogLine>(`/v1/deployments/${encodeURIComponent(id)}/logs?replica=${o.replica}${o.follow ? '&follow=1' : ''}`, { signal: o.signal })
  }

  async #own(accountId: string, id: string): Promise<void> {
    // the same answer for "not yours" and "does not exist": nothing about other accounts leaks
    if (!(await this.#store.owns(accountId, id))) throw new NotFoundError(`no deployment ${id}`)
  }

  #validate(workload: unknown) {
    try {
      return validateWorkload(typeof workload === 'string' ? parseWorkloadText(workload) : workload)
    } catch (err) {
      if (err instanceof InvalidWorkloadError) throw new InvalidRequestError(err.message, { field: 'workload', issues: err.issues })
      if (err instanceof WorkloadParseError) throw new InvalidRequestError(err.message, { field: 'workload' })
      throw err
    }
  }

  #link(): NodeLink {
    if (!this.#node) throw new MeshUnavailableError('this gateway was started without a node to run workloads on (noir gateway start --node HOME)')
    return this.#node
  }

  #call<T>(fn: () => Promise<T>): Promise<T> {
    return callNode(fn)
  }
}

/** The key the node sees: one per (account, customer key), so accounts never share a key's deployment. */
export function nodeKey(accountId: string, key: string): string {
  return `gw:${createHash('sha256').update(`${accountId}\0${key}`).digest('hex')}`
}

