// Rebalancing with real daemons (spec/migration.md "Rebalancing"): three `noir node start` processes on
// 127.0.0.1, real libp2p, real Docker. A best-effort service runs on the only worker there is, an expensive
// one; a worker quoting a quarter of its price joins; the orchestrator's next pass moves the replica there
// (a migration, make-before-break for a stateless service) and says why; later passes leave it there: not
// back and forth. (Which deployments are priced at all, the margin's edge and the rate limit: the unit test,
// actors/test/rebalancer.test.ts.)
import t from 'tap'
import { execFile } from 'node:child_process'
import { clusterFor, NOIR_BIN, eventually } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'

const IMAGE = 'noir/busybox:latest'

function noir(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

t.test('a best-effort replica moves to a newly cheaper node, once, and says why', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const cluster = clusterFor(t)
  const share = 'cpu=1,memory=1GiB,disk=2GiB,gpu=0'
  const orchestration = (role: string, more: Record<string, unknown> = {}) => ({ beatMs: 200, bidWindowMs: 800, labels: { role }, ...more })
  const owner = await cluster.start({ config: { share, orchestration: orchestration('owner', { rebalance: { everyMs: 2000, cooldownMs: 1000 } }) } as never })
  const dear = await cluster.start({ bootstrap: owner.multiaddrs, config: { share, orchestration: orchestration('worker', { price: { cpuPerHour: 4_000_000 } }) } as never })
  await eventually(async () => (await owner.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 1, 60_000)
  await new Promise((r) => setTimeout(r, 1500))

  const service = (name: string, lane: string) => ({
    apiVersion: 'noir/v1', kind: 'service', name, lane,
    runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1 & wait $!; done'] },
    resources: { cpu: 0.1, memory: '16Mi' },
    constraints: { labels: { role: 'worker' } },
  })
  const d = await owner.api.post<DeploymentView>('/v1/deployments', { workload: service('cheapest', 'best-effort') })
  const view = (id: string) => owner.api.get<DeploymentView>(`/v1/deployments/${id}`)
  const before = await eventually(async () => {
    const v = await view(d.id)
    return v.phase === 'running' && v.replicas[0]!.state === 'running' && v
  }, 120_000, 250)
  t.equal(before.replicas[0]!.node, dear.did, 'it runs on the only worker, the expensive one')
  await new Promise((r) => setTimeout(r, 5000))
  t.same((await view(d.id)).migrations ?? [], [], 'with no cheaper node, passes move nothing')

  const cheap = await cluster.start({ bootstrap: owner.multiaddrs, config: { share, orchestration: orchestration('worker') } as never })
  const moved = await eventually(async () => {
    const v = await view(d.id)
    return v.replicas[0]!.node === cheap.did && v.replicas[0]!.state === 'running' && (v.migrations ?? []).some((m) => m.ok === true) && v
  }, 120_000, 500)
  const m = moved.migrations![0]!
  t.match(m.why, /^rebalanced: did:key:\S+ quotes \d+ µNLC\/h, [\d.]+% below the \d+ of did:key:\S+ \(margin 20%\)$/, 'the move says why')
  t.equal(m.from, dear.did)
  t.equal(m.to, cheap.did)
  t.ok(BigInt(moved.replicas[0]!.pricePerHour!) * 10_000n <= BigInt(before.replicas[0]!.pricePerHour!) * 8_000n, 'the new contract is at least 20% cheaper')
  const status = await noir(owner.home, 'status', d.id)
  t.match(status.stdout, /rebalanced/, '`noir status` shows why it moved')

  // several passes later: still one move, still on the cheap node
  await new Promise((r) => setTimeout(r, 8000))
  const after = await view(d.id)
  t.equal((after.migrations ?? []).length, 1, 'not back and forth')
  t.equal(after.replicas[0]!.node, cheap.did)
  t.equal(after.phase, 'running')
  await owner.api.post(`/v1/deployments/${d.id}/stop`)
})
