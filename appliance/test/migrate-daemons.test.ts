// `noir migrate` between real daemons (separate `noir node start` processes on 127.0.0.1, real libp2p, real
// Docker; spec/migration.md): an SDK actor keeps its count (its new sandbox loaded before the old one stops),
// a container's file in its state directory is on the new node, the old node no longer runs it; the refusals
// are typed; a kill -9 of the orchestrating node in the middle of a migration ends, after its restart, with
// exactly one running replica.
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { clusterFor, NOIR_BIN, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'
import type { MigrationRecord } from '../../actors/deployment/model.ts'
import { FAILPOINTS_ENV } from '../../core/failpoints.ts'
import { MARKET_ACTOR, MarketBehavior } from '../../actors/orchestrator/protocol.ts'

const BASE_IMAGE = 'noir/busybox:latest'
const share = 'cpu=2,memory=1GiB,disk=2GiB,gpu=0'
const work = mkdtempSync(join(tmpdir(), 'noir-migrate-test-'))
const tally = fileURLToPath(new URL('./fixtures/actor/tally.ts', import.meta.url))

function noir(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { timeout: 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

interface Alloc {
  id: string
  state: string
  spec: { stateDir: string; labels?: Record<string, string> }
}

const allocations = async (d: DaemonHandle): Promise<Alloc[]> => {
  const r = await d.api.get<Alloc[] | { allocations: Alloc[] }>('/v1/allocations')
  return Array.isArray(r) ? r : r.allocations
}
const failure = async (p: Promise<unknown>): Promise<{ name: string; message: string }> => {
  try {
    await p
  } catch (err) {
    return err as { name: string; message: string }
  }
  throw new Error('expected a failure')
}

t.test('noir migrate between real daemons', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(BASE_IMAGE))) return
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const cluster = clusterFor(t)
  const cfg = (role: string) => ({ config: { share, orchestration: { beatMs: 200, bidWindowMs: 1000, labels: { role }, checkpointEveryMs: 1000 } } as never })
  const a = await cluster.start(cfg('consumer'))
  const b = await cluster.start({ ...cfg('worker'), bootstrap: a.multiaddrs })
  const c = await cluster.start({ ...cfg('worker'), bootstrap: a.multiaddrs })
  const e = await cluster.start({ ...cfg('worker'), bootstrap: a.multiaddrs })
  const workers = [b, c, e]
  const byDid = (did: string | null | undefined): DaemonHandle => workers.find((w) => w.did === did)!
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 3, 60_000)
  await new Promise((r) => setTimeout(r, 1500))

  const deploy = async (home: string, file: string): Promise<DeploymentView> => {
    const r = await noir(home, 'deploy', file, '--wait', '--json')
    t.equal(r.code, 0, `noir deploy: ${r.stderr.slice(0, 400)}`)
    return JSON.parse(r.stdout) as DeploymentView
  }
  const ask = async (from: DaemonHandle, to: string, behavior: string): Promise<unknown> =>
    (await from.api.post<{ reply: unknown }>('/v1/actor/send', { to, behavior, body: null, ask: true, timeoutMs: 10_000 })).reply
  const tallyOf = (v: DeploymentView): string => `${v.replicas[0]!.node}/alloc/c-${v.replicas[0]!.contractId}/workload`
  writeFileSync(join(work, 'tally.yaml'), [
    'apiVersion: noir/v1', 'kind: service', 'name: tally',
    `runtime: { type: actor, bundle: ${JSON.stringify(tally)} }`,
    'resources: { cpu: 0.3, memory: 192Mi }', 'constraints: { labels: { role: worker } }', '',
  ].join('\n'))

  await t.test('an SDK actor keeps its count across noir migrate; the old node no longer runs it', async (t) => {
    const v = await deploy(a.home, join(work, 'tally.yaml'))
    t.equal(v.phase, 'running', `the tally runs (${v.reason ?? ''})`)
    const from = v.replicas[0]!
    const old = tallyOf(v)
    await eventually(async () => (await ask(a, old, '/tally/get')) === 0, 30_000, 300)
    for (let i = 1; i <= 3; i++) t.equal(await ask(a, old, '/tally/add'), i, `count ${i} on the first node`)
    // a node other than the consumer cannot checkpoint (and so stop) the replica
    const stranger = workers.find((w) => w.did !== from.node)!
    const refused = await failure(stranger.api.post('/v1/actor/send', { to: `${from.node}/${MARKET_ACTOR}`, behavior: MarketBehavior.checkpoint, body: { contractId: from.contractId }, ask: true }))
    t.equal(refused.name, 'OrchestrationError', `another node's checkpoint is refused (${refused.message})`)
    const warmRefused = await failure(stranger.api.post('/v1/actor/send', { to: `${from.node}/${MARKET_ACTOR}`, behavior: MarketBehavior.prewarm, body: { contractId: from.contractId }, ask: true }))
    t.equal(warmRefused.name, 'OrchestrationError', `another node's prewarm is refused (${warmRefused.message})`)
    t.equal(await ask(a, old, '/tally/get'), 3, 'and the replica runs on')

    const r = await noir(a.home, 'migrate', v.id, '--json')
    t.equal(r.code, 0, `noir migrate: ${r.stderr.slice(0, 400)}`)
    const m = JSON.parse(r.stdout) as MigrationRecord
    t.equal(m.from, from.node, 'it moved from the node it ran on')
    t.not(m.to, from.node, 'to another node')
    t.ok(workers.some((w) => w.did === m.to), 'a worker (the placement rules held)')
    t.match(m.checkpoint?.digest, /^sha256:[0-9a-f]{64}$/, 'its snapshot travelled as an artifact')
    t.equal(m.why, 'migrated on request')

    const after = await a.api.get<DeploymentView>(`/v1/deployments/${v.id}`)
    t.equal(after.replicas[0]!.node, m.to, 'status names the new node')
    t.equal(after.replicas[0]!.state, 'running')
    t.not(after.replicas[0]!.contractId, from.contractId, 'under a new contract')
    t.ok(after.replicas[0]!.epoch > from.epoch, 'at a higher epoch of the slot')
    t.equal(after.migrations.at(-1)?.ok, true, 'status records the migration')
    const status = await noir(a.home, 'status', v.id)
    t.match(status.stdout, /migration of .*migrated on request.*done/, 'noir status says why it moved')

    const moved = tallyOf(after)
    t.equal(await eventually(async () => (await ask(a, moved, '/tally/get').catch(() => undefined)) as number | undefined, 30_000, 300), 3, 'the count continues on the new node')
    t.equal(await ask(a, moved, '/tally/add'), 4, 'and counts on')
    // make-before-break: the new sandbox had its bundle loaded before the old replica was told to stop
    t.equal(m.warm, true, 'the new sandbox was readied before the old replica was quiesced (warm handover)')
    const h = (await ask(a, moved, '/tally/handover')) as { loadedAt: number; stoppedAt: number | null }
    t.type(h.stoppedAt, 'number', 'the old replica heard it was stopping, and its snapshot carried when')
    t.ok(h.loadedAt < h.stoppedAt!, `the new replica's bundle was loaded (${h.loadedAt}) before the old one stopped (${h.stoppedAt})`)
    const oldAlloc = (await allocations(byDid(from.node))).find((x) => x.id === `c-${from.contractId}`)
    t.not(oldAlloc?.state ?? 'removed', 'running', `the old node no longer runs it (${oldAlloc?.state ?? 'removed'})`)
    await t.rejects(ask(a, old, '/tally/get'), 'the old address answers no more')
    const running = (await Promise.all(workers.map(allocations))).flat().filter((x) => x.spec.labels?.['noir.slot'] === from.slot && x.state === 'running')
    t.equal(running.length, 1, 'exactly one replica of the slot runs')

    // typed refusals, through the API the CLI uses
    t.equal((await failure(a.api.post(`/v1/deployments/nope/migrate`, {}))).name, 'DeploymentNotFoundError', 'an unknown deployment')
    t.equal((await failure(a.api.post(`/v1/deployments/${v.id}/migrate`, { replica: 4 }))).name, 'ReplicaNotRunningError', 'a replica that does not exist')
    t.equal((await failure(a.api.post(`/v1/deployments/${v.id}/migrate`, { to: a.did }))).name, 'NoMigrationTargetError', 'a node that does not fit (the consumer is no worker): nothing moves')
    t.equal((await failure(a.api.post(`/v1/deployments/${v.id}/migrate`, { replica: 'x' }))).name, 'InvalidRequestError', 'a bad body')
    const still = await a.api.get<DeploymentView>(`/v1/deployments/${v.id}`)
    t.equal(still.replicas[0]!.contractId, after.replicas[0]!.contractId, 'a refused migration leaves the replica where it is')
    const usage = await noir(a.home, 'migrate', v.id, '--replica', 'abc')
    t.equal(usage.code, 2, 'a bad flag value is a usage error')
    await noir(a.home, 'stop', v.id)
  })

  await t.test("a container's file in its stateDir is on the new node", async (t) => {
    writeFileSync(join(work, 'box.yaml'), [
      'apiVersion: noir/v1', 'kind: service', 'name: box',
      `runtime: { type: container, image: ${JSON.stringify(BASE_IMAGE)}, command: [sh, -c, "trap 'exit 0' TERM; [ -f /state/id ] || echo made-$$-$(date +%s%N) > /state/id; echo start >> /state/starts; while true; do sleep 0.2; done"] }`,
      'resources: { cpu: 0.2, memory: 32Mi }', 'constraints: { labels: { role: worker } }', 'stateDir: /state', '',
    ].join('\n'))
    const v = await deploy(a.home, join(work, 'box.yaml'))
    t.equal(v.phase, 'running', `the container runs (${v.reason ?? ''})`)
    const from = v.replicas[0]!
    const oldAlloc = (await allocations(byDid(from.node))).find((x) => x.id === `c-${from.contractId}`)!
    const made = await eventually(() => {
      try {
        return readFileSync(join(oldAlloc.spec.stateDir, 'id'), 'utf8')
      } catch {
        return undefined
      }
    }, 30_000, 200)

    const r = await noir(a.home, 'migrate', v.id, '--json')
    t.equal(r.code, 0, `noir migrate: ${r.stderr.slice(0, 400)}`)
    const m = JSON.parse(r.stdout) as MigrationRecord
    t.not(m.to, from.node)
    t.ok((m.checkpoint?.bytes ?? 0) > 0, `the state directory travelled (${m.checkpoint?.bytes} bytes)`)
    const after = await a.api.get<DeploymentView>(`/v1/deployments/${v.id}`)
    const newAlloc = (await allocations(byDid(m.to))).find((x) => x.id === `c-${after.replicas[0]!.contractId}`)!
    t.equal(newAlloc.state, 'running', 'it runs on the new node')
    t.not(newAlloc.spec.stateDir, oldAlloc.spec.stateDir, 'in a state directory of its own')
    t.equal(readFileSync(join(newAlloc.spec.stateDir, 'id'), 'utf8'), made, 'the file written on the old node is there')
    const starts = await eventually(() => {
      const s = readFileSync(join(newAlloc.spec.stateDir, 'starts'), 'utf8')
      return s.split('\n').filter(Boolean).length >= 2 ? s : undefined
    }, 30_000, 200)
    t.equal(starts.split('\n').filter(Boolean).length, 2, 'and the new container started on top of it (its second start)')
    const old = (await allocations(byDid(from.node))).find((x) => x.id === oldAlloc.id)
    t.not(old?.state ?? 'removed', 'running', `the old node no longer runs it (${old?.state ?? 'removed'})`)
    const ps = spawnSync('docker', ['ps', '-q', '--filter', `label=noir.contract=${from.contractId}`], { encoding: 'utf8' })
    t.equal(ps.stdout.trim(), '', 'no container of the old contract runs')
    await noir(a.home, 'stop', v.id)
  })

  await t.test('kill -9 of the orchestrating node in the middle of a migration: one running replica after its restart', async (t) => {
    // the second repair step of this node is the migration's move: it dies once the move acted, before it is recorded
    const d = await cluster.start({ ...cfg('consumer'), bootstrap: a.multiaddrs, env: { [FAILPOINTS_ENV]: 'orchestrator.repair.after@2' } })
    await eventually(async () => (await d.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 4, 60_000)
    await new Promise((r) => setTimeout(r, 1500))
    const v = await deploy(d.home, join(work, 'tally.yaml'))
    t.equal(v.phase, 'running', `the tally runs (${v.reason ?? ''})`)
    const from = v.replicas[0]!
    await eventually(async () => (await ask(d, tallyOf(v), '/tally/get')) === 0, 30_000, 300)
    await ask(d, tallyOf(v), '/tally/add')
    t.equal(await ask(d, tallyOf(v), '/tally/add'), 2)

    const r = await noir(d.home, 'migrate', v.id, '--json')
    t.not(r.code, 0, 'the orchestrating node died during the migration')
    await eventually(() => !d.running, 30_000, 200)
    const back = await cluster.start({ home: d.home, bootstrap: a.multiaddrs })
    let last: DeploymentView | undefined
    const settled = await eventually(async () => {
      const s = (last = await back.api.get<DeploymentView>(`/v1/deployments/${v.id}`))
      return s.phase === 'running' && s.migrations.at(-1)?.ok === true ? s : undefined
    }, 120_000, 500).catch((err: Error) => {
      throw new Error(`${err.message}; last status: ${JSON.stringify({ phase: last?.phase, replicas: last?.replicas, migrations: last?.migrations, events: last?.events.slice(-12) })}`)
    })
    t.not(settled.replicas[0]!.node, from.node, 'the migration finished after the restart')
    const running = (await Promise.all(workers.map(allocations))).flat().filter((x) => x.spec.labels?.['noir.slot'] === from.slot && x.state === 'running')
    t.equal(running.length, 1, 'exactly one replica of the slot runs')
    t.equal(await eventually(async () => (await ask(back, tallyOf(settled), '/tally/get').catch(() => undefined)) as number | undefined, 30_000, 300), 2, 'with its count')
    const h = (await ask(back, tallyOf(settled), '/tally/handover')) as { loadedAt: number; stoppedAt: number | null }
    t.ok(h.stoppedAt !== null && h.loadedAt < h.stoppedAt, 'the replica that runs is the one readied before the old one stopped (the re-run move adopted it)')
    await noir(back.home, 'stop', v.id)
  })

  await t.test('a protected replica lost with its node resumes from its last checkpoint elsewhere', async (t) => {
    writeFileSync(join(work, 'guarded.yaml'), [
      'apiVersion: noir/v1', 'kind: service', 'name: guarded', 'lane: protected',
      `runtime: { type: container, image: ${JSON.stringify(BASE_IMAGE)}, command: [sh, -c, "trap 'exit 0' TERM; [ -f /state/id ] || echo made-$NOIR_SLOT-$(date +%s%N) > /state/id; echo start >> /state/starts; while true; do sleep 0.2; done"] }`,
      'resources: { cpu: 0.2, memory: 32Mi }', 'constraints: { labels: { role: worker } }', 'service: { replicas: 2 }', 'stateDir: /state', '',
    ].join('\n'))
    const v = await deploy(a.home, join(work, 'guarded.yaml'))
    t.equal(v.phase, 'running', `the protected service runs (${v.reason ?? ''})`)
    const lost = v.replicas[0]!
    const victim = byDid(lost.node)
    const alloc = (await allocations(victim)).find((x) => x.id === `c-${lost.contractId}`)!
    const made = await eventually(() => {
      try {
        return readFileSync(join(alloc.spec.stateDir, 'id'), 'utf8')
      } catch {
        return undefined
      }
    }, 30_000, 200)
    const k = await eventually(async () => (await a.api.get<DeploymentView>(`/v1/deployments/${v.id}`)).replicas[0]!.lastCheckpoint ?? undefined, 60_000, 300)
    t.match(k.digest, /^sha256:[0-9a-f]{64}$/, `the replica was checkpointed while it ran (${k.bytes} bytes)`)
    await victim.kill()
    const after = await eventually(async () => {
      const s = await a.api.get<DeploymentView>(`/v1/deployments/${v.id}`)
      const r = s.replicas[0]!
      return s.phase === 'running' && r.node !== lost.node && r.state === 'running' ? s : undefined
    }, 120_000, 500)
    const r = after.replicas[0]!
    t.ok(after.failovers.some((f) => f.slot === lost.slot && f.from === lost.node), 'a failover of the lost slot is recorded')
    const host = byDid(r.node)
    const newAlloc = (await allocations(host)).find((x) => x.id === `c-${r.contractId}`)!
    t.equal(readFileSync(join(newAlloc.spec.stateDir, 'id'), 'utf8'), made, 'the replacement has the checkpointed file')
    t.ok(readFileSync(join(newAlloc.spec.stateDir, 'starts'), 'utf8').split('\n').filter(Boolean).length >= 2, 'and started on top of it')
    await noir(a.home, 'stop', v.id)
  })
})
