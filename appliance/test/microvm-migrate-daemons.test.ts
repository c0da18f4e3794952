// `noir migrate` of a microVM replica with its memory (spec/migration.md "Process-level checkpoints"): three
// `noir node start` processes on 127.0.0.1 (a consumer, two workers), real libp2p, real QEMU. The guest keeps
// its state on a virtio-blk disk (runtime.stateDisk) and counts in memory on its console; `noir migrate`
// pauses it, saves its memory beside the disk (QEMU save), ships both as one digest-checked state artifact to
// the other worker, which starts QEMU with -incoming on them: the count goes on from where it stopped (not
// from 1) with the id the guest wrote to its disk. Then the checkpoint's bytes are tampered with on the nodes
// holding it, and a node fetching it (as a target does before it starts anything) refuses it with
// ArtifactDigestMismatchError and keeps nothing; when the new node is then lost, the slot's start from that
// checkpoint on the other worker is refused the same way, and nothing runs from it.
import t from 'tap'
import { execFile } from 'node:child_process'
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterFor, NOIR_BIN, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { file, microvmStateDisk, qemu, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { defaultMicrovmImage } from '../executor/microvm/index.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'
import type { MigrationRecord } from '../../actors/deployment/model.ts'

const image = defaultMicrovmImage()
const why = 'built by scripts/ci/images/microvm.sh'
const share = 'cpu=2,memory=1GiB,disk=2GiB,gpu=0'

function noir(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { timeout: 300_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
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
const counts = (text: string): Array<{ n: number; id: string }> => [...text.matchAll(/count (\d+) (made-\d+)/g)].map((m) => ({ n: Number(m[1]), id: m[2]! }))

t.test('noir migrate of a state-disk microVM: the guest resumes on the other worker with its memory', async (t) => {
  if (!requireOrSkip(t, qemu, file(image.kernel, why), file(image.initrd, why), microvmStateDisk(join(image.initrd, '..', 'image.env')))) return
  const work = mkdtempSync(join(tmpdir(), 'noir-microvm-migrate-'))
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

  copyFileSync(image.kernel, join(work, 'kernel'))
  copyFileSync(image.initrd, join(work, 'initramfs.cpio.gz'))
  const counter = '[ -f /state/id ] || echo made-$(date +%s%N) > /state/id; sync; i=0; while :; do i=$((i+1)); echo "count $i $(cat /state/id)"; sleep 0.3; done'
  writeFileSync(join(work, 'vm.yaml'), [
    'apiVersion: noir/v1', 'kind: service', 'name: vm-counter',
    `runtime: { type: microvm, kernel: ./kernel, initrd: ./initramfs.cpio.gz, stateDisk: 16Mi, command: [sh, -c, ${JSON.stringify(counter)}] }`,
    'resources: { cpu: 1, memory: 128Mi }', 'constraints: { labels: { role: worker } }', '',
  ].join('\n'))
  const d = await noir(a.home, 'deploy', join(work, 'vm.yaml'), '--wait', '--json')
  t.equal(d.code, 0, `noir deploy: ${d.stderr.slice(0, 400)}`)
  const v = JSON.parse(d.stdout) as DeploymentView
  t.equal(v.phase, 'running', `the guest runs (${v.reason ?? ''})`)
  const from = v.replicas[0]!
  const oldAlloc = (await allocations(byDid(from.node))).find((x) => x.id === `c-${from.contractId}`)!
  t.same(readdirSync(oldAlloc.spec.stateDir), ['disk.img'], "the replica's state directory holds its state disk")
  const before = await eventually(async () => {
    const cs = counts((await noir(a.home, 'logs', v.id)).stdout)
    return cs.length >= 5 ? cs : undefined
  }, 120_000, 500)
  const seen = before.at(-1)!

  const r = await noir(a.home, 'migrate', v.id, '--json')
  t.equal(r.code, 0, `noir migrate: ${r.stderr.slice(0, 400)}`)
  const m = JSON.parse(r.stdout) as MigrationRecord
  t.not(m.to, from.node, 'to the other worker')
  t.match(m.checkpoint?.digest, /^sha256:[0-9a-f]{64}$/, 'the disk and the saved memory travelled as an artifact')
  t.ok((m.checkpoint?.bytes ?? 0) > 16 * 1024 * 1024, `of the disk and the memory (${m.checkpoint?.bytes} bytes)`)
  t.comment(`microVM migration: gap ${m.gapMs} ms, checkpoint ${m.checkpoint?.bytes} bytes`)

  const after = await a.api.get<DeploymentView>(`/v1/deployments/${v.id}`)
  t.equal(after.replicas[0]!.node, m.to, 'status names the new node')
  t.equal(after.replicas[0]!.state, 'running')
  const resumed = await eventually(async () => {
    const cs = counts((await noir(a.home, 'logs', v.id)).stdout)
    return cs.length >= 3 ? cs : undefined
  }, 60_000, 500)
  t.ok(resumed[0]!.n > seen.n, `the count goes on on the new node: ${resumed[0]!.n} after ${seen.n} seen before the move (a boot would start at 1)`)
  t.equal(resumed[0]!.id, seen.id, 'with the id the guest wrote to its disk before the move')
  t.ok(resumed.every((x, i) => i === 0 || x.n === resumed[i - 1]!.n + 1), 'one by one')
  const newAlloc = (await allocations(byDid(m.to))).find((x) => x.id === `c-${after.replicas[0]!.contractId}`)!
  t.equal(newAlloc.state, 'running')
  t.same(readdirSync(newAlloc.spec.stateDir), ['disk.img'], 'the saved memory was loaded and dropped; the disk is the state')
  const old = (await allocations(byDid(from.node))).find((x) => x.id === oldAlloc.id)
  t.not(old?.state ?? 'removed', 'running', `the old node no longer runs it (${old?.state ?? 'removed'})`)

  // The checkpoint's bytes changed where they are kept (its digest stays): a node fetching it refuses them.
  const digest = m.checkpoint!.digest
  const hex = digest.slice('sha256:'.length)
  let tampered = 0
  for (const w of workers) {
    const blob = join(w.home, 'artifacts', 'blobs', hex)
    if (!existsSync(blob)) continue
    const fd = openSync(blob, 'r+')
    const at = Math.floor(statSync(blob).size / 2)
    const one = Buffer.alloc(1)
    readSync(fd, one, 0, 1, at)
    writeSync(fd, Buffer.from([one[0]! ^ 0xff]), 0, 1, at)
    closeSync(fd)
    tampered++
  }
  t.ok(tampered >= 1, `the checkpoint was tampered with on the ${tampered} node(s) holding it`)
  const refused = await failure(a.api.post('/v1/artifacts/fetch', { digest, from: [from.node] }))
  t.equal(refused.name, 'ArtifactDigestMismatchError', `a tampered state artifact is refused (${refused.message})`)
  const held = (await a.api.get<{ digest: string }[]>('/v1/artifacts')).map((x) => x.digest)
  t.notOk(held.includes(digest), 'and nothing of it is kept')

  // The node the guest moved to is lost: the slot is placed again from its last checkpoint (the migration's),
  // on the old node, whose copy was tampered with: its provider refuses to start from it.
  const now = byDid(m.to)
  const other = byDid(from.node)
  await now.kill()
  let last: DeploymentView | undefined
  const refusedStart = await eventually(async () => {
    const s = (last = await a.api.get<DeploymentView>(`/v1/deployments/${v.id}`))
    const text = JSON.stringify(s.events)
    return /ArtifactDigestMismatchError|changed on disk/.test(text) ? s : undefined
  }, 120_000, 500).catch((err: Error) => {
    throw new Error(`${err.message}; last status: ${JSON.stringify({ phase: last?.phase, replicas: last?.replicas, events: last?.events.slice(-10) })}`)
  })
  const said = JSON.stringify(refusedStart.events.find((e) => /ArtifactDigestMismatchError|changed on disk/.test(JSON.stringify(e))))
  t.ok(said, `a start from the tampered checkpoint is refused as a digest mismatch (the deployment says so: ${said.slice(0, 300)})`)
  const running = (await allocations(other)).filter((x) => x.spec.labels?.['noir.slot'] === from.slot && x.state === 'running')
  t.equal(running.length, 0, 'and nothing runs from it')
  await noir(a.home, 'stop', v.id)
})
