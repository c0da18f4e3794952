// `noir node contracts` against a real daemon (Docker workload): the live contracts the node holds as a
// provider, each with its consumer, state, the age of its last lease renewal and the lease left
// (GET /v1/node/contracts); text output one line per contract; usage errors exit 2.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { DaemonCluster, NOIR_BIN, eventually } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { removeNodeContainers } from '../commands/demo.ts'
import type { ContractLeaseView } from '../../actors/provider/leases.ts'

const IMAGE = 'noir/busybox:latest'
const noir = (home: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [NOIR_BIN, '--home', home, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

t.test('noir node contracts lists the live contracts with their consumer, state and lease', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const cluster = new DaemonCluster()
  t.teardown(async () => {
    const dids = cluster.daemons.map((d) => d.did)
    await cluster.cleanup()
    await removeNodeContainers(dids)
  })
  const node = await cluster.start({ config: { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { bidWindowMs: 500, lease: { ms: 6000, renewMs: 2000 } } } as never })
  const none = noir(node.home, 'node', 'contracts')
  t.equal(none.code, 0, none.err)
  t.equal(none.out.trim(), 'no live contracts')

  const d = await node.api.post<{ id: string }>('/v1/deployments', {
    workload: { apiVersion: 'noir/v1', kind: 'service', name: 'listed', runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'while true; do sleep 1; done'] }, resources: { cpu: 0.2, memory: '16Mi' } },
  })
  const v = await eventually(async () => {
    const x = await node.api.get<{ phase: string; replicas: { contractId: string | null }[] }>(`/v1/deployments/${d.id}`)
    return x.phase === 'running' && x
  }, 30_000, 100)
  // past one renewal: the lease was renewed since the contract was made
  await new Promise((r) => setTimeout(r, 2500))
  const r = noir(node.home, 'node', 'contracts', '--json')
  t.equal(r.code, 0, r.err)
  const doc = JSON.parse(r.out) as { contracts: ContractLeaseView[] }
  const timeless = (x: { contracts: ContractLeaseView[] }) => x.contracts.map(({ lastRenewalAgeMs: _a, leaseRemainingMs: _r, ...rest }) => rest)
  t.same(timeless(doc), timeless(await node.api.get<{ contracts: ContractLeaseView[] }>('/v1/node/contracts')), 'the document of GET /v1/node/contracts')
  t.equal(doc.contracts.length, 1)
  const c = doc.contracts[0]!
  t.match(c, { contractId: v.replicas[0]!.contractId, consumer: node.did, deploymentId: d.id, status: 'active', instanceState: 'running', leaseMs: 6000, late: false })
  t.ok(c.lastRenewalAgeMs! < 6000 && c.leaseRemainingMs! > 0 && c.lastRenewalAgeMs! + c.leaseRemainingMs! <= 6000 + 1, `renewed ${c.lastRenewalAgeMs} ms ago, ${c.leaseRemainingMs} ms left`)

  const text = noir(node.home, 'node', 'contracts')
  t.equal(text.code, 0, text.err)
  const lines = text.out.trimEnd().split('\n')
  t.match(lines[0], /^CONTRACT\s+CONSUMER\s+STATE\s+SLOT\s+RENEWED\s+LEASE LEFT$/)
  t.match(lines[1], new RegExp(`^${c.contractId}\\s+${node.did}\\s+active/running\\s+${d.id}/0\\s+\\d+\\.\\ds ago\\s+\\d+\\.\\ds of 6\\.0s$`))

  const bad = noir(node.home, 'node', 'contracts', 'extra')
  t.equal(bad.code, 2, 'an argument is a usage error')
  await node.api.post(`/v1/deployments/${d.id}/stop`)
  t.equal(noir(node.home, 'node', 'contracts').out.trim(), 'no live contracts', 'a stopped deployment leaves none')
})
