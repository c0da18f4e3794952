import t from 'tap'
import { reputation, uptimeShare, wilsonLower } from '../reputation.ts'
import { defaultTrustPolicy, replicationProbability, trustPolicyFrom } from '../policy.ts'
import { InvalidTrustConfigError } from '../errors.ts'

t.test('a fresh identity has trust 0 and needs evidence to climb', async (t) => {
  t.equal(reputation({ streak: 0, strikes: 0, uptime: 1 }), 0)
  t.equal(wilsonLower(0, 0), 0)
  const one = reputation({ streak: 1, strikes: 0, uptime: 1 })
  const ten = reputation({ streak: 10, strikes: 0, uptime: 1 })
  const fifty = reputation({ streak: 50, strikes: 0, uptime: 1 })
  t.ok(one > 0 && one < 0.5, `one valid result is little evidence (${one})`)
  t.ok(ten > one && fifty > ten && fifty < 1, `more consecutive valid results, more trust (${one} < ${ten} < ${fifty})`)
  t.equal(wilsonLower(10, 10).toFixed(3), (10 / (10 + 1.6449 ** 2)).toFixed(3), 'with no failure the bound is s / (s + z^2)')
})

t.test('strikes and missed heartbeats lower trust; a wrong result (streak 0) resets it', async (t) => {
  const clean = reputation({ streak: 20, strikes: 0, uptime: 1 })
  t.ok(reputation({ streak: 20, strikes: 1, uptime: 1 }) < clean)
  t.equal(reputation({ streak: 20, strikes: 0, uptime: 0.5 }), Math.round(clean * 0.5 * 10_000) / 10_000)
  t.equal(reputation({ streak: 0, strikes: 1, uptime: 1 }), 0)
})

t.test('uptime is the share of minutes with a heartbeat since first seen, over the last hour', async (t) => {
  t.equal(uptimeShare([100, 101, 102, 103], 100, 103), 1)
  t.equal(uptimeShare([100, 102], 100, 103), 0.5)
  t.equal(uptimeShare([], 100, 103), 0)
  // seen for two hours, beats only in the first: nothing in the last hour
  t.equal(uptimeShare([0, 1, 2], 0, 120), 0)
})

t.test('replication falls as the streak grows, never below the floor', async (t) => {
  const p = defaultTrustPolicy
  t.equal(replicationProbability(p, 0), 1)
  t.equal(replicationProbability(p, 2), 0.5)
  t.ok(replicationProbability(p, 4) < replicationProbability(p, 3))
  t.equal(replicationProbability(p, 100), p.replicateFloor)
})

t.test('a policy from config: defaults kept, every bad field named', async (t) => {
  t.same(trustPolicyFrom(undefined), defaultTrustPolicy)
  t.equal(trustPolicyFrom({ validationRate: 0.1 }).validationRate, 0.1)
  const err = t.throws(() => trustPolicyFrom({ validationRate: 2, readmitAfter: 1.5, nope: 1 })) as InvalidTrustConfigError
  t.ok(err instanceof InvalidTrustConfigError)
  t.match(err.message, /validationRate/)
  t.match(err.message, /readmitAfter/)
  t.match(err.message, /nope: unknown field/)
})
