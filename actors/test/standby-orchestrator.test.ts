// Orchestrator continuity beyond one node, with real daemons and Docker: node A orchestrates and names B
// (its owner's other node) as standby; A's deployment snapshots are replicated to B. kill -9 of A, and of a
// provider while A is gone: B takes the deployment over (providers told first, with A's capability and the
// next orchestrator epoch), replaces the replica lost during the outage, and stops it on request; A,
// restarted, shows the deployment as handed over and never acts for it again.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { DaemonCluster, eventually, runningCopies, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { removeNodeContainers } from '../../cli/commands/demo.ts'
import type { DeploymentView } from '../orchestrator/orchestrator.ts'

const IMAGE = 'noir/busybox:latest'


const view = (d: DaemonHandle, id: string) => d.api.get<DeploymentView>(`/v1/deployments/${id}`)

t.test('a standby orchestrator takes the deployments over after kill -9 of the orchestrating node', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const cluster = new DaemonCluster()
  t.teardown(async () => {
    const dids = cluster.daemons.map((d) => d.did)
    await cluster.cleanup()
    await removeNodeContainers(dids)
  })
  const ka = NodeKey.generate()
  const kb = NodeKey.generate()
  const share = 'cpu=1,memory=1GiB,disk=2GiB,gpu=0'
  // a 10 s lease renewed every 2 s: the surviving replica must outlive two leases after A died (B renews it)
  const LEASE = { ms: 10_000, renewMs: 2000 }
  const fast = { beatMs: 200, bidWindowMs: 1000, lease: LEASE }
  // A cannot host the replicas itself (0.1 cpu): they land on the providers, the standby among them.
  const a = await cluster.start({ key: ka, config: { share: 'cpu=0.1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { ...fast, standby: kb.did } } as never })
  const boot = { bootstrap: a.multiaddrs }
  // one after another: a loaded machine starts three daemons at once slowly
  // the providers meter every second: usage after the takeover must be answered (and paid) by the standby
  const metered = { usageIntervalMs: 1000 }
  const b = await cluster.start({ ...boot, key: kb, config: { share, orchestration: { ...fast, standbyFor: [ka.did] }, ledger: metered } as never })
  const c = await cluster.start({ ...boot, config: { share, orchestration: fast, ledger: metered } as never })
  const d = await cluster.start({ ...boot, config: { share, orchestration: fast, ledger: metered } as never })
  const nodes = [a, b, c, d]
  for (const n of nodes) await eventually(async () => (await n.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 3, 30_000)
  await new Promise((r) => setTimeout(r, 1500))

  // A stranger's snapshots are refused by the standby: it keeps only those of the nodes it stands by for.
  const stranger = await c.api.post<{ ok?: boolean; error?: { name: string } }>('/v1/actor/send', { ask: true,
    to: `${b.did}/orchestrator`, behavior: '/noir/orchestrator/replica', body: { record: { v: 2, id: 'x', savedAt: 0, snapshot: { context: { id: 'x' } } }, token: 'nope' },
  }).catch((err: Error) => ({ error: { name: err.name, message: err.message } }))
  t.match(JSON.stringify(stranger), /NotStandbyError/, 'a node that is not A cannot fill the standby with snapshots')

  const created = await a.api.post<DeploymentView>('/v1/deployments', {
    workload: { apiVersion: 'noir/v1', kind: 'service', name: 'kept', runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'while true; do echo tick; sleep 1; done'] }, resources: { cpu: 0.3, memory: '32Mi' }, service: { replicas: 2 } },
  })
  const running = await eventually(async () => { const v = await view(a, created.id); return (v.phase === 'running' || v.phase === 'failed') && v }, 30_000, 100)
  t.equal(running.phase, 'running', running.reason ?? '')
  t.ok(running.replicas.every((r) => r.node !== a.did), 'no replica on the orchestrating node')
  // the standby has the latest snapshot
  await eventually(async () => {
    const s = await a.api.get<{ services: { orchestration?: { standby?: { replicated: number; backlog: number } } } }>('/v1/status')
    const st = s.services.orchestration?.standby
    return st !== undefined && st.replicated > 0 && st.backlog === 0
  }, 10_000, 100).catch(async (err: Error) => {
    console.error(JSON.stringify((await a.api.get<{ services: unknown }>('/v1/status')).services))
    console.error(a.logs().split('\n').filter((l) => /standby|replica|capab/i.test(l)).slice(-10).join('\n'))
    console.error(b.logs().split('\n').filter((l) => /standby|replica|capab|warn/i.test(l)).slice(-10).join('\n'))
    throw err
  })

  // kill -9 the orchestrating node, and a provider (not the standby) while it is gone
  const lostRep = running.replicas.find((r) => r.node !== b.did)!
  const kept = running.replicas.find((r) => r.slot !== lostRep.slot)!
  const provider = nodes.find((n) => n.did === lostRep.node)!
  const killedAt = Date.now()
  await a.kill()
  await provider.kill()

  const taken = await eventually(async () => {
    const v = await view(b, created.id).catch(() => undefined)
    return v?.takenOverFrom === a.did && v
  }, 20_000, 50)
  const takeoverMs = Date.now() - killedAt
  t.equal(taken.orchestratorEpoch, 2)
  const healed = await eventually(async () => {
    const v = await view(b, created.id)
    const f = v.failovers.find((x) => x.from === provider.did)
    return v.phase === 'running' && f && f.runningAt !== null && v
  }, 40_000, 100)
  t.comment(`orchestrator kill -9 -> standby took over in ${takeoverMs} ms; lost replica running again in ${healed.failovers.find((x) => x.from === provider.did)!.runningAt! - killedAt} ms`)
  console.log(`# standby takeover: kill -9 of the orchestrator -> taken over in ${takeoverMs} ms`)
  const moved = healed.replicas.find((r) => r.slot === lostRep.slot)!
  t.not(moved.node, provider.did, 'the replica lost during the outage runs elsewhere')
  t.ok(moved.epoch > lostRep.epoch, 'under a higher epoch')
  const stayed = healed.replicas.find((r) => r.slot === kept.slot)!
  t.same([stayed.node, stayed.contractId], [kept.node, kept.contractId], 'the surviving replica keeps its node and contract')
  // Leases through the takeover: B renews the deployment's contracts; two leases after A died the surviving
  // replica still runs under its contract (A has renewed nothing since).
  const host = nodes.find((n) => n.did === kept.node)!
  const wait = killedAt + 2 * LEASE.ms + LEASE.renewMs - Date.now()
  if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  const held = (await host.api.get<{ contracts: { contractId: string; status: string; lastRenewalAgeMs: number | null }[] }>('/v1/node/contracts')).contracts.find((x) => x.contractId === kept.contractId)
  t.equal(held?.status, 'active', `two leases after the kill the surviving replica's contract is active (renewed ${held?.lastRenewalAgeMs} ms ago)`)
  t.equal(runningCopies(kept.slot), 1, 'and its container runs')
  const leases = (await b.api.get<{ services: { orchestration: { leases: { renewed: number } } } }>('/v1/status')).services.orchestration.leases
  t.ok(leases.renewed > 0, `the standby renewed leases (${leases.renewed})`)
  // Metering through the takeover: the surviving replica's records (its contract's consumer is A) now go to B,
  // which answers them, pays them from its own wallet, and holds the next window.
  type Usage = { side: string; status: string; settled: string | null; record: { body: { contractId: string; consumer: string; from: number; to: number }; answer?: { acceptedAmount: string } } }
  const answeredByB = await eventually(async () => {
    const l = (await b.api.get<{ records: Usage[] }>(`/v1/usage?side=consumer&deployment=${created.id}`)).records
      .filter((u) => u.record.body.contractId === kept.contractId && u.record.body.from >= killedAt)
    return l.length >= 2 && l.every((u) => u.status === 'accepted' && u.settled === 'paid') && l
  }, 30_000, 200).catch(async (err: Error) => {
    console.error('B consumer-side:', JSON.stringify((await b.api.get<{ records: Usage[] }>(`/v1/usage?side=consumer&deployment=${created.id}`)).records.map((u) => [u.record.body.contractId.slice(0, 8), u.record.body.from - killedAt, u.status, u.settled])))
    console.error('host provider-side:', JSON.stringify((await host.api.get<{ records: (Usage & { note?: string })[] }>(`/v1/usage?side=provider&deployment=${created.id}`)).records.map((u) => [u.record.body.contractId.slice(0, 8), u.record.body.from - killedAt, u.status, u.note])))
    console.error('kept', kept.contractId?.slice(0, 8), 'host', host === b ? 'b' : 'other')
    console.error(b.logs().split('\n').filter((l) => /usage|window|escrow/i.test(l)).slice(-15).join('\n'))
    throw err
  })
  t.ok(answeredByB.every((u) => u.record.body.consumer === a.did), `${answeredByB.length} records of A's contract after the kill, answered by the standby`)
  t.ok(answeredByB.every((u) => BigInt(u.record.answer!.acceptedAmount) > 0n), 'accepted in full (the standby judged them against what A saw running)')
  const onHost = (await host.api.get<{ records: Usage[] }>(`/v1/usage?side=provider&deployment=${created.id}`)).records.filter((u) => u.record.body.contractId === kept.contractId && u.record.body.from >= killedAt)
  t.ok(onHost.length >= 2 && onHost.slice(0, -1).every((u) => u.status === 'accepted'), `the provider holds them answered (${onHost.map((u) => u.status).join(', ')})`)
  t.ok((await b.api.get<{ ok: boolean }>('/v1/ledger/verify')).ok, 'the standby\'s ledger verifies')
  // the killed provider's watchdog stops its copy: one copy per slot
  await eventually(() => healed.replicas.every((r) => runningCopies(r.slot) === 1), 20_000, 200)
  t.ok(healed.replicas.every((r) => runningCopies(r.slot) === 1), 'one copy of each slot')

  // A comes back: it learns from its standby that the deployment was taken over and does nothing for it.
  const a2 = await cluster.start({ home: a.home })
  const onA = await view(a2, created.id)
  t.equal(onA.phase, 'handed-over')
  t.match(onA.reason ?? '', new RegExp(b.did))
  // the providers refuse A's steps for it now
  const refused = await a2.api.post<unknown>('/v1/actor/send', { ask: true, to: `${stayed.node}/market`, behavior: '/noir/market/stop', body: { contractId: stayed.contractId } })
    .catch((err: Error) => ({ error: { name: err.name, message: err.message } }))
  t.match(JSON.stringify(refused), /HandedOverError/, 'the consumer itself can no longer stop a replica of a deployment its standby took over')
  t.equal(runningCopies(stayed.slot), 1)

  const stopped = await b.api.post<DeploymentView>(`/v1/deployments/${created.id}/stop`)
  t.equal(stopped.phase, 'stopped')
  t.same(stopped.stopFailures, [])
  for (const r of healed.replicas) t.equal(runningCopies(r.slot), 0, `slot ${r.slot} stopped by the standby`)
})
