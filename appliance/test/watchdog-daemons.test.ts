// After kill -9 of a provider daemon its containers must not keep running beside their replacement: the
// node's watchdog (a process that outlives the daemon) stops them once their grace has passed. Real daemons,
// real Docker. Also: a watchdog killed while its daemon lives is started again.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { eventually, startConnectedMesh, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'
import { GRACE_MS } from '../watchdog/lease.ts'

const IMAGE = 'noir/busybox:latest'

function running(slot: string, node: string): string[] {
  const r = spawnSync('docker', ['ps', '-q', '--filter', `label=noir.slot=${slot}`, '--filter', `label=noir.node=${node}`, '--filter', 'status=running'], { encoding: 'utf8' })
  return r.stdout.split('\n').filter((l) => l.trim())
}

function watchdogPids(home: string): number[] {
  const file = join(home, 'watchdog', 'watchdog.log')
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"watchdog started"')).map((l) => (JSON.parse(l) as { pid: number }).pid)
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('the watchdog of a provider killed with SIGKILL stops its replica within the grace; the replacement runs elsewhere', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const { nodes } = await startConnectedMesh(t, 3, { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 600 } })
  const [a, b] = nodes as [DaemonHandle, DaemonHandle, DaemonHandle]

  await t.test('a watchdog killed while its daemon runs is started again', async (t) => {
    const [first] = await eventually(() => { const p = watchdogPids(b.home); return p.length > 0 && p }, 10_000)
    t.ok(alive(first!), `b's watchdog runs (pid ${first})`)
    process.kill(first!, 'SIGKILL')
    const pids = await eventually(() => { const p = watchdogPids(b.home); return p.length > 1 && p }, 10_000)
    t.ok(alive(pids.at(-1)!), `a new watchdog runs (pid ${pids.at(-1)})`)
  })

  const d = await a.api.post<DeploymentView>('/v1/deployments', {
    workload: {
      apiVersion: 'noir/v1', kind: 'service', name: 'singleton', lane: 'protected',
      runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'while true; do sleep 1; done'] },
      resources: { cpu: 0.2, memory: '32Mi' }, service: { replicas: 2 },
    },
  })
  const v = await eventually(async () => {
    const x = await a.api.get<DeploymentView>(`/v1/deployments/${d.id}`)
    return x.phase === 'running' && x
  }, 60_000, 200)
  // The victim is a provider only (not the orchestrating node); the third node takes its slot.
  const rep = v.replicas.find((r) => r.node !== a.did)!
  const victim = nodes.find((n) => n.did === rep.node) as DaemonHandle
  t.equal(running(rep.slot, victim.did).length, 1, 'the replica runs on the victim')

  const killedAt = Date.now()
  await victim.kill() // SIGKILL
  // The victim never comes back: its container must still end, by its watchdog alone.
  const stoppedAt = await eventually(() => running(rep.slot, victim.did).length === 0 && Date.now(), 30_000, 50).catch((err: Error) => {
    t.comment(readFileSync(join(victim.home, 'watchdog', 'watchdog.log'), 'utf8'))
    throw err
  })
  const replacedAt = await eventually(async () => {
    const x = await a.api.get<DeploymentView>(`/v1/deployments/${d.id}`)
    const r = x.replicas.find((y) => y.slot === rep.slot)
    return r?.state === 'running' && r.node !== victim.did && Date.now()
  }, 30_000, 50)
  const overlap = Math.max(0, stoppedAt - replacedAt)
  t.comment(`kill -9 at 0 ms; stale copy stopped at ${stoppedAt - killedAt} ms; replacement running at ${replacedAt - killedAt} ms; overlap ${overlap} ms`)
  t.ok(stoppedAt - killedAt < GRACE_MS.protected + 5_000, `the stale copy was stopped within the grace plus the watchdog's poll and docker kill (${stoppedAt - killedAt} ms)`)
  const log = readFileSync(join(victim.home, 'watchdog', 'watchdog.log'), 'utf8')
  t.match(log, /stopped a replica its daemon stopped renewing/, 'the watchdog says what it did')
  await a.api.post(`/v1/deployments/${d.id}/stop`)
})
