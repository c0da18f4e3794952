// QEMU save and resume with real QEMU guests booted from the noir test image: a guest shell counting in
// memory is paused and saved through QMP, its QEMU ended, a new QEMU started with -incoming from the saved
// file; the count continues from where it stopped (not from 1), so the guest's memory came back.
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { file, qemu, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { defaultMicrovmImage } from '../executor/microvm/index.ts'
import { encodeCpio, workloadScript } from '../executor/microvm/initramfs.ts'
import { accelArgs, detectAccelerator, tcgKernelParams } from '../executor/microvm/accel.ts'
import { QmpClient, incomingArgs, resumeVm, saveVmState } from '../executor/microvm/vm-state.ts'
import { VmStateError } from '../executor/microvm/errors.ts'

const image = defaultMicrovmImage()
const why = 'built by scripts/ci/images/microvm.sh'


interface Vm {
  proc: ChildProcess
  out: () => string
  qmp: QmpClient
}

async function bootVm(dir: string, name: string, extra: string[]): Promise<Vm> {
  // KVM when it works on this host (a nested one may refuse it), TCG otherwise; both save and resume.
  const { accel } = await detectAccelerator('qemu-system-x86_64', image.kernel)
  const append = ['console=ttyS0', 'loglevel=2', 'panic=-1', 'reboot=t', 'pci=off', ...(accel === 'tcg' ? tcgKernelParams() : [])].join(' ')
  const qmpPath = join(dir, `${name}.qmp`)
  const proc = spawn('qemu-system-x86_64', [
    '-M', 'microvm', ...accelArgs(accel), '-m', '128', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-serial', 'stdio',
    '-kernel', image.kernel, '-initrd', join(dir, 'initramfs.img'), '-append', append,
    '-nic', 'none', '-qmp', `unix:${qmpPath},server=on,wait=off`, ...extra,
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout?.on('data', (b: Buffer) => (out += b.toString()))
  proc.stderr?.on('data', (b: Buffer) => (out += b.toString()))
  for (let i = 0; i < 200 && !existsSync(qmpPath); i++) await new Promise((r) => setTimeout(r, 50))
  const qmp = await QmpClient.connect(qmpPath).catch((e: unknown) => {
    throw new Error(`QMP of ${name} unreachable (${String(e)}); QEMU said: ${out}`)
  })
  return { proc, out: () => out, qmp }
}

const counts = (s: string): number[] => [...s.matchAll(/count (\d+)/g)].map((m) => Number(m[1]))

async function until(pred: () => boolean, what: string, ms = 90_000): Promise<void> {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const stop = async (vm: Vm): Promise<void> => {
  vm.qmp.close()
  if (vm.proc.exitCode === null && vm.proc.signalCode === null) {
    const gone = new Promise((r) => vm.proc.once('exit', r))
    vm.proc.kill('SIGKILL')
    await gone
  }
}

t.test('a guest saved through QMP and loaded with -incoming keeps its in-memory count', async (t) => {
  if (!requireOrSkip(t, qemu, file(image.kernel, why), file(image.initrd, why))) return
  const dir = mkdtempSync(join(tmpdir(), 'noir-vmstate-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const script = workloadScript(['sh', '-c', 'i=0; while :; do i=$((i+1)); echo "count $i"; sleep 0.2; done'], {})
  const extraCpio = encodeCpio([{ path: 'noir' }, { path: 'noir/workload.sh', data: new TextEncoder().encode(script), mode: 0o755 }])
  const base = readFileSync(image.initrd)
  writeFileSync(join(dir, 'initramfs.img'), Buffer.concat([base, Buffer.alloc((512 - (base.length % 512)) % 512), extraCpio]))

  const first = await bootVm(dir, 'first', [])
  t.teardown(() => stop(first))
  await until(() => counts(first.out()).length >= 5, 'the guest to count to 5')
  const stateFile = join(dir, 'vm.state')
  await saveVmState(first.qmp, stateFile)
  const before = counts(first.out())
  const last = before[before.length - 1] ?? 0
  await stop(first)
  t.ok(readFileSync(stateFile).length > 1024 * 1024, 'the saved state holds the guest memory')

  const second = await bootVm(dir, 'second', incomingArgs(stateFile))
  t.teardown(() => stop(second))
  await resumeVm(second.qmp)
  await until(() => counts(second.out()).length >= 3, 'the resumed guest to count on', 60_000)
  const after = counts(second.out())
  t.equal(after[0], last + 1, `the count continues after ${last} (no reboot: it does not start at 1)`)
  t.ok(after.every((n, i) => i === 0 || n === (after[i - 1] ?? 0) + 1), 'the count goes on one by one')
})

t.test('saving to a path QEMU cannot write fails with VmStateError', async (t) => {
  if (!requireOrSkip(t, qemu, file(image.kernel, why), file(image.initrd, why))) return
  const dir = mkdtempSync(join(tmpdir(), 'noir-vmstate-bad-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'initramfs.img'), readFileSync(image.initrd))
  const vm = await bootVm(dir, 'bad', [])
  t.teardown(() => stop(vm))
  await t.rejects(saveVmState(vm.qmp, join(dir, 'no-such-dir', 'vm.state')), VmStateError)
})
