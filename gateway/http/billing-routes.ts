// The gateway's billing routes (spec/billing.md): the account's wallet, its top-ups, usage per day and
// workload, and monthly invoices. Scope `usage` (a session has every scope). Every answer is the caller's
// account's own: another account's invoice id is answered like a missing one.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ApiKeys } from '../keys/api-keys.ts'
import type { AccountBilling } from '../billing/account-billing.ts'
import { principalResolver } from './workload-routes.ts'

export interface BillingRoutesInit {
  keys: ApiKeys
  billing: AccountBilling
  sessionAccount(req: FastifyRequest): Promise<string>
}

export function registerBillingRoutes(app: FastifyInstance, init: BillingRoutesInit): void {
  const principal = principalResolver(init.keys, init.sessionAccount)
  const { billing } = init
  const account = async (req: FastifyRequest): Promise<string> => (await principal(req, 'usage')).accountId
  app.get('/v1/wallet', async (req) => billing.wallet(await account(req)))
  app.get('/v1/wallet/top-ups', async (req) => billing.topUps(await account(req)))
  app.get('/v1/usage', {
    schema: { querystring: { type: 'object', additionalProperties: false, properties: { from: { type: 'string', maxLength: 10 }, to: { type: 'string', maxLength: 10 } } } },
  }, async (req) => {
    const q = req.query as { from?: string; to?: string }
    return billing.usage(await account(req), q.from, q.to)
  })
  app.get('/v1/invoices', async (req) => billing.invoices(await account(req)))
  app.get('/v1/invoices/:id', { schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } } } }, async (req) => billing.invoice(await account(req), (req.params as { id: string }).id))
}
