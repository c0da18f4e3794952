// The gateway's billing config (gateway/billing/billing-config.ts): every field checked by name, the hold window
// in hours or seconds (not both), the funds grace; and hold sizes for windows shorter than an hour.
import t from 'tap'
import { billingConfig } from '../billing/billing-config.ts'
import { holdFor, DEFAULT_HOLD_POLICY } from '../billing/hold-size.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'
import { InvalidRequestError } from '../errors.ts'

t.test('the hold window, in hours or seconds, and the funds grace', async (t) => {
  t.same(billingConfig({ policy: { holdHours: 2 } }).policy, { holdSeconds: 7200 }, 'hours become seconds')
  t.same(billingConfig({ policy: { holdSeconds: 90 } }).policy, { holdSeconds: 90 })
  t.same(billingConfig({ fundsGraceMs: 60_000 }).fundsGraceMs, 60_000)
  t.equal(billingConfig({}).fundsGraceMs, undefined, 'absent: the default (half the window) applies')
  const refused = (raw: unknown, field: string) => {
    try {
      billingConfig(raw)
      t.fail(`${JSON.stringify(raw)} was accepted`)
    } catch (err) {
      t.ok(err instanceof InvalidRequestError, `${JSON.stringify(raw)}: InvalidRequestError`)
      t.equal((err as InvalidRequestError).data?.field, field, `naming ${field}`)
    }
  }
  refused({ policy: { holdHours: 1, holdSeconds: 60 } }, 'policy.holdSeconds')
  refused({ policy: { holdSeconds: 0 } }, 'policy.holdSeconds')
  refused({ policy: { holdSeconds: 1.5 } }, 'policy.holdSeconds')
  refused({ policy: { holdMinutes: 5 } }, 'policy.holdMinutes')
  refused({ fundsGraceMs: -1 }, 'fundsGraceMs')
  refused({ fundsGraceMs: '10' }, 'fundsGraceMs')
})

t.test('a hold for a window shorter than an hour: the cap for that share of an hour, rounded up to a µNLC', async (t) => {
  const w = validateWorkload({ apiVersion: 'noir/v1', kind: 'service', name: 'web', runtime: { type: 'container', image: 'x' }, resources: { cpu: 1, memory: '64Mi' }, constraints: { maxPrice: 2_000_000 }, service: { replicas: 2 } })
  t.equal(holdFor(w, { ...DEFAULT_HOLD_POLICY, holdSeconds: 10 }), 11_112n, '2,000,000 x 2 replicas x 10/3600, rounded up')
  t.equal(holdFor(w, DEFAULT_HOLD_POLICY), 4_000_000n, 'an hour: the cap x replicas')
})
