// The orchestrator's idle clock for scale to zero (actors/orchestrator/idle-watch.ts): a service with
// scale.min 0 is due once no ingress has traffic open and none had any for its idle time, counted from the
// later of its last traffic and when it became running; open connections keep it up; stale reports do not.
import t from 'tap'
import { IdleWatch, REPORT_STALE_MS } from '../orchestrator/idle-watch.ts'
import type { DeploymentView } from '../deployment/model.ts'
import { validateWorkload, type Workload } from '../workload/workload.ts'

const w = (scale?: object): Workload => validateWorkload({ apiVersion: 'noir/v1', kind: 'service', name: 'web', runtime: { type: 'container', image: 'x' }, resources: { cpu: 0.1, memory: '16Mi' }, service: { replicas: 1, ...(scale ? { scale } : {}) } })
const view = (id: string, phase: string, runningAt: number): DeploymentView => ({ id, phase, createdAt: 0, history: [{ phase: 'running', at: runningAt }] }) as unknown as DeploymentView

t.test('due after idleSeconds without traffic, from the later of running and the last traffic', async (t) => {
  const watch = new IdleWatch()
  const workloads: Record<string, Workload> = { z: w({ min: 0, max: 1, idleSeconds: 10 }), plain: w() }
  const of = (id: string) => workloads[id]
  const views = [view('z', 'running', 1_000), view('plain', 'running', 1_000)]
  t.same(watch.due(views, of, 10_999), [], 'not before its idle time')
  t.same(watch.due(views, of, 11_000), [{ id: 'z', idleMs: 10_000 }], 'due at it; a service without scale.min 0 never is')
  watch.report('z', 'did:key:zA', { active: 0, lastTrafficAt: 8_000 }, 9_000)
  t.same(watch.due(views, of, 17_999), [], 'traffic at 8 s: not before 18 s')
  t.same(watch.due(views, of, 18_000), [{ id: 'z', idleMs: 10_000 }])
  watch.report('z', 'did:key:zB', { active: 2, lastTrafficAt: 9_000 }, 9_500)
  t.same(watch.due(views, of, 19_500), [], 'connections open at another ingress keep it up')
  t.same(watch.due(views, of, 9_500 + REPORT_STALE_MS + 1), [{ id: 'z', idleMs: 9_500 + REPORT_STALE_MS + 1 - 9_000 }], 'until that ingress stops reporting')
  watch.report('z', 'did:key:zA', { active: 0, lastTrafficAt: 10 ** 15 }, 20_000)
  t.same(watch.due(views, of, 29_999), [], 'a report from the future counts as when it came')
  t.same(watch.due(views, of, 30_000), [{ id: 'z', idleMs: 10_000 }], 'not later')
  t.same(watch.due([view('z', 'idle', 1_000)], of, 10 ** 9), [], 'only a running deployment is due')
})

t.test('scale out: ceil(open connections / targetConnections) replicas, at most max, only more than it runs', async (t) => {
  const watch = new IdleWatch()
  const workloads: Record<string, Workload> = { s: w({ min: 1, max: 3, targetConnections: 2 }), plain: w() }
  const of = (id: string) => workloads[id]
  const v = (id: string, desired: number, phase = 'running') => ({ ...view(id, phase, 0), desired }) as DeploymentView
  t.same(watch.scaleOuts([v('s', 1)], of, 1_000), [], 'no traffic, nothing')
  watch.report('s', 'did:key:zA', { active: 2, lastTrafficAt: 900 }, 1_000)
  t.same(watch.scaleOuts([v('s', 1)], of, 1_000), [], 'two connections: one replica carries them')
  watch.report('s', 'did:key:zB', { active: 3, lastTrafficAt: 900 }, 1_000)
  t.same(watch.scaleOuts([v('s', 1)], of, 1_000), [{ id: 's', to: 3, active: 5 }], 'five across two ingresses: three replicas')
  t.same(watch.scaleOuts([v('s', 3)], of, 1_000), [], 'already three')
  watch.report('s', 'did:key:zC', { active: 100, lastTrafficAt: 900 }, 1_000)
  t.same(watch.scaleOuts([v('s', 1)], of, 1_000), [{ id: 's', to: 3, active: 105 }], 'never beyond max')
  t.same(watch.scaleOuts([v('s', 1, 'provisioning')], of, 1_000), [], 'not while it is still coming up')
  t.same(watch.scaleOuts([v('s', 1)], of, 1_000 + REPORT_STALE_MS + 1), [], 'stale reports carry no connections')
  watch.report('plain', 'did:key:zA', { active: 50, lastTrafficAt: 900 }, 1_000)
  t.same(watch.scaleOuts([v('plain', 1)], of, 1_000), [], 'a service without scale does not scale')
})

t.test('scale in: after idleSeconds needing fewer replicas, down to ceil(active / target), never below the baseline; a burst resets the clock', async (t) => {
  const watch = new IdleWatch()
  const workloads: Record<string, Workload> = { s: w({ min: 1, max: 4, idleSeconds: 10, targetConnections: 2 }), plain: w() }
  const of = (id: string) => workloads[id]
  const v = (id: string, desired: number, phase = 'running', retiring = false) => ({ ...view(id, phase, 0), desired, replicas: [{ retiring }] }) as unknown as DeploymentView
  watch.report('s', 'did:key:zA', { active: 3, lastTrafficAt: 900 }, 1_000)
  t.same(watch.scaleIns([v('s', 4)], of, 1_000), [], 'three connections need two of four: the clock starts')
  t.same(watch.scaleIns([v('s', 4)], of, 10_999), [], 'not before idleSeconds')
  t.same(watch.scaleIns([v('s', 4)], of, 11_000), [{ id: 's', to: 2, active: 3 }], 'after idleSeconds below: ceil(3 / 2) = 2 of 4')
  const w2 = new IdleWatch()
  w2.report('s', 'did:key:zA', { active: 3, lastTrafficAt: 900 }, 1_000)
  t.same(w2.scaleIns([v('s', 4)], of, 1_000), [])
  w2.report('s', 'did:key:zA', { active: 3, lastTrafficAt: 10_000 }, 10_000)
  t.same(w2.scaleIns([v('s', 4)], of, 11_000), [{ id: 's', to: 2, active: 3 }], 'ceil(3 / 2) = 2 of 4')
  t.same(w2.scaleIns([v('s', 2)], of, 11_000), [], 'at what it needs: nothing')
  w2.report('s', 'did:key:zA', { active: 0, lastTrafficAt: 12_000 }, 12_000)
  t.same(w2.scaleIns([v('s', 2)], of, 12_000), [], 'idle: the clock starts again after the last step')
  t.same(w2.scaleIns([v('s', 2)], of, 21_999), [])
  t.same(w2.scaleIns([v('s', 2)], of, 22_000), [{ id: 's', to: 1, active: 0 }], 'down to the baseline (replicas: 1), never zero here')
  t.same(w2.scaleIns([v('s', 1)], of, 40_000), [], 'at the baseline: nothing')
  // a burst between resets the clock
  const w3 = new IdleWatch()
  w3.report('s', 'did:key:zA', { active: 1, lastTrafficAt: 0 }, 0)
  t.same(w3.scaleIns([v('s', 3)], of, 0), [])
  w3.report('s', 'did:key:zA', { active: 6, lastTrafficAt: 5_000 }, 5_000)
  t.same(w3.scaleIns([v('s', 3)], of, 5_000), [], 'six connections need three: the clock is reset')
  w3.report('s', 'did:key:zA', { active: 1, lastTrafficAt: 6_000 }, 6_000)
  t.same(w3.scaleIns([v('s', 3)], of, 6_000), [], 'quiet again: the clock starts anew')
  t.same(w3.scaleIns([v('s', 3)], of, 12_000), [], 'twelve seconds since the first quiet moment, but not ten since the burst')
  t.same(w3.scaleIns([v('s', 3)], of, 15_999), [], 'the clock restarted at 6 s: not before 16 s ...')
  w3.report('s', 'did:key:zA', { active: 1, lastTrafficAt: 16_000 }, 16_000)
  t.same(w3.scaleIns([v('s', 3)], of, 16_000), [{ id: 's', to: 1, active: 1 }], '... it steps down')
  t.same(w3.scaleIns([v('s', 3, 'running', true)], of, 40_000), [], 'not while a replica is still retiring')
  t.same(w3.scaleIns([v('s', 3, 'degraded')], of, 40_000), [], 'only a running deployment')
  t.same(w3.scaleIns([v('plain', 3)], of, 40_000), [], 'a service without scale does not scale in')
})
