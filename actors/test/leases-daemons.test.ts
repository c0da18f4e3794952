// Leases and reconciliation with real daemons as separate processes on 127.0.0.1 and Docker workloads
// (spec/contracts.md "Leases", "Reconciliation"). The orchestrating node `a` places every replica on the
// worker `b` (a label constraint), so killing `a` leaves `b` holding the work of a dead consumer:
//   - renewed leases keep a replica untouched well past several lease lengths;
//   - with `a` killed -9 and never restarted, `b` stops the orphaned container and releases its capacity
//     within the lease plus one renewal period;
//   - `a` restarted after its record of one deployment was lost: reconciliation stops that deployment's
//     contract at once and adopts the other without restarting its container;
//   - a stranger's renewal of someone else's contract is refused with a typed error and renews nothing; a
//     stranger asking for another consumer's contracts is refused, and sees none of them.
import t from 'tap'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { Level } from 'level'
import { DaemonCluster, eventually, runningCopies, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { removeNodeContainers } from '../../cli/commands/demo.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../orchestrator/orchestrator.ts'
import type { ContractLeaseView } from '../provider/leases.ts'

const IMAGE = 'noir/busybox:latest'
const SHORT = { ms: 3000, renewMs: 1000 }
const share = 'cpu=1,memory=1GiB,disk=2GiB,gpu=0'

// `wait` returns as soon as the trapped TERM arrives: the container ends at once when the provider stops it.
const service = (name: string) => ({
  apiVersion: 'noir/v1', kind: 'service', name,
  runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'trap "exit 0" TERM; while true; do echo tick; sleep 1 & wait $!; done'] },
  resources: { cpu: 0.3, memory: '32Mi' },
  constraints: { labels: { role: 'worker' } },
})

const view = (d: DaemonHandle, id: string) => d.api.get<DeploymentView>(`/v1/deployments/${id}`)
const nodeContracts = async (d: DaemonHandle) => (await d.api.get<{ contracts: ContractLeaseView[] }>('/v1/node/contracts')).contracts
const providerStatus = async (d: DaemonHandle, id: string) =>
  (await d.api.get<{ contracts: { id: string; side: string; status: string; note: string | null }[] }>('/v1/contracts')).contracts.find((c) => c.id === id && c.side === 'provider')
const usedCpu = async (d: DaemonHandle) => (await d.api.get<{ capacity: { used: { cpu: number } } }>('/v1/node/info')).capacity.used.cpu
const containerIds = (slot: string): string =>
  spawnSync('docker', ['ps', '-q', '--no-trunc', '--filter', `label=noir.slot=${slot}`, '--filter', 'status=running'], { encoding: 'utf8' }).stdout.trim()

/** Daemons with these `orchestration` sections, bootstrapped from the first, connected, pubsub meshes formed. */
async function mesh(t: { teardown(fn: () => Promise<void>): void }, sections: Record<string, unknown>[]): Promise<{ cluster: DaemonCluster; nodes: DaemonHandle[] }> {
  const cluster = new DaemonCluster()
  t.teardown(async () => {
    const dids = cluster.daemons.map((d) => d.did)
    await cluster.cleanup()
    await removeNodeContainers(dids)
  })
  const cfg = (o: Record<string, unknown>) => ({ config: { share, orchestration: { beatMs: 200, bidWindowMs: 1000, ...o } } as never })
  const first = await cluster.start(cfg(sections[0]!))
  const rest = await Promise.all(sections.slice(1).map((o) => cluster.start({ ...cfg(o), bootstrap: first.multiaddrs })))
  await eventually(async () => (await first.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= rest.length, 20_000)
  await new Promise((r) => setTimeout(r, 1500))
  return { cluster, nodes: [first, ...rest] }
}

async function running(a: DaemonHandle, name: string): Promise<DeploymentView> {
  const d = await a.api.post<DeploymentView>('/v1/deployments', { workload: service(name) })
  const v = await eventually(async () => {
    const x = await view(a, d.id)
    return (x.phase === 'running' || x.phase === 'failed') && x
  }, 30_000, 100)
  if (v.phase !== 'running') throw new Error(`${name} did not run: ${v.reason}`)
  return v
}

/** An ask over the mesh from `from`'s daemon; a refusal comes back as `{ error: { name, message } }`. */
async function ask(from: DaemonHandle, to: string, behavior: string, body: unknown): Promise<unknown> {
  return from.api.post<unknown>('/v1/actor/send', { ask: true, to, behavior, body, timeoutMs: 5000 })
    .catch((err: Error) => ({ error: { name: err.name, message: err.message } }))
}

t.test('leases with real daemons: renewed, orphaned, and attacked', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const [a, b2, stranger] = (await mesh(t, [{ lease: SHORT }, { lease: SHORT, labels: { role: 'worker' } }, { lease: SHORT }])).nodes as [DaemonHandle, DaemonHandle, DaemonHandle]

  const v = await running(a, 'leased')
  const rep = v.replicas[0]!
  t.equal(rep.node, b2.did, 'placed on the worker')
  const container = containerIds(rep.slot)
  t.ok(container, 'its container runs')

  await t.test('renewed leases keep a replica untouched well past several lease lengths', async (t) => {
    await new Promise((r) => setTimeout(r, 4 * SHORT.ms))
    const after = await view(a, v.id)
    t.equal(after.phase, 'running')
    t.equal(after.replicas[0]!.contractId, rep.contractId, 'the same contract')
    t.equal(after.replicas[0]!.epoch, rep.epoch, 'never placed again')
    t.equal(containerIds(rep.slot), container, 'the same container, never restarted')
    const lease = (await nodeContracts(b2)).find((c) => c.contractId === rep.contractId)
    t.equal(lease?.leaseMs, SHORT.ms, 'the provider holds the lease the contract names')
    t.equal(lease?.late, false, 'renewals are on time')
    t.ok(lease!.lastRenewalAgeMs! <= SHORT.ms, `renewed ${lease?.lastRenewalAgeMs} ms ago`)
  })

  await t.test('a stranger renewing someone else\'s contract is refused with a typed error, and renews nothing', async (t) => {
    const r = (await ask(stranger, `${b2.did}/market`, '/noir/market/renew', { contracts: [rep.contractId] })) as { reply?: { renewed: string[]; refused: { contractId: string; error: { name: string } }[] } }
    t.same(r.reply?.renewed, [], 'nothing renewed')
    t.equal(r.reply?.refused[0]?.error.name, 'NotContractConsumerError')
    const theirs = await ask(stranger, `${b2.did}/market`, '/noir/market/contracts-of-consumer', { consumer: a.did })
    t.match(JSON.stringify(theirs), /NotContractConsumerError/, 'asking for another consumer\'s contracts is refused')
    const own = (await ask(stranger, `${b2.did}/market`, '/noir/market/contracts-of-consumer', {})) as { reply?: { contracts: unknown[] } }
    t.same(own.reply?.contracts, [], 'and its own question sees none of them')
  })

  await t.test('kill -9 of the orchestrator: the provider stops the orphan and frees its capacity within lease + one renewal period', async (t) => {
    t.ok((await usedCpu(b2)) >= 0.3, 'the replica holds capacity on the worker')
    // the stranger keeps renewing the orphan: it must not keep it alive
    const renewing = setInterval(() => void ask(stranger, `${b2.did}/market`, '/noir/market/renew', { contracts: [rep.contractId] }), 500)
    t.teardown(() => clearInterval(renewing))
    await a.kill()
    const killedAt = Date.now()
    await eventually(async () => runningCopies(rep.slot) === 0 && (await usedCpu(b2)) === 0, 20_000, 50)
    const ms = Date.now() - killedAt
    clearInterval(renewing)
    t.comment(`kill -9 -> orphan stopped and capacity released: ${ms} ms (lease ${SHORT.ms} ms, renewal every ${SHORT.renewMs} ms)`)
    t.ok(ms <= SHORT.ms + SHORT.renewMs, `stopped within lease + one renewal period (${ms} ms)`)
    // the record is written just after the capacity is released (contract-steps.ts `stop`): read it once written
    const c = await eventually(async () => {
      const x = await providerStatus(b2, rep.contractId!)
      return x?.status !== 'active' && x
    }, 5000, 50)
    t.equal(c?.status, 'lease-expired')
    t.match(c?.note, /lease expired: no renewal from the consumer/)
    t.same(await nodeContracts(b2), [], 'no live contract left on the worker')
  })
})

t.test('reconciliation with real daemons: an unknown contract is stopped, a known one adopted without a restart', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const { cluster, nodes } = await mesh(t, [{}, { labels: { role: 'worker' } }])
  const [a, b2] = nodes as [DaemonHandle, DaemonHandle]

  const known = await running(a, 'known')
  const lost = await running(a, 'forgotten')
  const knownRep = known.replicas[0]!
  const lostRep = lost.replicas[0]!
  t.equal(knownRep.node, b2.did)
  t.equal(lostRep.node, b2.did)
  const knownContainer = containerIds(knownRep.slot)

  await a.kill()
  // the orchestrator lost its record of one deployment while it was down (a crash before the write, a lost disk)
  const db = new Level<string, unknown>(join(a.home, 'data'), { valueEncoding: 'json' })
  await db.sublevel<string, unknown>('svc:orchestration', { valueEncoding: 'json' }).del(`d/${lost.id}`)
  await db.close()
  const a2 = await cluster.start({ home: a.home })

  await eventually(async () => runningCopies(lostRep.slot) === 0, 30_000, 100)
  // the container goes first, the contract's record after it (the stop step writes `ended` once it is gone)
  const c = await eventually(async () => {
    const x = await providerStatus(b2, lostRep.contractId!)
    return x?.status === 'ended' && x
  }, 10_000, 100).catch(async () => providerStatus(b2, lostRep.contractId!))
  t.equal(c?.status, 'ended', 'the contract no deployment names was stopped')
  t.match(c?.note, /stopped by the consumer/, 'by its consumer (reconciliation), not by its lease (30 s)')
  const rec = await eventually(async () => {
    const s = await a2.api.get<{ services: { orchestration: { reconciliation: { done: boolean; adopted: number; stopped: { contractId: string; why: string }[] } } } }>('/v1/status')
    return s.services.orchestration.reconciliation?.done && s.services.orchestration.reconciliation
  }, 30_000, 200)
  t.same(rec.stopped.map((x) => x.contractId), [lostRep.contractId])
  t.match(rec.stopped[0]!.why, /no deployment record names it/)
  t.ok(rec.adopted >= 1, 'the known contract was adopted')

  const kept = await view(a2, known.id)
  t.equal(kept.phase, 'running')
  t.equal(kept.replicas[0]!.contractId, knownRep.contractId, 'the known deployment kept its contract')
  t.equal(containerIds(knownRep.slot), knownContainer, 'and its container, never restarted')
  t.equal((await providerStatus(b2, knownRep.contractId!))?.status, 'active')
  await a2.api.post(`/v1/deployments/${known.id}/stop`)
})
