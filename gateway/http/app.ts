// The gateway's HTTP API (spec/auth.md, spec/gateway.md): fastify, JSON bodies checked by JSON Schema (fastify's
// own validator), errors as RFC 9457 problem+json carrying the typed error's name, the session in a cookie
// `noir_session` (HttpOnly, Secure, SameSite=Strict, Path=/), state changes refused from another Origin.
import { renderSVG } from 'uqr'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { AuthService } from '../auth/auth-service.ts'
import { GatewayError, NotFoundError } from '../errors.ts'
import type { Account, Session } from '../store/gateway-store.ts'
import type { ApiKeys } from '../keys/api-keys.ts'
import type { TenantWorkloads } from '../workloads/tenant-workloads.ts'
import { registerWorkloadRoutes } from './workload-routes.ts'
import { registerSecretRoutes } from './secret-routes.ts'
import type { AccountSecrets } from '../secrets/account-secrets.ts'
import { registerOpenApi } from './openapi.ts'
import { refuseCrossSite } from './same-origin.ts'
import { registerDashboard } from '../dashboard/dashboard-routes.ts'
import type { DidBinding } from '../wallets/did-binding.ts'
import type { AccountBilling } from '../billing/account-billing.ts'
import { registerBillingRoutes } from './billing-routes.ts'
import { registerCapacityRoutes } from './capacity-routes.ts'
import type { CapacityReservations } from '../capacity/capacity-reservations.ts'

export const SESSION_COOKIE = 'noir_session'

export interface GatewayAppInit {
  auth: AuthService
  /**
   * Origins besides the gateway's own allowed to change state; requests without Origin (CLI, SDK) are allowed
   * (same-origin.ts).
   */
  allowedOrigins?: string[]
  logger?: boolean
  /** Serve HTTPS with this key and certificate (the CLI always does; tests of the rules may use plain HTTP). */
  https?: { key: string; cert: string }
  /** The workload and API-key routes (spec/gateway.md); absent in tests of the auth rules alone. */
  tenants?: { keys: ApiKeys; workloads: TenantWorkloads; secrets?: AccountSecrets; didBinding?: DidBinding; billing?: AccountBilling; capacity?: CapacityReservations }
  /**
   * Told of every answered request (metrics, spec/observability.md): method, the route's pattern ('unmatched'
   * when none; never the path a caller sent), status, ms.
   */
  onRequest?: (method: string, route: string, status: number, ms: number) => void
  /** Serve the customer dashboard at / and /app (spec/dashboard.md); default true. */
  dashboard?: boolean
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])

const str = { type: 'string', maxLength: 1024 } as const
const body = (props: Record<string, unknown>, required: string[]) => ({ body: { type: 'object', additionalProperties: false, properties: props, required } })

function problem(reply: FastifyReply, err: unknown): FastifyReply {
  const e = err instanceof GatewayError ? err : undefined
  const validation = (err as { validation?: unknown; message?: string } | null)?.validation
  const status = e?.status ?? (validation ? 400 : (err as { statusCode?: number })?.statusCode && (err as { statusCode: number }).statusCode < 500 ? (err as { statusCode: number }).statusCode : 500)
  const name = e?.name ?? (validation ? 'InvalidRequestError' : status < 500 ? 'InvalidRequestError' : 'InternalError')
  const detail = e?.message ?? (status < 500 ? (err as Error).message : 'internal error')
  if (e?.name === 'RateLimitedError' && typeof e.data?.retryAfterSeconds === 'number') void reply.header('retry-after', String(e.data.retryAfterSeconds))
  return reply.status(status).type('application/problem+json').send({ type: `https://noirledger.dev/errors/${name}`, title: name, status, detail, name, code: e?.code ?? (status < 500 ? 'ERR_INVALID_REQUEST' : 'ERR_INTERNAL'), ...(e?.data ? { data: e.data } : {}) })
}

function cookieOf(req: FastifyRequest): string | undefined {
  const h = req.headers.cookie
  if (!h) return undefined
  for (const part of h.split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === SESSION_COOKIE) return v.join('=')
  }
  return undefined
}

const setCookie = (reply: FastifyReply, token: string, maxAgeS: number): void =>
  void reply.header('set-cookie', `${SESSION_COOKIE}=${token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=${maxAgeS}`)

const sessionView = (s: Session, current: Session) => ({ id: s.id, createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, expiresAt: s.expiresAt, current: s.hash === current.hash })
const accountView = (a: Account, recoveryCodesLeft?: number) => ({ id: a.id, email: a.email, verified: a.verifiedAt !== null, totp: a.totpSecret !== null, ...(recoveryCodesLeft !== undefined ? { recoveryCodesLeft } : {}) })

export function gatewayApp(init: GatewayAppInit): FastifyInstance {
  // unknown fields are refused, never silently dropped (fastify's default Ajv removes them)
  const options = { logger: init.logger ?? false, bodyLimit: 64 * 1024, ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } } }
  const app = (init.https ? Fastify({ ...options, https: { key: init.https.key, cert: init.https.cert, minVersion: 'TLSv1.2' } }) : Fastify(options)) as unknown as FastifyInstance
  const auth = init.auth
  const allowed = new Set(init.allowedOrigins ?? [])

  registerOpenApi(app)
  app.setErrorHandler((err, _req, reply) => problem(reply, err))
  app.setNotFoundHandler((_req, reply) => problem(reply, new NotFoundError('no such route')))
  // a browser's cross-site request never changes state (CSRF; SameSite=Strict is the first line)
  app.addHook('onRequest', async (req) => refuseCrossSite(req, allowed, auth.publicOrigin))
  const onRequest = init.onRequest
  if (onRequest) {
    app.addHook('onResponse', async (req, reply) => {
      const route = reply.statusCode === 404 && req.routeOptions.url === undefined ? 'unmatched' : (req.routeOptions.url ?? 'unmatched')
      onRequest(METHODS.has(req.method) ? req.method : 'other', route, reply.statusCode, reply.elapsedTime)
    })
  }
  app.addHook('onSend', async (_req, reply) => {
    void reply.header('cache-control', 'no-store')
    void reply.header('x-content-type-options', 'nosniff')
  })

  const who = (req: FastifyRequest): Promise<{ session: Session; account: Account }> => auth.authenticate(cookieOf(req))

  // the routes in a plugin loaded after the OpenAPI generator, so its onRoute hook sees every one of them
  void app.register(async (app) => {
    app.post('/v1/auth/signup', { schema: body({ email: str, password: str }, ['email', 'password']) }, async (req, reply) => {
      const b = req.body as { email: string; password: string }
      await auth.signUp(b.email, b.password)
      return reply.status(202).send({ ok: true, next: 'check your mail for a verification link' })
    })

    app.post('/v1/auth/verify', { schema: body({ token: str }, ['token']) }, async (req) => {
      await auth.verifyEmail((req.body as { token: string }).token)
      return { ok: true, verified: true }
    })

    app.post('/v1/auth/login', { schema: body({ email: str, password: str, totp: str }, ['email', 'password']) }, async (req, reply) => {
      const b = req.body as { email: string; password: string; totp?: string }
      const r = await auth.login(b.email, b.password, b.totp)
      setCookie(reply, r.token, Math.floor((r.session.expiresAt - r.session.createdAt) / 1000))
      return { account: accountView(r.account), session: { id: r.session.id, expiresAt: r.session.expiresAt } }
    })

    app.post('/v1/auth/logout', async (req, reply) => {
      const { session } = await who(req)
      await auth.logout(session)
      void reply.header('set-cookie', `${SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0`)
      return { ok: true }
    })

    app.get('/v1/account', async (req) => {
      const { account } = await who(req)
      return accountView(account, account.totpSecret !== null ? await auth.recoveryCodesLeft(account.id) : undefined)
    })

    app.get('/v1/auth/sessions', async (req) => {
      const { session, account } = await who(req)
      return { sessions: (await auth.sessions(account.id)).map((s) => sessionView(s, session)) }
    })

    app.delete('/v1/auth/sessions/:id', async (req) => {
      const { account } = await who(req)
      if (!(await auth.revoke(account.id, (req.params as { id: string }).id))) throw new NotFoundError('no such session')
      return { ok: true }
    })

    app.post('/v1/auth/totp', async (req) => auth.enrolTotp((await who(req)).account))

    // the pending enrolment's otpauth:// URI as a QR code (SVG, drawn here: the page runs no inline script
    // and loads nothing from elsewhere); a session only, never cached
    app.get('/v1/auth/totp/qr.svg', async (req, reply) => {
      const uri = await auth.pendingTotpUri((await who(req)).account)
      return reply.type('image/svg+xml').send(renderSVG(uri, { border: 2 }))
    })

    app.post('/v1/auth/totp/confirm', { schema: body({ code: str }, ['code']) }, async (req) => {
      const { account, session } = await who(req)
      const recoveryCodes = await auth.confirmTotp(account, session, (req.body as { code: string }).code)
      return { ok: true, totp: true, recoveryCodes }
    })

    app.post('/v1/auth/recovery-codes', { schema: body({ code: str }, ['code']) }, async (req) => {
      const { account } = await who(req)
      return { recoveryCodes: await auth.renewRecoveryCodes(account, (req.body as { code: string }).code) }
    })

    app.post('/v1/auth/reset', { schema: body({ email: str }, ['email']) }, async (req, reply) => {
      await auth.requestReset((req.body as { email: string }).email)
      return reply.status(202).send({ ok: true, next: 'if the address has an account, a reset link is on its way' })
    })

    app.post('/v1/auth/reset/confirm', { schema: body({ token: str, password: str, totp: str }, ['token', 'password']) }, async (req) => {
      const b = req.body as { token: string; password: string; totp?: string }
      await auth.reset(b.token, b.password, b.totp)
      return { ok: true, next: 'log in with the new password' }
    })

    if (init.dashboard !== false) registerDashboard(app)
    if (init.tenants) registerWorkloadRoutes(app, { ...init.tenants, sessionAccount: async (req) => (await who(req)).account.id })
    if (init.tenants?.billing) registerBillingRoutes(app, { keys: init.tenants.keys, billing: init.tenants.billing, sessionAccount: async (req) => (await who(req)).account.id })
    if (init.tenants?.capacity) registerCapacityRoutes(app, { keys: init.tenants.keys, capacity: init.tenants.capacity, sessionAccount: async (req) => (await who(req)).account.id })
    if (init.tenants?.secrets) registerSecretRoutes(app, { keys: init.tenants.keys, secrets: init.tenants.secrets, sessionAccount: async (req) => (await who(req)).account.id })
  })

  return app
}
