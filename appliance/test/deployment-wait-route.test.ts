// The node API's status long poll, `GET /v1/deployments/:id?until=PHASES&events=N&waitMs=N` (spec/orchestration.md
// "Local API"), over real HTTP in front of a stand-in orchestrator that records what it is asked: the query read
// into the wait (bounded), a plain status without `until`/`events`, each bad value a 400 naming its parameter,
// and a caller that goes away ending the wait at the orchestrator. The orchestrator's side of the wait (a new
// event, a phase, the time) is actors/test/orchestrator.test.ts.
import t from 'tap'
import { ApiServer } from '../daemon/api-server.ts'
import { ApiClient, ApiCallError } from '../daemon/api-client.ts'
import { deploymentRoutes, type DeploymentRoutesInput } from '../node-services/orchestration-routes.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'

const TOKEN = 'b'.repeat(43)

interface Asked { id: string; phases: readonly string[]; waitMs: number; events: number | undefined; signal: AbortSignal | undefined }

t.test('the status long poll: its query, its bounds, its bad values, and a caller that goes away', async (t) => {
  const asked: Asked[] = []
  const plain: string[] = []
  let hold: ((s: AbortSignal) => Promise<void>) | undefined
  const view = (id: string) => ({ id, phase: 'bidding', events: [], eventsDropped: 0 }) as unknown as DeploymentView
  const o = {
    status: (id: string) => (plain.push(id), view(id)),
    awaitPhase: async (id: string, phases: readonly string[], waitMs: number, x: { events?: number; signal?: AbortSignal } = {}) => {
      asked.push({ id, phases, waitMs, events: x.events, signal: x.signal })
      if (hold && x.signal) await hold(x.signal)
      return view(id)
    },
  } as unknown as DeploymentRoutesInput
  const api = new ApiServer({ token: TOKEN })
  for (const r of deploymentRoutes(o)) api.add(r)
  const url = await api.listen(0)
  t.teardown(() => api.close())
  const c = new ApiClient({ url, token: TOKEN })

  await c.get('/v1/deployments/d1?until=running,failed&events=3&waitMs=500')
  t.same(asked.map(({ signal: _s, ...a }) => a), [{ id: 'd1', phases: ['running', 'failed'], waitMs: 500, events: 3 }], 'until, events and waitMs reach the orchestrator')
  t.ok(asked[0]!.signal instanceof AbortSignal, 'with the request\'s signal')
  await c.get('/v1/deployments/d2?events=0')
  t.same(asked.slice(1).map(({ signal: _s, ...a }) => a), [{ id: 'd2', phases: [], waitMs: 30_000, events: 0 }], 'events alone: a long poll for the next event, 30 s by default')
  await c.get('/v1/deployments/d3?until=running&waitMs=3600000')
  t.equal(asked[2]!.waitMs, 60_000, 'a wait beyond 60 s is 60 s')
  t.equal(asked[2]!.events, undefined, 'no events: the phase only')
  await c.get('/v1/deployments/d4?waitMs=5')
  await c.get('/v1/deployments/d5')
  t.same(plain.filter((x) => x === 'd4' || x === 'd5'), ['d4', 'd5'], 'neither until nor events: a plain status')
  t.equal(asked.length, 3)

  const refusals: [string, string, RegExp][] = [
    ['events=-1', 'events', /'events' is how many of the deployment's events the caller has seen: a whole number from 0 \(not '-1'\)/],
    ['events=1.5', 'events', /not '1\.5'/],
    ['events=abc', 'events', /not 'abc'/],
    ['events=', 'events', /whole number/],
    ['events=1e3', 'events', /not '1e3'/],
    ['until=running&events=99999999999999999', 'events', /whole number/],
    ['until=nope', 'until', /'until' names deployment phases \(preparing, .*\): not 'nope'/],
    ['until=', 'until', /'until' names deployment phases/],
    ['until=running&waitMs=-5', 'waitMs', /'waitMs' must be a whole number of ms from 0 \(at most 60000 are waited; not '-5'\)/],
    ['until=running&waitMs=soon', 'waitMs', /not 'soon'/],
  ]
  for (const [q, field, message] of refusals) {
    const err = await c.get(`/v1/deployments/d6?${q}`).then(() => null, (e: unknown) => e)
    t.ok(err instanceof ApiCallError, `${q}: refused`)
    const e = err as ApiCallError
    t.same([e.status, e.name, (e.data as { field?: string } | undefined)?.field], [400, 'InvalidRequestError', field], `${q}: 400 naming ${field}`)
    t.match(e.message, message, `${q}: ${e.message}`)
  }
  t.equal(asked.length, 3, 'nothing refused reached the orchestrator')

  // the caller goes away while the orchestrator waits: the wait's signal aborts (else this test times out)
  let gone!: () => void
  const ended = new Promise<void>((r) => (gone = r))
  hold = (s) => new Promise<void>((resolve) => s.addEventListener('abort', () => {
    gone()
    resolve()
  }, { once: true }))
  const ac = new AbortController()
  const req = c.get('/v1/deployments/d7?until=running&waitMs=60000', { signal: ac.signal }).then(() => 'answered', (e: unknown) => (e as Error).name)
  while (asked.length < 4) await new Promise((r) => setTimeout(r, 5))
  ac.abort()
  t.equal(await req, 'AbortError', 'the client gave up')
  await ended
  t.ok(asked[3]!.signal?.aborted, 'and the wait at the orchestrator ended with it')
})
