// Runtime probes (appliance/executor/probe.ts): real commands run without blocking the event loop, each way
// a probe can fail is told apart, answers are cached for a while, and the executors' available() uses them.
import t from 'tap'
import { ActorExecutor } from '../executor/actor/actor-executor.ts'
import { MicrovmExecutor } from '../executor/microvm/microvm-executor.ts'
import { CachedProbe, probeCommand } from '../executor/probe.ts'

t.test('probeCommand: output on success; exit code, missing binary and time-out told apart', async (t) => {
  const ok = await probeCommand('sh', ['-c', 'echo hello'])
  t.same(ok, { ok: true, stdout: 'hello\n' })
  const failed = await probeCommand('sh', ['-c', 'echo partial; exit 3'])
  t.equal(failed.ok, false)
  t.equal(failed.reason, 'exit 3')
  t.equal(failed.stdout, 'partial\n')
  const missing = await probeCommand('/nonexistent/noir-probe-binary', [])
  t.equal(missing.ok, false)
  t.match(missing.reason, /ENOENT/)
  const slow = await probeCommand('sleep', ['5'], 100)
  t.equal(slow.ok, false)
  t.equal(slow.reason, 'timed out after 100 ms')
})

t.test('probeCommand does not block the event loop while the command runs', async (t) => {
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  await probeCommand('sleep', ['0.3'])
  clearInterval(timer)
  t.ok(ticks >= 10, `timers ran ${ticks} times during a 300 ms probe`)
})

t.test('CachedProbe runs once per ttl and shares a probe in flight', async (t) => {
  let runs = 0
  const p = new CachedProbe(async () => ++runs, 1000)
  const [a, b] = await Promise.all([p.get(0), p.get(10)])
  t.same([a, b, runs], [1, 1, 1], 'two askers, one run')
  t.equal(await p.get(999), 1, 'still fresh')
  t.equal(await p.get(1000), 2, 'expired: probed again')
})

t.test("executors' available() answers from real probes, with the reason when not", async (t) => {
  const vm = await new MicrovmExecutor({ qemuBinary: '/nonexistent/qemu-system-x86_64' }).available()
  t.equal(vm.ok, false)
  t.match(vm.ok ? '' : vm.reason, /cannot run \(Debian package qemu-system-x86\).*ENOENT/)
  const noPermission = await new ActorExecutor({ nodeBinary: '/bin/false' }).available()
  t.equal(noPermission.ok, false)
  t.match(noPermission.ok ? '' : noPermission.reason, /has no working permission model/)
  t.same(await new ActorExecutor({ nodeBinary: process.execPath }).available(), { ok: true }, 'this Node has one')
})
