import t from 'tap'
import { PhiAccrualDetector, phiOf } from '../failure/phi-accrual.ts'

t.test('phi stays low while heartbeats arrive on time and rises with silence', async (t) => {
  const d = new PhiAccrualDetector({ firstIntervalMs: 200, minStdDevMs: 20 })
  let now = 0
  for (let i = 0; i < 20; i++) d.heartbeat((now += 200))
  t.ok(d.phi(now + 100) < 1, `phi right after a beat ${d.phi(now + 100)}`)
  const phis = [300, 400, 600, 1000].map((dt) => d.phi(now + dt))
  for (let i = 1; i < phis.length; i++) t.ok(phis[i]! > phis[i - 1]!, `phi grows: ${phis.join(', ')}`)
  t.ok(d.phi(now + 1000) > 8, 'five missed beats is a sure failure')
})

t.test('irregular heartbeats make the detector more patient', async (t) => {
  const steady = new PhiAccrualDetector({ firstIntervalMs: 200, minStdDevMs: 10 })
  const jittery = new PhiAccrualDetector({ firstIntervalMs: 200, minStdDevMs: 10 })
  let a = 0
  let b = 0
  for (let i = 0; i < 50; i++) {
    steady.heartbeat((a += 200))
    jittery.heartbeat((b += i % 2 === 0 ? 100 : 300))
  }
  t.ok(jittery.phi(b + 450) < steady.phi(a + 450))
})

t.test('the acceptable pause shifts the curve', async (t) => {
  const strict = new PhiAccrualDetector({ firstIntervalMs: 100 })
  const lenient = new PhiAccrualDetector({ firstIntervalMs: 100, acceptablePauseMs: 500 })
  for (let i = 1; i <= 10; i++) {
    strict.heartbeat(i * 100)
    lenient.heartbeat(i * 100)
  }
  t.ok(lenient.phi(1400) < strict.phi(1400))
})

t.test('phi is 0 before the first heartbeat and finite for very long silences', async (t) => {
  const d = new PhiAccrualDetector()
  t.equal(d.phi(1e9), 0)
  d.heartbeat(0)
  t.ok(Number.isFinite(d.phi(1e9)))
  t.ok(phiOf(100, 100, 10) > 0.2 && phiOf(100, 100, 10) < 0.4, 'at the mean, phi = -log10(0.5)')
})
