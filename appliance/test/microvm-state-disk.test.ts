// A microVM whose state is on a virtio-blk disk (runtime.stateDiskBytes; spec/microvm.md "State disk"), with
// real QEMU guests booted from the noir test image: the guest writes to /state (the disk), suspend() saves its
// memory beside the disk and stop() ends the paused QEMU; a new instance on a copy of that state directory
// resumes the guest: its in-memory count goes on from the last number, and its file is there. A state
// directory whose disk is a link is refused; a saved state QEMU cannot load fails the start and is dropped (the
// next launch boots from the disk).
import t from 'tap'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { file, microvmStateDisk, qemu, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { MicrovmExecutor, defaultMicrovmImage } from '../executor/microvm/index.ts'
import type { ExecHandle, ExecSpec, Executor, LogLine } from '../executor/executor.ts'
import { InvalidExecSpecError } from '../errors.ts'
import { MicrovmBootError } from '../executor/microvm/errors.ts'

const image = defaultMicrovmImage()
const why = 'built by scripts/ci/images/microvm.sh'
const imageEnv = join(image.initrd, '..', 'image.env')
// counts in memory; the first start (no /state/id yet) writes its id to the disk
const COUNTER = '[ -f /state/id ] || echo "made-$(date +%s)" > /state/id; sync; i=0; while :; do i=$((i+1)); echo "count $i $(cat /state/id)"; sleep 0.3; done'

const spec = (id: string, stateDir: string): ExecSpec => ({
  allocationId: id,
  runtime: { kind: 'microvm', kernel: image.kernel, initrd: image.initrd, command: ['sh', '-c', COUNTER], stateDiskBytes: 16 * 1024 * 1024 },
  env: {},
  limits: { cpu: 1, memoryBytes: 128 * 1024 * 1024 },
  network: 'none',
  stateDir,
})

async function collect(ex: Executor, h: ExecHandle, lines: LogLine[]): Promise<void> {
  for await (const l of ex.logs(h, { follow: true })) lines.push(l)
}
const counts = (lines: LogLine[]): Array<{ n: number; id: string }> =>
  lines.flatMap((l) => {
    const m = /^count (\d+) (\S+)$/.exec(l.line)
    return m ? [{ n: Number(m[1]), id: m[2]! }] : []
  })
async function until(pred: () => boolean, what: string, ms = 120_000): Promise<void> {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

t.test('a state-disk guest suspended on one state directory resumes from a copy of it', async (t) => {
  if (!requireOrSkip(t, qemu, file(image.kernel, why), file(image.initrd, why), microvmStateDisk(imageEnv))) return
  const work = mkdtempSync(join(tmpdir(), 'noir-vmdisk-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const ex = new MicrovmExecutor({ workDir: join(work, 'vm') })
  const dirA = join(work, 'a')
  const h1 = await ex.prepare(spec('disk-a', dirA))
  t.teardown(() => ex.remove(h1))
  t.same(readdirSync(dirA), ['disk.img'], 'the state directory holds the state disk')
  await ex.start(h1)
  const first: LogLine[] = []
  void collect(ex, h1, first)
  await until(() => counts(first).length >= 4, 'the guest to count')
  t.equal(await ex.suspend(h1), true, 'suspended')
  const last = counts(first).at(-1)!
  const status = await ex.stop(h1, { graceMs: 2000 })
  t.equal(status.reason, 'stopped', `the paused QEMU ended at once as a stop (${status.message ?? ''})`)
  t.same(readdirSync(dirA).sort(), ['disk.img', 'vm.state'], 'its memory is saved beside the disk')

  // as a migration does: the directory carried over into another allocation's fresh state directory
  const dirB = join(work, 'b')
  cpSync(dirA, dirB, { recursive: true })
  const h2 = await ex.prepare(spec('disk-b', dirB))
  t.teardown(() => ex.remove(h2))
  const t0 = Date.now()
  await ex.start(h2)
  const resumedMs = Date.now() - t0
  const second: LogLine[] = []
  void collect(ex, h2, second)
  await until(() => counts(second).length >= 3, 'the resumed guest to count on', 60_000)
  const after = counts(second)
  t.equal(after[0]!.n, last.n + 1, `the count continues after ${last.n} (resumed in ${resumedMs} ms, not booted: it does not start at 1)`)
  t.equal(after[0]!.id, last.id, 'with the id it wrote to its disk')
  t.same(readdirSync(dirB), ['disk.img'], 'the saved state is consumed once loaded (a later launch boots from the disk)')
  await ex.stop(h2, { graceMs: 5000 })

  // a later launch on that directory boots afresh from the disk: the file is there, the count starts over
  const h3 = await ex.prepare(spec('disk-c', dirB))
  t.teardown(() => ex.remove(h3))
  await ex.start(h3)
  const third: LogLine[] = []
  void collect(ex, h3, third)
  await until(() => counts(third).length >= 1, 'the rebooted guest to count', 120_000)
  t.same(counts(third)[0], { n: 1, id: last.id }, 'booted from the disk: its file kept, its memory new')
  await ex.stop(h3, { graceMs: 5000 })
})

t.test('a state disk that is a link is refused', async (t) => {
  if (!requireOrSkip(t, qemu, file(image.kernel, why), file(image.initrd, why), microvmStateDisk(imageEnv))) return
  const work = mkdtempSync(join(tmpdir(), 'noir-vmdisk-link-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const ex = new MicrovmExecutor({ workDir: join(work, 'vm') })
  const dir = join(work, 'state')
  mkdirSync(dir)
  symlinkSync('/etc/passwd', join(dir, 'disk.img'))
  await t.rejects(ex.prepare(spec('disk-link', dir)), InvalidExecSpecError, 'a disk.img link to a host path is refused')
  rmSync(join(dir, 'disk.img'))
  symlinkSync('/etc/passwd', join(dir, 'vm.state'))
  await t.rejects(ex.prepare(spec('state-link', dir)), InvalidExecSpecError, 'a vm.state link to a host path is refused')
})

t.test('a saved state QEMU cannot load fails the start with MicrovmBootError and is dropped; the next launch boots from the disk', async (t) => {
  if (!requireOrSkip(t, qemu, file(image.kernel, why), file(image.initrd, why), microvmStateDisk(imageEnv))) return
  const work = mkdtempSync(join(tmpdir(), 'noir-vmdisk-bad-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const ex = new MicrovmExecutor({ workDir: join(work, 'vm') })
  const dir = join(work, 'state')
  mkdirSync(dir)
  writeFileSync(join(dir, 'vm.state'), 'not a QEMU migration stream\n'.repeat(100))
  const h1 = await ex.prepare(spec('bad-state', dir))
  t.teardown(() => ex.remove(h1))
  const err = await ex.start(h1).then(() => undefined, (e: Error) => e)
  t.ok(err instanceof MicrovmBootError, `the start fails with MicrovmBootError (${err?.message.slice(0, 200) ?? 'it started'})`)
  await until(() => !existsSync(join(dir, 'vm.state')), 'the broken saved state to be dropped', 60_000)
  t.pass('the broken saved state is dropped')
  const h2 = await ex.prepare(spec('bad-state-again', dir))
  t.teardown(() => ex.remove(h2))
  await ex.start(h2)
  const lines: LogLine[] = []
  void collect(ex, h2, lines)
  await until(() => counts(lines).length >= 1, 'the guest booted from the disk to count', 120_000)
  t.equal(counts(lines)[0]!.n, 1, 'booted afresh from the disk')
  await ex.stop(h2, { graceMs: 5000 })
})
