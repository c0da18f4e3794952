// Token buckets at the ingress (appliance/ingress/rate-limit.ts), on an injected clock.
import t from 'tap'
import { RateLimiter } from '../ingress/rate-limit.ts'

t.test('a client gets its burst, then one connection per refill; another client has its own bucket', async (t) => {
  let now = 0
  const l = new RateLimiter({ perClient: { perSecond: 2, burst: 3 } }, () => now)
  for (let i = 0; i < 3; i++) t.same(l.admit('web', '10.0.0.1'), { ok: true }, `burst ${i + 1}`)
  t.same(l.admit('web', '10.0.0.1'), { ok: false, scope: 'client', retryAfterMs: 500 }, 'past the burst: wait one refill')
  t.same(l.admit('web', '10.0.0.2'), { ok: true }, 'another address is not held back')
  t.same(l.admit('api', '10.0.0.1'), { ok: true }, 'another route has its own buckets')
  now += 250
  t.same(l.admit('web', '10.0.0.1'), { ok: false, scope: 'client', retryAfterMs: 250 }, 'a refusal takes no token')
  now += 250
  t.same(l.admit('web', '10.0.0.1'), { ok: true }, 'a refilled token')
  now += 60_000
  for (let i = 0; i < 3; i++) t.same(l.admit('web', '10.0.0.1'), { ok: true }, 'a long pause refills only up to the burst')
  t.equal(l.admit('web', '10.0.0.1').ok, false)
})

t.test('a route limit holds every client back together; a refused client takes nothing from the route', async (t) => {
  let now = 0
  const l = new RateLimiter({ perClient: { perSecond: 1, burst: 1 }, perRoute: { perSecond: 1, burst: 2 } }, () => now)
  t.equal(l.admit('web', 'a').ok, true)
  t.match(l.admit('web', 'a'), { ok: false, scope: 'client' })
  t.equal(l.admit('web', 'b').ok, true, 'the route still had a token: the refusal of a did not spend it')
  t.match(l.admit('web', 'c'), { ok: false, scope: 'route', retryAfterMs: 1000 })
  now += 1000
  t.equal(l.admit('web', 'c').ok, true)
})

t.test('many addresses: the buckets kept stay bounded and a dropped client starts full', async (t) => {
  const now = 0
  const l = new RateLimiter({ perClient: { perSecond: 1, burst: 1 } }, () => now)
  for (let i = 0; i < 10_050; i++) l.admit('web', `10.0.${i >> 8}.${i & 255}`)
  t.equal(l.admit('web', '10.0.0.0').ok, true, 'the first address was dropped (least recently used), so it starts again with its burst')
  t.equal(l.admit('web', '10.0.0.0').ok, false, 'and is limited again')
})

t.test('peek takes nothing; take spends what peek saw (two limiters asked before either spends)', async (t) => {
  let now = 0
  const l = new RateLimiter({ perClient: { perSecond: 1, burst: 2 }, perRoute: { perSecond: 1, burst: 5 } }, () => now)
  for (let i = 0; i < 10; i++) t.same(l.peek('web', 'a'), { ok: true })
  l.take('web', 'a')
  l.take('web', 'a')
  t.same(l.peek('web', 'a'), { ok: false, scope: 'client', retryAfterMs: 1000 }, 'two taken: the client bucket is empty')
  t.same(l.peek('web', 'b'), { ok: true }, 'the route bucket still has three')
})
