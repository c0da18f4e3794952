// A service stopped by its consumer ends its metering (spec/ledger.md "Metering"): the provider issues the
// final usage record at the stop and none after, whether the replica ran on another node or on the
// orchestrating node itself. (Before, the runner reported nothing of an instance its contract stopped, so the
// provider kept issuing a record a second for a container that was gone, each disputed to 0, never a final one.)
import t from 'tap'
import { clusterFor, eventually } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'

const IMAGE = 'noir/busybox:latest'
interface Usage { records: { status: string; record: { body: { seq: number; from: number; to: number; final?: boolean } } }[] }

t.test('a stopped service\'s last usage record is final, and nothing is metered after', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const cluster = clusterFor(t)
  const config = (role: string) => ({ config: { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 600, labels: { role } }, ledger: { usageIntervalMs: 1000 } } as never })
  const a = await cluster.start(config('orchestrator'))
  await cluster.start({ ...config('worker'), bootstrap: a.multiaddrs })
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 1, 20_000)
  await new Promise((r) => setTimeout(r, 1500))
  for (const role of ['worker', 'orchestrator']) {
    const d = await a.api.post<{ id: string }>('/v1/deployments', { workload: {
      apiVersion: 'noir/v1', kind: 'service', name: `metered-${role}`,
      runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.2 & wait $!; done'] },
      resources: { cpu: 0.2, memory: '32Mi' }, constraints: { labels: { role } },
    } })
    await eventually(async () => (await a.api.get<{ phase: string }>(`/v1/deployments/${d.id}`)).phase === 'running', 60_000)
    await eventually(async () => (await a.api.get<Usage>(`/v1/deployments/${d.id}/usage`)).records.length >= 2, 30_000)
    await a.api.post(`/v1/deployments/${d.id}/stop`)
    const stoppedAt = Date.now()
    const done = await eventually(async () => {
      const u = await a.api.get<Usage>(`/v1/deployments/${d.id}/usage`)
      const last = u.records.at(-1)
      return last?.record.body.final === true && last.status !== 'pending' && u
    }, 30_000, 200)
    const last = done.records.at(-1)!
    t.equal(last.status, 'accepted', `on the ${role} node: the final record is issued at the stop, and accepted`)
    t.ok(last.record.body.to <= stoppedAt + 2000, 'it ends at the stop')
    t.same(done.records.filter((r) => r.status === 'disputed').length, 0, 'no record disputed')
    await new Promise((r) => setTimeout(r, 3000))
    t.equal((await a.api.get<Usage>(`/v1/deployments/${d.id}/usage`)).records.length, done.records.length, 'and no record after it')
  }
})
