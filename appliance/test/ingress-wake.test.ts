// Waking a service at zero and reporting its traffic (appliance/ingress/backends.ts, spec/ingress.md "Scale to
// zero") are open to anyone who could send the service traffic, and to no one else: a private or undeclared
// port, or a deployment this node does not orchestrate, is refused with a typed error and nothing is woken or
// counted. A malformed report is refused naming what it must be.
import t from 'tap'
import { MemoryKvStore } from '../../core/kv-store.ts'
import { ExposureBook, parseTrafficBody, trafficFor, wakeFor, type DeploymentSource } from '../ingress/backends.ts'
import { DeploymentNotHereError, InvalidIngressRequestError, PortNotExposedError } from '../ingress/errors.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'
import type { DeploymentView } from '../../actors/deployment/model.ts'

t.test('wake and traffic: only for a port anyone could send traffic to', async (t) => {
  const w = validateWorkload({
    apiVersion: 'noir/v1', kind: 'service', name: 'z', runtime: { type: 'container', image: 'x' }, resources: { cpu: 0.1, memory: '16Mi' },
    service: { replicas: 1, scale: { min: 0, max: 1, idleSeconds: 10 } }, ports: [{ port: 8080, public: true }, { port: 7000 }],
  })
  const woken: string[] = []
  const reports: unknown[] = []
  const src: DeploymentSource = {
    status: () => ({ phase: 'idle' }) as DeploymentView,
    workloadOf: (id) => (id === 'd1' ? w : undefined),
    wake: (id, by) => (woken.push(`${id} by ${by}`), { phase: 'idle' } as DeploymentView),
    traffic: (id, ingress, r) => void reports.push({ id, ingress, ...r }),
  }
  const book = new ExposureBook(new MemoryKvStore())
  t.same(wakeFor(src, book, { deploymentId: 'd1', port: 8080 }, 'did:key:zIngress'), { deploymentId: 'd1', phase: 'idle' })
  t.throws(() => wakeFor(src, book, { deploymentId: 'd1', port: 7000 }, 'did:key:zEve'), PortNotExposedError, 'a private port wakes nothing')
  t.throws(() => wakeFor(src, book, { deploymentId: 'd1', port: 9999 }, 'did:key:zEve'), PortNotExposedError, 'an undeclared port neither')
  t.throws(() => wakeFor(src, book, { deploymentId: 'other', port: 8080 }, 'did:key:zEve'), DeploymentNotHereError, 'nor a deployment not orchestrated here')
  t.same(woken, ['d1 by did:key:zIngress'], 'only the allowed wake reached the orchestrator')

  t.same(trafficFor(src, book, parseTrafficBody({ deploymentId: 'd1', port: 8080, active: 2, lastTrafficAt: 5 }), 'did:key:zIngress'), { ok: true })
  t.throws(() => trafficFor(src, book, parseTrafficBody({ deploymentId: 'd1', port: 7000, active: 9, lastTrafficAt: 5 }), 'did:key:zEve'), PortNotExposedError, 'traffic on a private port is not counted')
  for (const bad of [{ deploymentId: 'd1', port: 8080, active: -1, lastTrafficAt: 5 }, { deploymentId: 'd1', port: 8080, active: 1.5, lastTrafficAt: 5 }, { deploymentId: 'd1', port: 8080, active: 1 }, { deploymentId: 'd1', port: 0, active: 1, lastTrafficAt: 5 }, null]) {
    t.throws(() => parseTrafficBody(bad), InvalidIngressRequestError, `refused: ${JSON.stringify(bad)}`)
  }
  t.same(reports, [{ id: 'd1', ingress: 'did:key:zIngress', active: 2, lastTrafficAt: 5 }], 'only the allowed report was counted')
  // opened by the owner, the private port may be woken
  await book.set('d1', 7000, true)
  t.same(wakeFor(src, book, { deploymentId: 'd1', port: 7000 }, 'did:key:zIngress').phase, 'idle')
})
