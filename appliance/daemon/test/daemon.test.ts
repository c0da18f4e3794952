// The daemon as a real process: ready file, local API with token, remote actor messaging between two
// daemons, typed errors over the API, clean shutdown on SIGTERM.
import t from 'tap'
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { DaemonCluster } from '../../../scripts/testing/daemons.ts'
import { ApiClient, ApiCallError } from '../../../cli/api-client.ts'

const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

t.test('two daemons: one asks the other\'s node actor over the mesh; errors come back typed', async (t) => {
  const a = await cluster.start()
  const b = await cluster.start({ bootstrap: a.multiaddrs })

  t.equal(statSync(join(a.home, 'api.json')).mode & 0o777, 0o600, 'api.json is private to its owner')

  const reply = await b.api.post<{ reply: { pong: boolean; did: string } }>('/v1/actor/send', {
    to: `${a.did}/node`, behavior: '/noir/node/ping', body: {}, ask: true,
  })
  t.same(reply.reply.pong, true)
  t.equal(reply.reply.did, a.did, 'the answer comes from the first node')

  const echo = await b.api.post<{ reply: unknown }>('/v1/actor/send', { to: `${a.did}/node`, behavior: '/noir/node/echo', body: { n: [1, 2, 3] }, ask: true })
  t.same(echo.reply, { n: [1, 2, 3] }, 'a body crosses the mesh unchanged')

  const missing = await b.api.post('/v1/actor/send', { to: `${a.did}/nobody`, behavior: '/noir/node/ping', ask: true }).catch((e: unknown) => e)
  t.ok(missing instanceof ApiCallError)
  t.equal((missing as ApiCallError).name, 'ActorNotFoundError', 'a missing remote actor is a typed error, not a time-out')
  t.equal((missing as ApiCallError).status, 404)

  const unknown = await b.api.post('/v1/actor/send', { to: `${a.did}/node`, behavior: '/noir/node/nope', ask: true }).catch((e: unknown) => e)
  t.equal((unknown as ApiCallError).name, 'UnknownBehaviorError')

  const bad = await b.api.post('/v1/actor/send', { behavior: '/x' }).catch((e: unknown) => e)
  t.equal((bad as ApiCallError).name, 'InvalidRequestError')
  t.equal((bad as ApiCallError).status, 400)

  const noToken = new ApiClient({ url: a.api.url, token: 'wrong' })
  const unauth = await noToken.get('/v1/status').catch((e: unknown) => e)
  t.equal((unauth as ApiCallError).name, 'UnauthorizedError')
  t.equal((unauth as ApiCallError).status, 401)

  const peers = await b.api.get<{ peers: Array<{ did: string; latencyMs: number | null }> }>('/v1/peers')
  t.ok(peers.peers.some((p) => p.did === a.did), 'b lists a as a connected peer')

  const code = await a.stop()
  t.equal(code.code, 0, 'SIGTERM stops the daemon cleanly (exit 0)')
  t.notOk(existsSync(join(a.home, 'api.json')), 'api.json is removed on shutdown')
  t.ok(a.logLines().some((l) => l.msg === 'stopped'), 'it logged a structured "stopped" line')
})

t.test('a restarted daemon remembers its peers from the level peer store and reaches them without bootstrap', async (t) => {
  const a = await cluster.start()
  const b = await cluster.start({ bootstrap: a.multiaddrs })
  const first = await b.api.post<{ reply: { did: string } }>('/v1/actor/send', { to: `${a.did}/node`, behavior: '/noir/node/ping', ask: true })
  t.equal(first.reply.did, a.did)
  t.equal((await b.stop()).code, 0)
  const again = await cluster.start({ home: b.home })
  t.equal(again.did, b.did, 'same home, same node')
  const r = await again.api.post<{ reply: { did: string } }>('/v1/actor/send', { to: `${a.did}/node`, behavior: '/noir/node/ping', ask: true, timeoutMs: 20_000 })
  t.equal(r.reply.did, a.did, 'with no bootstrap list, it dials the peer it knew from its stored peer store')
})

t.test('the API is also served on the unix socket in the home', async (t) => {
  const d = await cluster.start({ apiViaSocket: true })
  t.match(d.api.socket, /api\.sock$/)
  const s = await d.api.get<{ did: string }>('/v1/status')
  t.equal(s.did, d.did)
})
