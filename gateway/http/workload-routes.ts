// The gateway's workload and API-key routes (spec/gateway.md): who is asking is a session (cookie; every
// scope) or an API key (`Authorization: Bearer`; its scopes only). Keys are managed with a session only: a
// key never mints or lists keys. Every workload route answers a deployment of another account exactly as a
// missing one (404). Logs stream as Server-Sent Events, resumable with Last-Event-ID.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { type ApiKeys, type Scope, MAX_KEY_DAYS, SCOPES } from '../keys/api-keys.ts'
import { IDEMPOTENCY_KEY, type TenantWorkloads } from '../workloads/tenant-workloads.ts'
import { InvalidRequestError, RateLimitedError, ScopeDeniedError } from '../errors.ts'
import type { DidBinding } from '../wallets/did-binding.ts'
import { deploymentWaitOf, DeploymentWaitQueryError, type DeploymentWait } from '../../actors/orchestrator/deployment-wait.ts'

export interface Principal {
  accountId: string
  /** 'session', or the id of the API key used. */
  via: string
  scopes: ReadonlySet<Scope>
}

export interface WorkloadRoutesInit {
  keys: ApiKeys
  workloads: TenantWorkloads
  /** The account of the request's session (throws AuthRequiredError without one). */
  sessionAccount(req: FastifyRequest): Promise<string>
  /** Binding the customer's own did:key as the wallet (spec/gateway.md "Your own DID"). */
  didBinding?: DidBinding
}

const ALL = new Set(Object.keys(SCOPES) as Scope[])

/** Status long polls an account may hold open at once; one more is answered at once (a plain status). */
export const MAX_WAITS_PER_ACCOUNT = 16
/** Log streams one account may follow at once (each holds a stream from the node open); one more is 429. */
export const MAX_FOLLOWS_PER_ACCOUNT = 16

/** Who is asking, with `need` among their scopes: a session (every scope) or an API key (its own); typed errors otherwise. */
export function principalResolver(keys: ApiKeys, sessionAccount: (req: FastifyRequest) => Promise<string>): (req: FastifyRequest, need: Scope) => Promise<Principal> {
  return async (req, need) => {
    const h = req.headers.authorization
    let p: Principal
    if (h !== undefined) {
      const m = /^Bearer (\S+)$/.exec(h)
      if (!m) throw new InvalidRequestError('Authorization is "Bearer <API key>"', { field: 'authorization' })
      const k = await keys.authenticate(m[1]!)
      p = { accountId: k.accountId, via: k.keyId, scopes: new Set(k.scopes) }
    } else {
      p = { accountId: await sessionAccount(req), via: 'session', scopes: ALL }
    }
    if (!p.scopes.has(need)) throw new ScopeDeniedError(`this key is not scoped for ${need}`, { needs: need })
    return p
  }
}

export function registerWorkloadRoutes(app: FastifyInstance, init: WorkloadRoutesInit): void {
  const { keys, workloads } = init

  const principal = principalResolver(keys, init.sessionAccount)
  const sessionOnly = async (req: FastifyRequest): Promise<string> => {
    if (req.headers.authorization !== undefined) throw new ScopeDeniedError('keys and the wallet are managed with a signed-in session, not with an API key', { needs: 'session' })
    return init.sessionAccount(req)
  }
  const idParam = (req: FastifyRequest): string => {
    const id = (req.params as { id: string }).id
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(id)) throw new InvalidRequestError('not a deployment id', { field: 'id' })
    return id
  }

  const waitParam = (req: FastifyRequest): DeploymentWait | null => {
    try {
      return deploymentWaitOf(new URLSearchParams(req.query as Record<string, string>))
    } catch (err) {
      if (err instanceof DeploymentWaitQueryError) throw new InvalidRequestError(err.message, { field: err.field })
      throw err
    }
  }

  // ---- API keys ----
  app.post('/v1/keys', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['name', 'scopes'], properties: {
      name: { type: 'string', maxLength: 64 },
      scopes: { type: 'array', minItems: 1, maxItems: 4, items: { type: 'string', enum: Object.keys(SCOPES) } },
      days: { type: 'integer', minimum: 1, maximum: MAX_KEY_DAYS },
    } } },
  }, async (req, reply) => {
    const b = req.body as { name: string; scopes: string[]; days?: number }
    return reply.status(201).send(await keys.create(await sessionOnly(req), { name: b.name, scopes: b.scopes, days: b.days ?? 90 }))
  })
  app.post('/v1/keys/signed', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['name', 'token'], properties: {
      name: { type: 'string', maxLength: 64 },
      token: { type: 'string', maxLength: 8192 },
    } } },
  }, async (req, reply) => {
    const b = req.body as { name: string; token: string }
    return reply.status(201).send(await keys.register(await sessionOnly(req), b))
  })
  app.get('/v1/keys', async (req) => ({ keys: await keys.list(await sessionOnly(req)) }))
  app.delete('/v1/keys/:id', async (req) => {
    await keys.revoke(await sessionOnly(req), (req.params as { id: string }).id)
    return { ok: true, revoked: true }
  })

  // ---- the customer's own DID as the wallet ----
  const binding = init.didBinding
  if (binding) {
    app.post('/v1/wallet/did/challenge', async (req) => binding.challenge(await sessionOnly(req)))
    app.put('/v1/wallet/did', {
      schema: { body: { type: 'object', additionalProperties: false, required: ['did', 'signature'], properties: {
        did: { type: 'string', maxLength: 256 },
        signature: { type: 'string', maxLength: 128 },
      } } },
    }, async (req) => {
      const b = req.body as { did: string; signature: string }
      return binding.bind(await sessionOnly(req), b.did, b.signature)
    })
  }

  // ---- workloads ----
  app.post('/v1/workloads', {
    schema: { body: { type: 'object', additionalProperties: false, required: ['workload'], properties: {
      workload: { anyOf: [{ type: 'object' }, { type: 'string', maxLength: 64 * 1024 }] },
      idempotencyKey: { type: 'string', maxLength: 128 },
      reservation: { type: 'string', maxLength: 64, description: 'a capacity reservation of the account\'s to run inside (spec/capacity.md)' },
    } } },
  }, async (req, reply) => {
    const p = await principal(req, 'deploy')
    const b = req.body as { workload: unknown; idempotencyKey?: string; reservation?: string }
    const header = req.headers['idempotency-key']
    if (typeof header === 'string' && b.idempotencyKey !== undefined && header !== b.idempotencyKey) throw new InvalidRequestError('the Idempotency-Key header and idempotencyKey differ', { field: 'idempotencyKey' })
    const key = b.idempotencyKey ?? (typeof header === 'string' ? header : undefined)
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw new InvalidRequestError('an idempotency key is 1-128 characters of A-Z a-z 0-9 . _ : -', { field: 'idempotencyKey' })
    return reply.status(201).send(await workloads.deploy(p.accountId, b.workload, key, b.reservation))
  })
  app.get('/v1/workloads', async (req) => ({ workloads: await workloads.list((await principal(req, 'deploy')).accountId) }))
  // `?until=running,failed&events=N&waitMs=N`: the node's long poll (spec/orchestration.md "Local API"), ended
  // when the customer goes away
  // (at most MAX_WAITS_PER_ACCOUNT at once per account: one more is answered at once, as a plain status)
  const waiting = new Map<string, number>()
  app.get('/v1/workloads/:id', async (req, reply) => {
    const p = await principal(req, 'deploy')
    const id = idParam(req)
    const wait = waitParam(req)
    const held = waiting.get(p.accountId) ?? 0
    if (wait === null || held >= MAX_WAITS_PER_ACCOUNT) return workloads.status(p.accountId, id)
    waiting.set(p.accountId, held + 1)
    const abort = new AbortController()
    const gone = (): void => abort.abort()
    reply.raw.once('close', gone)
    try {
      return await workloads.status(p.accountId, id, wait, abort.signal)
    } catch (err) {
      // the customer hung up and the node call ended with it: nothing to answer, and no server error
      if (abort.signal.aborted) return reply.status(499).send()
      throw err
    } finally {
      reply.raw.off('close', gone)
      const n = (waiting.get(p.accountId) ?? 1) - 1
      if (n > 0) waiting.set(p.accountId, n)
      else waiting.delete(p.accountId)
    }
  })
  app.post('/v1/workloads/:id/stop', async (req) => workloads.stop((await principal(req, 'deploy')).accountId, idParam(req)))
  app.get('/v1/workloads/:id/usage', async (req) => workloads.usage((await principal(req, 'usage')).accountId, idParam(req)))
  // (at most MAX_FOLLOWS_PER_ACCOUNT followed at once per account: one more is 429 RateLimitedError)
  const following = new Map<string, number>()
  app.get('/v1/workloads/:id/logs', async (req, reply) => {
    const p = await principal(req, 'logs')
    const q = req.query as Record<string, string | undefined>
    const replica = q.replica === undefined ? 0 : Number(q.replica)
    const follow = q.follow === '1' || q.follow === 'true'
    const last = req.headers['last-event-id']
    const after = last === undefined ? -1 : Number(last)
    if (!Number.isSafeInteger(after) || after < -1) throw new InvalidRequestError('Last-Event-ID is the id of the last event received', { field: 'last-event-id' })
    const held = following.get(p.accountId) ?? 0
    if (follow && held >= MAX_FOLLOWS_PER_ACCOUNT) {
      throw new RateLimitedError(`at most ${MAX_FOLLOWS_PER_ACCOUNT} log streams are followed at once per account: close one first`, { limit: MAX_FOLLOWS_PER_ACCOUNT, retryAfterSeconds: 5 })
    }
    if (follow) following.set(p.accountId, held + 1)
    try {
      const abort = new AbortController()
      req.raw.once('close', () => abort.abort())
      const lines = await workloads.logs(p.accountId, idParam(req), { replica, follow, signal: abort.signal })
      reply.hijack()
      const out = reply.raw
      out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', connection: 'keep-alive' })
      let n = -1
      try {
        for await (const l of lines) {
          n++
          if (n <= after) continue
          out.write(`id: ${n}\nevent: log\ndata: ${JSON.stringify({ ts: l.ts, stream: l.stream, line: l.line })}\n\n`)
        }
        out.write('event: end\ndata: {}\n\n')
      } catch (err) {
        out.write(`event: error\ndata: ${JSON.stringify({ name: (err as Error).name, detail: (err as Error).message })}\n\n`)
      } finally {
        out.end()
      }
    } finally {
      if (follow) {
        const n = (following.get(p.accountId) ?? 1) - 1
        if (n > 0) following.set(p.accountId, n)
        else following.delete(p.accountId)
      }
    }
  })
}
