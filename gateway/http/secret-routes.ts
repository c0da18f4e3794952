// The gateway's secret routes (spec/secrets.md, spec/gateway.md): scope `secrets` (a session has every
// scope). PUT creates or rotates, GET lists names and versions (never a value), DELETE removes. Another
// account's secret is answered exactly like a missing one.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ApiKeys } from '../keys/api-keys.ts'
import type { AccountSecrets } from '../secrets/account-secrets.ts'
import { MAX_SECRET_BYTES } from '../secrets/account-secrets.ts'
import { principalResolver } from './workload-routes.ts'

export interface SecretRoutesInit {
  keys: ApiKeys
  secrets: AccountSecrets
  sessionAccount(req: FastifyRequest): Promise<string>
}

const nameParam = { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,128}$' } } } as const

export function registerSecretRoutes(app: FastifyInstance, init: SecretRoutesInit): void {
  const principal = principalResolver(init.keys, init.sessionAccount)
  const { secrets } = init

  app.put('/v1/secrets/:name', {
    schema: {
      params: nameParam,
      // a value is at most 64 KiB of UTF-8 (checked again in bytes); JSON escapes may make the body longer
      body: { type: 'object', additionalProperties: false, required: ['value'], properties: { value: { type: 'string', maxLength: MAX_SECRET_BYTES } } },
    },
  }, async (req, reply) => {
    const p = await principal(req, 'secrets')
    const r = await secrets.put(p.accountId, (req.params as { name: string }).name, (req.body as { value: string }).value)
    return reply.status(r.created ? 201 : 200).send(r)
  })
  app.get('/v1/secrets', async (req) => ({ secrets: await secrets.list((await principal(req, 'secrets')).accountId) }))
  app.delete('/v1/secrets/:name', { schema: { params: nameParam } }, async (req) => {
    await secrets.remove((await principal(req, 'secrets')).accountId, (req.params as { name: string }).name)
    return { ok: true, deleted: true }
  })
}
