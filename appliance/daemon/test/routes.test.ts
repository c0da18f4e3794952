// The daemon's route groups each take only what they read and call: driven here with small fakes, no
// daemon, mesh or actor system behind them.
import t from 'tap'
import type { ApiRequest, ApiRoute, JsonValue } from '../service.ts'
import { isNdjson } from '../service.ts'
import { actorRoutes, discoveryRoutes, nodeRoutes, pubsubRoutes, revocationRoutes } from '../routes.ts'
import { InvalidRequestError } from '../errors.ts'
import { checkBody } from '../api-server.ts'
import { SchemaValidator } from '../../../core/schema-check.ts'
import type { BroadcastMessage } from '../../../p2p/pubsub.ts'

function call(routes: ApiRoute[], method: string, path: string, body?: JsonValue, query = ''): ReturnType<ApiRoute['handler']> {
  const route = routes.find((r) => r.method === method && r.path === path)
  if (!route) throw new Error(`no route ${method} ${path}`)
  if (route.body) checkBody(new SchemaValidator(route.body), body) // as the API server does before the handler
  const req: ApiRequest = { params: {}, query: new URLSearchParams(query), body, signal: new AbortController().signal }
  return route.handler(req)
}

t.test('actor messaging asks or sends through the system it is given, and refuses malformed proofs', async (t) => {
  const calls: unknown[][] = []
  const system = {
    did: 'did:key:zNode',
    ask: async (...a: unknown[]) => (calls.push(['ask', ...a]), { ok: 1 }),
    send: async (...a: unknown[]) => void calls.push(['send', ...a]),
    actorTree: () => [{ address: 'did:key:zNode/market' }],
  }
  const routes = actorRoutes(system)
  t.same(await call(routes, 'GET', '/v1/node/actors'), { did: 'did:key:zNode', actors: [{ address: 'did:key:zNode/market' }] })
  t.same(await call(routes, 'POST', '/v1/actor/send', { to: 'did:key:z/x', behavior: '/b', ask: true, timeoutMs: 50 }), { reply: { ok: 1 } })
  t.same(await call(routes, 'POST', '/v1/actor/send', { to: 'did:key:z/x', behavior: '/b', body: 7 }), { sent: true })
  t.same(calls, [['ask', 'did:key:z/x', '/b', null, { timeoutMs: 50 }], ['send', 'did:key:z/x', '/b', 7, undefined]])
  await t.rejects(async () => call(routes, 'POST', '/v1/actor/send', { to: 'x', behavior: '/b', proofs: [1] }), InvalidRequestError)
  const refused = (body: JsonValue | undefined): InvalidRequestError => {
    try {
      void call(routes, 'POST', '/v1/actor/send', body)
    } catch (err) {
      return err as InvalidRequestError
    }
    throw new Error('not refused')
  }
  t.same((refused({ behavior: '/b', timeoutMs: 0, extra: 1 }).data as { issues: { path: string }[] }).issues.map((i) => i.path).sort(), ['$.extra', '$.timeoutMs', '$.to'], 'every issue, each by its field')
  t.match(refused(undefined).message, /\$: must be object \(got null\)/, 'no body at all')
  t.match(refused({ to: 'x', behavior: '/b', proofs: Array(17).fill('p') }).message, /\$\.proofs: must have at most 16 items/)
  t.same(calls.length, 2, 'no refused body reached the system')
})

t.test('revocations, the stop and the route list need only the revocations, a stop and the route list', async (t) => {
  const revoked: string[] = []
  const rev = revocationRoutes({ revoke: async (token) => (revoked.push(token), { token: 'h', issuer: 'i', at: 1, sig: 's' }), list: async () => [] })
  t.same(await call(rev, 'POST', '/v1/capabilities/revoke', { token: 'tok' }), { revocation: { token: 'h', issuer: 'i', at: 1, sig: 's' } })
  t.same(revoked, ['tok'])
  t.same(await call(rev, 'GET', '/v1/revocations'), { revocations: [] })

  const stopped = Promise.withResolvers<void>()
  t.same(await call(nodeRoutes({ stop: async () => stopped.resolve() }), 'POST', '/v1/node/stop'), { stopping: true })
  await stopped.promise

  t.same(await call(discoveryRoutes({ list: () => [{ method: 'GET', path: '/v1' }] }), 'GET', '/v1'), { routes: [{ method: 'GET', path: '/v1' }] })
})

t.test('a pubsub subscription streams what the broadcast delivers and unsubscribes when the client goes', async (t) => {
  let handler: ((m: BroadcastMessage) => void) | undefined
  let unsubscribed = false
  const broadcast = {
    publish: async () => ({ recipients: 0 }),
    subscribe: (_topic: string, h: (m: BroadcastMessage) => void) => {
      handler = h
      return () => void (unsubscribed = true)
    },
  }
  const route = pubsubRoutes(broadcast).find((r) => r.path === '/v1/pubsub/subscribe')!
  const client = new AbortController()
  const out = await route.handler({ params: {}, query: new URLSearchParams('topic=t'), body: undefined, signal: client.signal })
  if (!isNdjson(out)) return t.fail('a stream')
  const it = out.ndjson[Symbol.asyncIterator]()
  t.same((await it.next()).value, { subscribed: 't' })
  handler!({ topic: 't', from: 'did:key:z', body: 1 } as unknown as BroadcastMessage)
  t.match((await it.next()).value, { topic: 't', body: 1 })
  // the API server stops reading a stream whose client went away (api-server.ts)
  client.abort()
  await it.return?.(undefined)
  t.ok(unsubscribed)
})
