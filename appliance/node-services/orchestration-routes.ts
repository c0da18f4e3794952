// The local API routes of the orchestration service (spec/orchestration.md "Local API", spec/cli.md): the
// deployments behind `noir deploy/ps/status/logs/stop/bids`, and `noir contracts`. Each group takes exactly
// what it reads and calls.
import { InvalidRequestError } from '../daemon/errors.ts'
import type { ApiRoute, JsonValue } from '../daemon/service.ts'
import { ndjson } from '../daemon/service.ts'
import { contractSummary, type ContractStore } from '../../actors/contracts/store.ts'
import type { Orchestrator } from '../../actors/orchestrator/orchestrator.ts'
import { deploymentWaitOf, DeploymentWaitQueryError, type DeploymentWait } from '../../actors/orchestrator/deployment-wait.ts'
import type { LogEntry } from '../../actors/provider/ports.ts'
import type { Provider } from '../../actors/provider/provider.ts'
import { parseWorkloadText, validateWorkload, workloadFromWire, type Workload } from '../../actors/workload/workload.ts'
import { InvalidWorkloadError } from '../../actors/errors.ts'

/** The orchestrator the deployment routes drive. */
export type DeploymentRoutesInput = Pick<Orchestrator, 'deploy' | 'list' | 'status' | 'awaitPhase' | 'stopDeployment' | 'logs' | 'dryRun' | 'migrate'>

export function deploymentRoutes(o: DeploymentRoutesInput): ApiRoute[] {
  return [
    {
      method: 'POST', path: '/v1/deployments',
      // `{ workload, idempotencyKey? }`: a retried create with the same key returns the same deployment
      handler: (req) => o.deploy(workloadFromBody(req.body), idempotencyKeyOf(req.body)) as unknown as JsonValue,
    },
    { method: 'GET', path: '/v1/deployments', handler: () => ({ deployments: o.list() as unknown as JsonValue }) },
    {
      method: 'GET', path: '/v1/deployments/:id',
      // `?until=running,failed&events=N&waitMs=N`: answered once the phase is one of those or the deployment
      // has had more than N events (or after waitMs, default 30 s, at most 60 s, or when the caller goes away)
      handler: async (req) => {
        const wait = waitOf(req.query)
        if (wait === null) return o.status(req.params.id!) as unknown as JsonValue
        return (await o.awaitPhase(req.params.id!, wait.until, wait.waitMs, { ...(wait.events !== undefined ? { events: wait.events } : {}), signal: req.signal })) as unknown as JsonValue
      },
    },
    { method: 'POST', path: '/v1/deployments/:id/stop', handler: async (req) => (await o.stopDeployment(req.params.id!)) as unknown as JsonValue },
    // `{ replica?, to? }`: answered once the replica runs on its new node (spec/migration.md)
    { method: 'POST', path: '/v1/deployments/:id/migrate', handler: async (req) => (await o.migrate(req.params.id!, migrateBody(req.body))) as unknown as JsonValue },
    {
      method: 'GET',
      path: '/v1/deployments/:id/logs',
      handler: (req) => {
        const id = req.params.id!
        const replica = Number(req.query.get('replica') ?? 0)
        const follow = req.query.get('follow') === '1' || req.query.get('follow') === 'true'
        o.status(id) // 404 now rather than inside the stream
        return ndjson(followLogs(o, id, replica, follow, req.signal))
      },
    },
    { method: 'POST', path: '/v1/bids/dry-run', handler: async (req) => (await o.dryRun(workloadFromBody(req.body))) as unknown as JsonValue },
  ]
}

/** The contracts `noir contracts` lists. */
export type ContractRoutesInput = Pick<ContractStore, 'list'>

export function contractRoutes(contracts: ContractRoutesInput): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/contracts',
      handler: async () => ({ contracts: (await contracts.list()).map(contractSummary) as unknown as JsonValue }),
    },
  ]
}

/** The live contracts this node holds as a provider, with their leases: `noir node contracts`. */
export type NodeContractRoutesInput = Pick<Provider, 'leases'>

export function nodeContractRoutes(provider: NodeContractRoutesInput): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/node/contracts',
      handler: async () => ({ contracts: (await provider.leases()) as unknown as JsonValue }),
    },
  ]
}

/** The workload in a request: `{ workload: {...} }` (an object) or `{ workload: "yaml text" }`. */
/** The optional `idempotencyKey` of a create (checked by the orchestrator). */
function idempotencyKeyOf(body: JsonValue | undefined): { idempotencyKey?: string } {
  const k = (body as { idempotencyKey?: unknown } | undefined)?.idempotencyKey
  if (k === undefined || k === null) return {}
  if (typeof k !== 'string') throw new InvalidRequestError("'idempotencyKey' must be a string")
  return { idempotencyKey: k }
}

function workloadFromBody(body: JsonValue | undefined): Workload {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('workload' in body)) throw new InvalidRequestError("the body must be { \"workload\": <object or YAML text> }")
  const w = body.workload
  if (typeof w === 'string') return validateWorkload(parseWorkloadText(w))
  if (typeof w === 'object' && w !== null && !Array.isArray(w) && 'resources' in w && typeof w.resources === 'object' && w.resources !== null && 'memoryBytes' in w.resources) return workloadFromWire(w)
  if (typeof w !== 'object' || w === null) throw new InvalidWorkloadError([{ path: '$', reason: 'must be an object' }])
  return validateWorkload(w)
}

async function* followLogs(o: Pick<Orchestrator, 'logs' | 'status'>, id: string, replica: number, follow: boolean, signal: AbortSignal): AsyncIterable<JsonValue> {
  let since = 0
  let node: string | null = null
  for (;;) {
    if (signal.aborted) return
    const r = await o.logs(id, { replica, since, limit: 500 }).catch((err: Error) => ({ node: null, lines: [] as LogEntry[], ended: false, error: err }))
    if (r.node !== node && r.node !== null) {
      // The replica moved (failover): read the new node's instance from its start.
      if (node !== null) yield { event: 'moved', from: node, to: r.node, at: Date.now() }
      node = r.node
      since = 0
      if (r.lines.length === 0) continue
    }
    for (const l of r.lines) {
      yield { ts: l.ts, stream: l.stream, line: l.line, node: r.node }
      since = Math.max(since, l.ts)
    }
    const view = o.status(id)
    if (!follow || (r.ended && view.phase !== 'running' && view.phase !== 'degraded' && view.phase !== 'provisioning')) return
    if (r.lines.length < 500) await new Promise((res) => setTimeout(res, 300))
  }
}

function migrateBody(body: unknown): { replica?: number; to?: string } {
  const b = (body ?? {}) as { replica?: unknown; to?: unknown }
  if (typeof b !== 'object' || Array.isArray(b)) throw new InvalidRequestError('body: { replica?, to? }')
  if (b.replica !== undefined && (typeof b.replica !== 'number' || !Number.isSafeInteger(b.replica) || b.replica < 0)) throw new InvalidRequestError('replica: a whole number from 0')
  if (b.to !== undefined && (typeof b.to !== 'string' || !/^did:key:z[1-9A-HJ-NP-Za-km-z]{20,100}$/.test(b.to))) throw new InvalidRequestError('to: a node DID (did:key:z...)')
  return { ...(b.replica !== undefined ? { replica: b.replica as number } : {}), ...(b.to !== undefined ? { to: b.to as string } : {}) }
}

/** The long poll a query asks for (deployment-wait.ts), its bad parameters a 400 naming them. */
function waitOf(query: URLSearchParams): DeploymentWait | null {
  try {
    return deploymentWaitOf(query)
  } catch (err) {
    if (err instanceof DeploymentWaitQueryError) throw new InvalidRequestError(err.message, { field: err.field })
    throw err
  }
}
