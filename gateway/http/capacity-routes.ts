// The gateway's capacity routes (spec/capacity.md): quote capacity, reserve a quote, list, read and cancel
// reservations. Scope `deploy` (a session has every scope). Another account's quote or reservation is
// answered like a missing one (404).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ApiKeys } from '../keys/api-keys.ts'
import type { CapacityReservations } from '../capacity/capacity-reservations.ts'
import { CAPACITY_REQUEST_SCHEMA, type CapacityRequestBody } from '../capacity/capacity-request.ts'
import { principalResolver } from './workload-routes.ts'

export interface CapacityRoutesInit {
  keys: ApiKeys
  capacity: CapacityReservations
  sessionAccount(req: FastifyRequest): Promise<string>
}

const ID = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } as const

export function registerCapacityRoutes(app: FastifyInstance, init: CapacityRoutesInit): void {
  const principal = principalResolver(init.keys, init.sessionAccount)
  const { capacity } = init
  const account = async (req: FastifyRequest): Promise<string> => (await principal(req, 'deploy')).accountId
  app.post('/v1/capacity/quotes', { schema: { body: CAPACITY_REQUEST_SCHEMA } }, async (req, reply) => {
    const a = await account(req)
    return reply.status(201).send(await capacity.quote(a, req.body as CapacityRequestBody))
  })
  app.post('/v1/capacity', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['quoteId'], properties: { quoteId: { type: 'string', maxLength: 64 } } } },
  }, async (req, reply) => {
    const a = await account(req)
    return reply.status(201).send(await capacity.reserve(a, (req.body as { quoteId: string }).quoteId))
  })
  app.get('/v1/capacity', async (req) => capacity.list(await account(req)))
  app.get('/v1/capacity/:id', { schema: { params: ID } }, async (req) => capacity.view(await account(req), (req.params as { id: string }).id))
  app.post('/v1/capacity/:id/cancel', { schema: { params: ID } }, async (req) => capacity.cancel(await account(req), (req.params as { id: string }).id))
}
