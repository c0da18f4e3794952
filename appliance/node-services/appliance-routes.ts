// The local API routes of the appliance service (spec/appliance.md "Local API"): allocations and
// reservations, behind `noir node alloc/reserve/logs`. Each group takes exactly what it reads and calls.
import type { ApiRoute } from '../daemon/service.ts'
import { jsonCopy, ndjson } from '../daemon/service.ts'
import type { AllocationManager } from '../allocation/allocation-manager.ts'
import type { Allocator } from '../allocator/allocator.ts'
import { parseAllocationRequest, parseReservationRequest } from '../allocation/request.ts'

/** The allocation manager the allocation routes drive. */
export type AllocationRoutesInput = Pick<AllocationManager, 'list' | 'create' | 'get' | 'stopAllocation' | 'remove' | 'logs'>

export function allocationRoutes(m: AllocationRoutesInput): ApiRoute[] {
  return [
    { method: 'GET', path: '/v1/allocations', handler: () => jsonCopy({ allocations: m.list() }) },
    { method: 'POST', path: '/v1/allocations', handler: async (req) => jsonCopy(await m.create(parseAllocationRequest(req.body))) },
    { method: 'GET', path: '/v1/allocations/:id', handler: (req) => jsonCopy(m.get(req.params.id!)) },
    {
      method: 'POST',
      path: '/v1/allocations/:id/stop',
      handler: async (req) => {
        const b = req.body as { graceMs?: unknown } | undefined
        const grace = typeof b?.graceMs === 'number' ? b.graceMs : undefined
        return jsonCopy(await m.stopAllocation(req.params.id!, grace))
      },
    },
    {
      method: 'DELETE',
      path: '/v1/allocations/:id',
      handler: async (req) => {
        await m.remove(req.params.id!)
        return { removed: req.params.id! }
      },
    },
    {
      method: 'GET',
      path: '/v1/allocations/:id/logs',
      handler: (req) => {
        const follow = req.query.get('follow') === '1' || req.query.get('follow') === 'true'
        const since = Number(req.query.get('since') ?? 0) || 0
        m.get(req.params.id!) // 404 before the stream starts
        const source = m.logs(req.params.id!, { follow, since })
        return ndjson(
          (async function* () {
            for await (const l of source) {
              if (req.signal.aborted) return
              yield { ts: l.ts, stream: l.stream, line: l.line }
            }
          })(),
        )
      },
    },
  ]
}

/** The allocator the reservation routes drive (two-phase: reserve, then commit or release). */
export type ReservationRoutesInput = Pick<Allocator, 'list' | 'reserve' | 'commit' | 'release'>

export function reservationRoutes(allocator: ReservationRoutesInput): ApiRoute[] {
  return [
    { method: 'GET', path: '/v1/reservations', handler: () => jsonCopy({ reservations: allocator.list() }) },
    {
      method: 'POST',
      path: '/v1/reservations',
      handler: async (req) => {
        const r = parseReservationRequest(req.body)
        return jsonCopy(await allocator.reserve(r.resources, { ...(r.ttlMs !== undefined ? { ttlMs: r.ttlMs } : {}) }))
      },
    },
    { method: 'POST', path: '/v1/reservations/:id/commit', handler: async (req) => jsonCopy(await allocator.commit(req.params.id!)) },
    {
      method: 'DELETE',
      path: '/v1/reservations/:id',
      handler: async (req) => {
        await allocator.release(req.params.id!)
        return { released: req.params.id! }
      },
    },
  ]
}
