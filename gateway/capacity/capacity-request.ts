// What a capacity request asks for (spec/capacity.md "Requests"), checked with the workload's own rules: the
// request is turned into the workload shape it reserves room for (resources per slot, slots as replicas, the
// lane, the runtime type, the constraints), so a memory of "256MiB", a protected lane with one slot or an
// unknown region field are refused exactly as they would be in a workload. And whether a workload fits what
// a reservation holds.
import { InvalidWorkloadError } from '../../actors/errors.ts'
import { maxPriceOf, validateWorkload, type Constraints, type Lane, type ResourceRequest, type Workload } from '../../actors/workload/workload.ts'
import { concurrentReplicas } from '../billing/hold-size.ts'
import { InvalidRequestError, ReservationExceededError } from '../errors.ts'

/** The runtimes a reservation can be for: those a node can bid on without a catalog entry of the owner's. */
export const RESERVABLE_RUNTIMES = ['container', 'wasm', 'actor'] as const
export type ReservableRuntime = (typeof RESERVABLE_RUNTIMES)[number]

export const MIN_DURATION_S = 60
export const MAX_DURATION_S = 31 * 86_400
export const MAX_SLOTS = 100

/** A checked capacity request, as stored (JSON). */
export interface CapacityRequest {
  resources: ResourceRequest
  slots: number
  lane: Lane
  runtime: ReservableRuntime
  durationSeconds: number
  constraints: Constraints
}

/** The request body as the route's schema lets it in (`resources.memory` a quantity such as "512MiB"). */
export interface CapacityRequestBody {
  resources: { cpu: number; memory: string | number; gpu?: number; vram?: string | number; disk?: string | number }
  slots: number
  durationSeconds: number
  lane?: Lane
  runtime?: ReservableRuntime
  constraints?: Record<string, unknown>
}

/** The JSON Schema of the body (fastify validates it; the OpenAPI document shows it). */
export const CAPACITY_REQUEST_SCHEMA = {
  type: 'object', additionalProperties: false, required: ['resources', 'slots', 'durationSeconds'],
  properties: {
    resources: {
      type: 'object', additionalProperties: false, required: ['cpu', 'memory'],
      properties: {
        cpu: { type: 'number', exclusiveMinimum: 0, maximum: 1024 },
        memory: { anyOf: [{ type: 'string', maxLength: 32 }, { type: 'integer', minimum: 1 }] },
        gpu: { type: 'integer', minimum: 0, maximum: 64 },
        vram: { anyOf: [{ type: 'string', maxLength: 32 }, { type: 'integer', minimum: 0 }] },
        disk: { anyOf: [{ type: 'string', maxLength: 32 }, { type: 'integer', minimum: 0 }] },
      },
    },
    slots: { type: 'integer', minimum: 1, maximum: MAX_SLOTS, description: 'replicas that may run at once, each with `resources`' },
    durationSeconds: { type: 'integer', minimum: MIN_DURATION_S, maximum: MAX_DURATION_S },
    lane: { type: 'string', enum: ['best-effort', 'protected'] },
    runtime: { type: 'string', enum: [...RESERVABLE_RUNTIMES] },
    constraints: { type: 'object', description: 'as a workload\'s constraints (spec/orchestration.md): region, arch, labels, maxLatencyMs, maxPrice, minTrust, owners, core' },
  },
} as const

/** A placeholder per runtime: nothing a node must have installed (an image tag, an artifact digest fetched only at a start). */
const PLACEHOLDER: Record<ReservableRuntime, Record<string, string>> = {
  container: { type: 'container', image: 'noir-capacity-quote' },
  wasm: { type: 'wasm', module: `sha256:${'0'.repeat(64)}` },
  actor: { type: 'actor', bundle: `sha256:${'0'.repeat(64)}` },
}

/** Checks a request body; the normalized request (InvalidRequestError naming the field otherwise). */
export function capacityRequest(body: CapacityRequestBody): CapacityRequest {
  const runtime = body.runtime ?? 'container'
  const w = shapeWorkload({ resources: body.resources, slots: body.slots, lane: body.lane ?? 'best-effort', runtime, constraints: body.constraints ?? {} })
  return { resources: w.resources, slots: body.slots, lane: w.lane, runtime, durationSeconds: body.durationSeconds, constraints: w.constraints }
}

/** The workload a request reserves room for: the one a quote's dry run asks the mesh to bid on. */
export function quoteWorkload(r: CapacityRequest): Workload {
  const { resources: x } = r
  return shapeWorkload({
    resources: { cpu: x.cpu, memory: x.memoryBytes, gpu: x.gpu, vram: x.vramBytes, disk: x.diskBytes },
    slots: r.slots, lane: r.lane, runtime: r.runtime, constraints: { ...r.constraints },
  })
}

function shapeWorkload(o: { resources: CapacityRequestBody['resources']; slots: number; lane: Lane; runtime: ReservableRuntime; constraints: Record<string, unknown> }): Workload {
  const raw = {
    apiVersion: 'noir/v1', kind: 'service', name: 'capacity', runtime: PLACEHOLDER[o.runtime], lane: o.lane,
    resources: Object.fromEntries(Object.entries(o.resources).filter(([, v]) => v !== undefined)),
    service: { replicas: o.slots }, constraints: o.constraints,
  }
  try {
    return validateWorkload(raw)
  } catch (err) {
    if (!(err instanceof InvalidWorkloadError)) throw err
    // the workload's paths, said as the request's: $.service.replicas is the request's slots
    const issues = err.issues.map((i) => ({ path: i.path.replace('$.service.replicas', '$.slots').replace(/^\$\.service\b/, '$'), reason: i.reason }))
    throw new InvalidRequestError(`the capacity request is not valid: ${issues.map((i) => `${i.path} ${i.reason}`).join('; ')}`, { field: issues[0]?.path ?? '$', issues })
  }
}

/**
 * The workload as it runs inside a reservation, or ReservationExceededError saying what does not fit: its
 * lane and runtime type are the reservation's, each replica within a slot's resources; its price cap is at
 * most the reservation's dearest slot, and the reservation's constraints replace its own of the same name
 * (a deploy cannot take a reservation's price to another region).
 */
export function fitToReservation(w: Workload, r: CapacityRequest, slotCap: bigint): Workload {
  const no = (why: string, field: string): never => {
    throw new ReservationExceededError(`this workload does not fit the reservation: ${why}`, { field })
  }
  if (w.lane !== r.lane) no(`its lane is ${w.lane}, the reservation's ${r.lane}`, 'lane')
  if (w.runtime.type !== r.runtime) no(`its runtime is ${w.runtime.type}, the reservation's ${r.runtime}`, 'runtime.type')
  for (const k of ['cpu', 'memoryBytes', 'gpu', 'vramBytes', 'diskBytes'] as const) {
    if (w.resources[k] > r.resources[k]) no(`each replica asks ${k} ${w.resources[k]}, a slot holds ${r.resources[k]}`, `resources.${k}`)
  }
  const slots = concurrentReplicas(w)
  if (slots > r.slots) no(`it runs ${slots} replicas at once, the reservation has ${r.slots} slots`, 'replicas')
  const own = maxPriceOf(w.constraints)
  const constraints: Constraints = { ...w.constraints, ...r.constraints, maxPrice: String(own !== undefined && own < slotCap ? own : slotCap) }
  return { ...w, constraints }
}
