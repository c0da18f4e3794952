// The ingress's per-route idle clock (appliance/ingress/traffic.ts), on an injected clock.
import t from 'tap'
import { TrafficClock } from '../ingress/traffic.ts'

t.test('a route is idle only with no connection open, counted from the last close', async (t) => {
  let now = 1_000
  const c = new TrafficClock(() => now)
  t.equal(c.idleMs('web'), undefined, 'a route that never carried traffic has no idle time')
  c.opened('web')
  now += 5_000
  t.equal(c.idleMs('web'), 0, 'an open connection keeps the route busy however long it lasts')
  c.opened('web')
  c.closed('web')
  now += 5_000
  t.equal(c.idleMs('web'), 0, 'still one open')
  c.closed('web')
  t.equal(c.idleMs('web'), 0, 'idle starts at the last close')
  now += 2_500
  t.equal(c.idleMs('web'), 2_500)
  t.same(c.snapshot(), [{ route: 'web', active: 0, lastTrafficAt: 11_000 }])
  c.closed('web')
  c.closed('api')
  t.same(c.snapshot(), [{ route: 'web', active: 0, lastTrafficAt: 11_000 }], 'an unmatched close changes nothing')
})
