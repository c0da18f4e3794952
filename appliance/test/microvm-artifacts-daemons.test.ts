// A microVM's kernel and initramfs travel as artifacts (spec/artifacts.md "Deploying local files",
// spec/microvm.md): two `noir node start` processes on 127.0.0.1, real libp2p, real QEMU. The consumer's
// workload file names the kernel and the initramfs by local path; `noir deploy` turns them into artifacts
// of its store; the worker, whose catalog holds neither, fetches both by digest, checks them, and boots the
// guest whose init runs the job's command; the job's log and its state folder come back, and the signed
// provenance names both digests. A workload naming a kernel the worker's catalog lacks by name is not bid on.
import t from 'tap'
import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DaemonCluster, NOIR_BIN, eventually } from '../../scripts/testing/daemons.ts'
import { file, qemu, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { defaultMicrovmImage } from '../executor/microvm/index.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'
import { digestOf } from '../../artifacts/digest.ts'

const image = defaultMicrovmImage()
const why = 'built by scripts/ci/images/microvm.sh'

function noir(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { timeout: 300_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

t.test('a microVM job whose kernel and initramfs only the consumer has runs on a worker', async (t) => {
  if (!requireOrSkip(t, qemu, file(image.kernel, why), file(image.initrd, why))) return
  const work = mkdtempSync(join(tmpdir(), 'noir-microvm-artifacts-'))
  const cluster = new DaemonCluster()
  t.teardown(async () => {
    await cluster.cleanup()
    rmSync(work, { recursive: true, force: true })
  })
  const share = 'cpu=2,memory=1GiB,disk=2GiB,gpu=0'
  const cfg = (role: string) => ({ config: { share, orchestration: { beatMs: 200, bidWindowMs: 1000, labels: { role } } } as never })
  const a = await cluster.start(cfg('consumer'))
  const b = await cluster.start({ ...cfg('worker'), bootstrap: a.multiaddrs })
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 1, 60_000)
  await new Promise((r) => setTimeout(r, 1500))

  // the consumer's own copies, beside its workload file
  copyFileSync(image.kernel, join(work, 'kernel'))
  copyFileSync(image.initrd, join(work, 'initramfs.cpio.gz'))
  const kernelDigest = digestOf(readFileSync(join(work, 'kernel')))
  const initrdDigest = digestOf(readFileSync(join(work, 'initramfs.cpio.gz')))
  const held = async (): Promise<string[]> => (await b.api.get<{ digest: string }[]>('/v1/artifacts')).map((x) => x.digest)
  t.notOk((await held()).some((d) => d === kernelDigest || d === initrdDigest), 'the worker holds neither before')

  writeFileSync(join(work, 'vm-job.yaml'), [
    'apiVersion: noir/v1', 'kind: job', 'name: vm-job',
    'runtime: { type: microvm, kernel: ./kernel, initrd: ./initramfs.cpio.gz, command: [sh, -c, "echo hello from the guest; echo persisted > /state/out.txt"] }',
    'resources: { cpu: 1, memory: 128Mi }', 'constraints: { labels: { role: worker } }', 'job: { retries: 0 }', '',
  ].join('\n'))
  const prepared = await noir(a.home, 'deploy', join(work, 'vm-job.yaml'), '--prepare', '--json')
  t.equal(prepared.code, 0, prepared.stderr.slice(0, 400))
  const named = JSON.parse(prepared.stdout) as { runtime: { kernel: string; initrd: string } }
  t.same([named.runtime.kernel, named.runtime.initrd], [kernelDigest, initrdDigest], 'the workload sent names both files by digest, never by path')

  const r = await noir(a.home, 'deploy', join(work, 'vm-job.yaml'), '--wait', '--json')
  const v = JSON.parse(r.stdout) as DeploymentView
  t.equal(v.phase, 'completed', `the guest ran the job (${v.reason ?? ''}; ${r.stderr.slice(0, 300)})`)
  t.equal(v.replicas[0]?.node, b.did, 'on the worker')
  const after = await held()
  t.ok(after.includes(kernelDigest) && after.includes(initrdDigest), 'the worker fetched the kernel and the initramfs by digest')

  const logs = await noir(a.home, 'logs', v.id)
  t.match(logs.stdout, /hello from the guest/, "the guest's output is the job's log")
  const out = join(work, 'out')
  const res = await noir(a.home, 'results', v.id, '-o', out, '--json')
  t.equal(res.code, 0, res.stderr.slice(0, 300))
  t.equal(readFileSync(join(out, 'out.txt'), 'utf8'), 'persisted\n', "the guest's state folder came back as the job's output")
  const p = await noir(a.home, 'provenance', v.id, '--json')
  const { record } = (JSON.parse(p.stdout) as { record: { body: { artifacts: string[] } } }[])[0]!
  t.same([...record.body.artifacts].sort(), [kernelDigest, initrdDigest].sort(), 'the signed provenance names the kernel and the initramfs it booted')

  // by name: the worker's owner installed no such kernel, so it does not bid
  writeFileSync(join(work, 'by-name.yaml'), [
    'apiVersion: noir/v1', 'kind: job', 'name: vm-by-name',
    'runtime: { type: microvm, kernel: not-installed, command: [sh, -c, "true"] }',
    'resources: { cpu: 1, memory: 128Mi }', 'constraints: { labels: { role: worker } }', '',
  ].join('\n'))
  const dry = await a.api.post<{ round: { bids: Array<{ node: string }>; declines: Array<{ node: string; reason: string }> } }>('/v1/bids/dry-run', { workload: JSON.parse((await noir(a.home, 'deploy', join(work, 'by-name.yaml'), '--prepare', '--json')).stdout) })
  t.notOk(dry.round.bids.some((x) => x.node === b.did), 'no bid for a kernel name the worker lacks')
  t.match(JSON.stringify(dry.round.declines.find((x) => x.node === b.did) ?? {}), /kernel 'not-installed'/, 'its decline says which entry is missing')
})
