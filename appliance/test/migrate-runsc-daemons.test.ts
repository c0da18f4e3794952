// `noir migrate` of a container under gVisor's runsc between real daemons (spec/migration.md "Process-level
// checkpoints"): a shell counting in memory moves with its memory. On the new node it counts on from where it
// stopped (not from 1), and it never started again (its one `start` line). Where runsc is missing it skips (a
// failure under CI=true).
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { clusterFor, NOIR_BIN, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip, runsc } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'
import type { MigrationRecord } from '../../actors/deployment/model.ts'

const BASE_IMAGE = 'noir/busybox:latest'
const share = 'cpu=2,memory=1GiB,disk=2GiB,gpu=0'
const work = mkdtempSync(join(tmpdir(), 'noir-migrate-runsc-test-'))

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
  spec: { stateDir: string; runtime: { runtime?: string } }
  handle: { ref: string } | null
}
const allocations = async (d: DaemonHandle): Promise<Alloc[]> => {
  const r = await d.api.get<Alloc[] | { allocations: Alloc[] }>('/v1/allocations')
  return Array.isArray(r) ? r : r.allocations
}
const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}
const countIn = (dir: string): number => Number((read(join(dir, 'count')) ?? '0').trim() || '0')

t.test('noir migrate keeps a process\'s in-memory counter (runsc)', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(BASE_IMAGE), runsc)) return
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const cluster = clusterFor(t)
  const cfg = (role: string) => ({ config: { share, orchestration: { beatMs: 200, bidWindowMs: 1000, labels: { role } } } as never })
  const a = await cluster.start(cfg('consumer'))
  const b = await cluster.start({ ...cfg('worker'), bootstrap: a.multiaddrs })
  const c = await cluster.start({ ...cfg('worker'), bootstrap: a.multiaddrs })
  const workers = [b, c]
  const byDid = (did: string | null | undefined): DaemonHandle => workers.find((w) => w.did === did)!
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 2, 60_000)
  await new Promise((r) => setTimeout(r, 1500))

  // the count lives in the shell's memory; /state/count only shows it, /state/starts counts the starts
  writeFileSync(join(work, 'counter.yaml'), [
    'apiVersion: noir/v1', 'kind: service', 'name: counter',
    `runtime: { type: container, image: ${JSON.stringify(BASE_IMAGE)}, checkpoint: process, command: [sh, -c, "trap 'exit 0' TERM; echo start >> /state/starts; i=0; while true; do i=$((i+1)); echo $i > /state/count; sleep 0.1; done"] }`,
    'resources: { cpu: 0.5, memory: 128Mi }', 'constraints: { labels: { role: worker } }', 'stateDir: /state', '',
  ].join('\n'))
  const d = await noir(a.home, 'deploy', join(work, 'counter.yaml'), '--wait', '--json')
  t.equal(d.code, 0, `noir deploy: ${d.stderr.slice(0, 400)}`)
  const v = JSON.parse(d.stdout) as DeploymentView
  t.equal(v.phase, 'running', `the counter runs (${v.reason ?? ''})`)
  const from = v.replicas[0]!
  const oldAlloc = (await allocations(byDid(from.node))).find((x) => x.id === `c-${from.contractId}`)!
  t.equal(oldAlloc.spec.runtime.runtime, 'runsc', 'under runsc')
  t.match(oldAlloc.handle?.ref, /^runsc-/, 'run directly by the node (an OCI bundle)')
  await eventually(() => (countIn(oldAlloc.spec.stateDir) >= 30 ? true : undefined), 60_000, 200)

  const r = await noir(a.home, 'migrate', v.id, '--json')
  t.equal(r.code, 0, `noir migrate: ${r.stderr.slice(0, 400)}`)
  const m = JSON.parse(r.stdout) as MigrationRecord
  const atCheckpoint = countIn(oldAlloc.spec.stateDir)
  t.not(m.to, from.node, 'it moved to another node')
  t.ok((m.checkpoint?.bytes ?? 0) > 100_000, `the process image travelled in the checkpoint (${m.checkpoint?.bytes} bytes, gap ${m.gapMs} ms)`)
  t.comment(`gap ${m.gapMs} ms, checkpoint ${m.checkpoint?.bytes} bytes, count at the checkpoint ${atCheckpoint}`)

  const after = await a.api.get<DeploymentView>(`/v1/deployments/${v.id}`)
  const newAlloc = (await allocations(byDid(m.to))).find((x) => x.id === `c-${after.replicas[0]!.contractId}`)!
  t.equal(newAlloc.state, 'running', 'it runs on the new node')
  t.not(newAlloc.spec.stateDir, oldAlloc.spec.stateDir, 'in a state directory of its own')
  const later = await eventually(() => {
    const n = countIn(newAlloc.spec.stateDir)
    return n > atCheckpoint + 5 ? n : undefined
  }, 30_000, 200)
  t.ok(later > atCheckpoint, `the count goes on from ${atCheckpoint} (now ${later}), not from 1`)
  t.equal((read(join(newAlloc.spec.stateDir, 'starts')) ?? '').split('\n').filter(Boolean).length, 1, 'the process never started again: it was restored')
  t.notOk(existsSync(join(newAlloc.spec.stateDir, '.noir-process')), 'the process image is not in the workload\'s state directory')
  t.notOk(existsSync(join(dirname(newAlloc.spec.stateDir), 'process-image')), 'and was deleted once restored')
  const old = (await allocations(byDid(from.node))).find((x) => x.id === oldAlloc.id)
  t.not(old?.state ?? 'removed', 'running', `the old node no longer runs it (${old?.state ?? 'removed'})`)
  await noir(a.home, 'stop', v.id)
})
