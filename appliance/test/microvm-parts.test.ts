// The microvm executor's pure parts against real tools: the per-instance cpio archive (read back by
// busybox cpio), the workload script (run by a real shell), the QEMU command line, the typed refusals of
// prepare(), and the accelerator choice (KVM only when a guest really boots under it).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encodeCpio, workloadScript } from '../executor/microvm/initramfs.ts'
import { kernelCommandLine, qemuArgs, memoryMiB, vcpus } from '../executor/microvm/qemu-args.ts'
import { MicrovmExecutor, MicrovmImageNotFoundError, AcceleratorUnavailableError, defaultMicrovmImage } from '../executor/microvm/index.ts'
import { InvalidExecSpecError } from '../errors.ts'
import type { ExecSpec } from '../executor/executor.ts'
import { file, qemu, requireOrSkip, root } from '../../scripts/testing/requirements.ts'

const busybox: { name: string; missing(): string | undefined } = {
  name: 'busybox',
  missing: () => {
    try {
      execFileSync('busybox', ['true'])
      return undefined
    } catch {
      return 'busybox is not installed (Debian package busybox-static)'
    }
  },
}

const spec = (over: Partial<ExecSpec> = {}): ExecSpec => ({
  allocationId: 'a1',
  runtime: { kind: 'microvm', kernel: '/k', initrd: '/i', command: ['true'] },
  env: {},
  limits: { cpu: 1.5, memoryBytes: 100 * 1024 * 1024 + 1 },
  network: 'none',
  stateDir: '/tmp/state,dir',
  ...over,
})

t.test('the per-instance archive is a newc cpio that busybox reads back, file contents included', async (t) => {
  if (!requireOrSkip(t, busybox)) return
  const dir = mkdtempSync(join(tmpdir(), 'noir-cpio-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bytes = encodeCpio([{ path: 'noir' }, { path: 'noir/workload.sh', data: new TextEncoder().encode('echo hi\n'), mode: 0o755 }, { path: 'noir/odd', data: new Uint8Array([1, 2, 3]) }])
  t.equal(bytes.length % 4, 0, 'entries are padded to 4 bytes')
  const listed = execFileSync('busybox', ['cpio', '-t'], { input: bytes, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] })
  t.same(listed.trim().split('\n'), ['noir', 'noir/workload.sh', 'noir/odd'])
  execFileSync('busybox', ['cpio', '-i', '-d'], { input: bytes, cwd: dir, stdio: ['pipe', 'ignore', 'ignore'] })
  t.equal(execFileSync('cat', [join(dir, 'noir/workload.sh')], { encoding: 'utf8' }), 'echo hi\n')
})

t.test('the workload script passes argv words and env values through a real shell unchanged', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-script-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const tricky = `it's "quoted" $HOME \`x\` \\ ; | & *`
  const script = workloadScript(['sh', '-c', 'printf "%s\\n" "$V" "$1"', 'argv0', tricky], { V: tricky })
  const path = join(dir, 'w.sh')
  writeFileSync(path, script)
  t.equal(execFileSync('sh', [path], { encoding: 'utf8' }), `${tricky}\n${tricky}\n`)
  t.throws(() => workloadScript(['true'], { 'BAD-NAME': 'x' }), InvalidExecSpecError, 'an env name a shell cannot export is refused')
  t.throws(() => workloadScript([], {}), InvalidExecSpecError, 'an empty command is refused')
})

t.test('the QEMU command line carries the limits, the state share, and no network unless ports are published', async (t) => {
  const none = qemuArgs(spec(), { accel: 'tcg', kernel: '/k', initrd: '/i2', append: 'x', memoryMiB: memoryMiB(100 * 1024 * 1024 + 1), cpus: vcpus(1.5) })
  const at = (args: string[], flag: string): string | undefined => args[args.indexOf(flag) + 1]
  t.equal(at(none, '-m'), '101', 'memory rounds up to whole MiB')
  t.equal(at(none, '-smp'), '2', 'vCPUs round up (the quota enforces the fraction)')
  t.equal(at(none, '-nic'), 'none')
  t.ok(none.includes('-no-reboot'), 'a guest reboot ends QEMU')
  t.equal(at(none, '-fsdev'), 'local,id=state,path=/tmp/state,,dir,security_model=none', 'a comma in the state path is escaped')
  const ports = qemuArgs(spec({ network: { ports: [{ containerPort: 80, hostPort: 43001, protocol: 'tcp' }] } }), { accel: 'tcg', kernel: '/k', append: '', memoryMiB: 64, cpus: 1 })
  t.equal(at(ports, '-netdev'), 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:43001-:80', 'published ports forward from 127.0.0.1 only, and the guest reaches nothing else')
  t.notOk(ports.includes('-nic'))
  t.match(kernelCommandLine(spec(), 'tcg'), /tsc_early_khz=\d+ tsc=reliable/, 'TCG guests get the host TSC rate')
  t.notMatch(kernelCommandLine(spec(), 'kvm'), /tsc_early_khz/)
  t.match(kernelCommandLine(spec({ runtime: { kind: 'microvm', kernel: '/k', append: 'foo=bar' } }), 'kvm'), /noir\.state=9p foo=bar$/, 'the spec\'s append comes last')
})

t.test('a state-disk guest gets its disk read-write instead of the 9p share, a QMP socket, and -incoming to resume', async (t) => {
  const disk = spec({ runtime: { kind: 'microvm', kernel: '/k', initrd: '/i', command: ['true'], stateDiskBytes: 16 << 20 } })
  const args = qemuArgs(disk, { accel: 'tcg', kernel: '/k', append: '', memoryMiB: 64, cpus: 1, stateDisk: '/tmp/state,dir/disk.img', qmp: '/w/qmp.sock', incoming: '/tmp/state,dir/vm.state' })
  const at = (flag: string): string | undefined => args[args.indexOf(flag) + 1]
  t.equal(at('-drive'), 'id=state,file=/tmp/state,,dir/disk.img,format=raw,if=none', 'the disk, read-write (no snapshot overlay), a comma escaped')
  t.equal(at('-device'), 'virtio-blk-device,drive=state')
  t.notOk(args.includes('-fsdev'), 'no 9p share: QEMU refuses to migrate a guest with one')
  t.equal(at('-qmp'), 'unix:/w/qmp.sock,server=on,wait=off')
  t.equal(at('-incoming'), "exec:cat '/tmp/state,dir/vm.state'", 'the saved state is read back from the file')
  t.match(kernelCommandLine(disk, 'kvm'), /noir\.state=disk/, 'the init mounts the disk at /state')
  const share = qemuArgs(spec(), { accel: 'tcg', kernel: '/k', append: '', memoryMiB: 64, cpus: 1 })
  t.notOk(share.includes('-qmp') || share.includes('-incoming'), 'a 9p guest has neither')
})

t.test('prepare refuses what it cannot run with typed errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-mv-prep-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ex = new MicrovmExecutor({ workDir: join(dir, 'work') })
  const kernel = join(dir, 'vmlinuz')
  writeFileSync(kernel, 'not really a kernel')
  await t.rejects(ex.prepare(spec({ stateDir: dir, runtime: { kind: 'microvm', kernel: join(dir, 'missing') } })), MicrovmImageNotFoundError)
  await t.rejects(ex.prepare(spec({ stateDir: dir, runtime: { kind: 'microvm', kernel, command: ['true'] } })), InvalidExecSpecError, 'a command needs the noir initramfs')
  await t.rejects(ex.prepare(spec({ stateDir: dir, runtime: { kind: 'wasm', module: kernel } })), InvalidExecSpecError, 'another kind')
  await t.rejects(ex.prepare(spec({ stateDir: dir, allocationId: '../escape', runtime: { kind: 'microvm', kernel } })), InvalidExecSpecError, 'an allocation id that is not a plain name')
  await t.rejects(ex.prepare(spec({ stateDir: dir, runtime: { kind: 'microvm', kernel, stateDiskBytes: 1024 } })), InvalidExecSpecError, 'a state disk too small for a file system')
  await t.rejects(ex.prepare(spec({ stateDir: dir, runtime: { kind: 'microvm', kernel, stateDiskBytes: 5 * 1024 ** 3 } })), InvalidExecSpecError, 'a state disk larger than a state archive may carry')
})

t.test('auto picks KVM only when a guest boots under it, and says why not; forcing kvm where it cannot boot is a typed error', async (t) => {
  const image = defaultMicrovmImage()
  if (!requireOrSkip(t, qemu, file(image.kernel, 'built by scripts/ci/images/microvm.sh'))) return
  const choice = await new MicrovmExecutor().accelerator(image.kernel)
  t.ok(['kvm', 'tcg'].includes(choice.accel))
  t.ok(choice.reason.length > 0, `reason: ${choice.reason}`)
  if (choice.accel === 'tcg') {
    await t.rejects(new MicrovmExecutor({ accel: 'kvm' }).accelerator(image.kernel), AcceleratorUnavailableError)
  } else {
    t.equal((await new MicrovmExecutor({ accel: 'kvm' }).accelerator(image.kernel)).accel, 'kvm')
  }
})

t.test('the process cgroup holds a busy process to its CPU quota and OOM-kills it at its memory limit', async (t) => {
  if (!requireOrSkip(t, root)) return
  const { ProcessCgroup } = await import('../executor/microvm/process-cgroup.ts')
  const { readProcessUsage } = await import('../executor/microvm/proc-usage.ts')
  const { spawn } = await import('node:child_process')
  const cpuGroup = ProcessCgroup.create(`noir-test-cpu-${process.pid}`, { cpu: 0.2 })
  const writable = { name: 'writable cgroup', missing: () => (cpuGroup === undefined ? 'no writable cpu cgroup under this process\' own' : undefined) }
  if (!requireOrSkip(t, writable) || cpuGroup === undefined) return
  t.teardown(() => cpuGroup.remove())
  const busy = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' })
  t.teardown(() => busy.kill('SIGKILL'))
  cpuGroup.add(busy.pid!)
  const a = readProcessUsage(busy.pid!)!
  await new Promise((r) => setTimeout(r, 1500))
  const b = readProcessUsage(busy.pid!)!
  const cores = (b.cpuNanos - a.cpuNanos) / 1.5e9
  t.ok(cores < 0.35, `a busy loop under a 0.2-core quota used ${cores.toFixed(2)} cores`)
  busy.kill('SIGKILL')

  const memGroup = ProcessCgroup.create(`noir-test-mem-${process.pid}`, { memoryBytes: 32 * 1024 * 1024 })
  if (memGroup === undefined || !memGroup.limitsMemory) return
  t.teardown(() => memGroup.remove())
  const hog = spawn('sh', ['-c', 'read go; x=a; while :; do x="$x$x"; done'], { stdio: ['pipe', 'ignore', 'ignore'] })
  memGroup.add(hog.pid!)
  hog.stdin.end('go\n')
  const ended = await new Promise<NodeJS.Signals | null>((r) => hog.on('exit', (_c, s) => r(s)))
  t.equal(ended, 'SIGKILL', 'the kernel killed it')
  t.ok(memGroup.oomKills() > 0, 'and the group counts the OOM kill')
})
