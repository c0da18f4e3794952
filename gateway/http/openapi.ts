// The gateway's OpenAPI 3.1 document, served at GET /v1/openapi.json (spec/gateway.md "OpenAPI"): made by
// @fastify/swagger from the same JSON Schemas fastify validates requests with, so the document and the
// validation cannot drift. Each route gets its summary, its security (session cookie and/or API key, or
// none) and the RFC 9457 problem document as its error answer; only the document changes here, never what
// fastify validates or sends.
import swagger from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'

type Auth = 'none' | 'session' | 'session-or-key'
const ROUTES: Record<string, { summary: string; auth: Auth; ok?: number; /** a second success status */ also?: number }> = {
  'POST /v1/auth/signup': { summary: 'Create an account (a verification link is mailed)', auth: 'none', ok: 202 },
  'POST /v1/auth/verify': { summary: 'Verify the email address with the mailed token', auth: 'none' },
  'POST /v1/auth/login': { summary: 'Log in (password, and a TOTP or recovery code when enrolled); sets the session cookie', auth: 'none' },
  'POST /v1/auth/logout': { summary: 'End this session', auth: 'session' },
  'GET /v1/account': { summary: 'The signed-in account', auth: 'session' },
  'GET /v1/auth/sessions': { summary: 'The account\'s sessions', auth: 'session' },
  'DELETE /v1/auth/sessions/{id}': { summary: 'End one of the account\'s sessions', auth: 'session' },
  'POST /v1/auth/totp': { summary: 'Start TOTP enrolment (secret and otpauth URI)', auth: 'session' },
  'GET /v1/auth/totp/qr.svg': { summary: 'The pending TOTP enrolment as a QR code (SVG) to scan with an authenticator app', auth: 'session' },
  'POST /v1/auth/totp/confirm': { summary: 'Confirm TOTP with a code; answers the recovery codes once', auth: 'session' },
  'POST /v1/auth/recovery-codes': { summary: 'Replace the recovery codes (needs a TOTP code)', auth: 'session' },
  'POST /v1/auth/reset': { summary: 'Mail a password-reset link', auth: 'none', ok: 202 },
  'POST /v1/auth/reset/confirm': { summary: 'Set a new password with the mailed token (and a TOTP code when enrolled)', auth: 'none' },
  'POST /v1/keys': { summary: 'Make an API key (the token is in this answer only)', auth: 'session', ok: 201 },
  'POST /v1/keys/signed': { summary: 'Register an API key the account\'s own DID signed (a capability token to the gateway\'s DID)', auth: 'session', ok: 201 },
  'POST /v1/wallet/did/challenge': { summary: 'A single-use challenge to bind your own did:key as the account\'s wallet', auth: 'session' },
  'PUT /v1/wallet/did': { summary: 'Bind your own did:key (its Ed25519 signature over the challenge); the gateway\'s key for the wallet is dropped', auth: 'session' },
  'GET /v1/keys': { summary: 'The account\'s API keys (never their tokens)', auth: 'session' },
  'DELETE /v1/keys/{id}': { summary: 'Revoke an API key', auth: 'session' },
  'POST /v1/workloads': { summary: 'Deploy a workload (idempotent with a key)', auth: 'session-or-key', ok: 201 },
  'GET /v1/workloads': { summary: 'The account\'s deployments', auth: 'session-or-key' },
  'GET /v1/workloads/{id}': { summary: 'One deployment\'s status and events', auth: 'session-or-key' },
  'POST /v1/workloads/{id}/stop': { summary: 'Stop a deployment', auth: 'session-or-key' },
  'GET /v1/workloads/{id}/usage': { summary: 'A deployment\'s metered usage', auth: 'session-or-key' },
  'GET /v1/workloads/{id}/logs': { summary: 'A replica\'s log lines as Server-Sent Events (Last-Event-ID resumes)', auth: 'session-or-key' },
  'GET /v1/wallet': { summary: 'The account\'s NLC wallet: available, pending (held) and posted µNLC, its open holds (short of funds: when each deployment stops), and where to deposit', auth: 'session-or-key' },
  'GET /v1/wallet/top-ups': { summary: 'The account\'s top-ups (confirmed chain deposits), newest first', auth: 'session-or-key' },
  'GET /v1/usage': { summary: 'Usage charged to the account per day and workload (from, to: YYYY-MM-DD)', auth: 'session-or-key' },
  'GET /v1/invoices': { summary: 'Monthly invoices of the account\'s charges, newest first', auth: 'session-or-key' },
  'GET /v1/invoices/{id}': { summary: 'One invoice (inv-YYYY-MM)', auth: 'session-or-key' },
  'POST /v1/capacity/quotes': { summary: 'Quote capacity (resources per slot, slots, lane, duration): the price the mesh\'s signed bids give now', auth: 'session-or-key', ok: 201 },
  'POST /v1/capacity': { summary: 'Reserve a quote: its total is held from the wallet and its time starts (once per quote)', auth: 'session-or-key', ok: 201 },
  'GET /v1/capacity': { summary: 'The account\'s capacity reservations, newest first', auth: 'session-or-key' },
  'GET /v1/capacity/{id}': { summary: 'One reservation: its slots, the deployments inside, its state and charge', auth: 'session-or-key' },
  'POST /v1/capacity/{id}/cancel': { summary: 'End a reservation now: its deployments stop, the minutes it lasted are charged, the rest released', auth: 'session-or-key' },
  'PUT /v1/secrets/{name}': { summary: 'Create (201) or rotate (200) a secret; a rotation restarts the running replicas naming it', auth: 'session-or-key', ok: 200, also: 201 },
  'GET /v1/secrets': { summary: 'The account\'s secrets: names and versions, never values', auth: 'session-or-key' },
  'DELETE /v1/secrets/{name}': { summary: 'Delete a secret (another account\'s answers 404 like a missing one)', auth: 'session-or-key' },
}

const PROBLEM = {
  type: 'object' as const,
  required: ['type', 'title', 'status', 'detail', 'name', 'code'],
  properties: {
    type: { type: 'string' as const }, title: { type: 'string' as const }, status: { type: 'integer' as const }, detail: { type: 'string' as const },
    name: { type: 'string' as const, description: 'the typed error\'s name, e.g. NotFoundError' }, code: { type: 'string' as const }, data: { type: 'object' as const },
  },
}

const security = (a: Auth) => (a === 'none' ? [] : a === 'session' ? [{ session: [] }] : [{ session: [] }, { apiKey: [] }])

/** Registers the document generator; call before any route is declared. */
export function registerOpenApi(app: FastifyInstance): void {
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'NoirLedger gateway API', version: '1', description: 'Accounts, API keys, workloads and secrets (spec/auth.md, spec/gateway.md, spec/secrets.md). Errors are RFC 9457 problem documents.' },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'noir_session' },
          apiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'capability token (JWT)' },
        },
        schemas: { Problem: PROBLEM },
      },
    },
    transform: ({ schema, url, route }) => {
      const method = (Array.isArray(route.method) ? route.method[0] : route.method) as string
      const openUrl = url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
      const doc = ROUTES[`${method} ${openUrl}`]
      const params = [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!)
      const s = { ...(schema ?? {}) } as Record<string, unknown>
      if (params.length > 0 && !s.params) s.params = { type: 'object', required: params, properties: Object.fromEntries(params.map((p) => [p, { type: 'string' }])) }
      const ok = doc?.ok ?? 200
      s.response = {
        [ok]: openUrl.endsWith('/logs')
          ? { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }
          : openUrl.endsWith('.svg')
            ? { description: 'an SVG image', content: { 'image/svg+xml': { schema: { type: 'string' } } } }
            : { description: 'the answer', type: 'object' },
        ...(doc?.also ? { [doc.also]: { description: 'the answer', type: 'object' } } : {}),
        '4XX': { description: 'a typed error (problem+json)', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
        '5XX': { description: 'a typed error (problem+json)', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
      }
      if (doc) {
        s.summary = doc.summary
        s.security = security(doc.auth)
      }
      return { schema: s as never, url }
    },
  })
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}

/** Method and OpenAPI path of every documented route (for the test that every route is in the document). */
export const DOCUMENTED_ROUTES = Object.keys(ROUTES)
