// The microvm executor passes the Executor compliance suite with real QEMU guests booted from the noir
// test image (scripts/ci/images/microvm.sh: a Debian kernel and a busybox initramfs); a published port
// reaches a server inside a guest; a guest out of memory is reported as OOM.
import t from 'tap'
import { file, qemu, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { runExecutorCompliance, type ComplianceScenario } from './executor-compliance.ts'
import { MicrovmExecutor, defaultMicrovmImage } from '../executor/microvm/index.ts'
import type { ExecSpec } from '../executor/executor.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'

const image = defaultMicrovmImage()
const why = 'built by scripts/ci/images/microvm.sh'

/** Each compliance scenario as a busybox shell script run by the guest's init. */
const scripts: Record<ComplianceScenario, string> = {
  'exit-zero': 'echo hello',
  'exit-code': 'exit 3',
  env: 'echo "$NOIR_COMPLIANCE_VALUE"',
  'log-stream': 'for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.2; done',
  graceful: "trap 'echo term; exit 0' TERM; while :; do sleep 0.1; done",
  'ignore-term': "trap '' TERM; while :; do sleep 1; done",
  busy: "x=$(head -c 4000000 /dev/zero | tr '\\0' a); while :; do :; done",
  'state-write': 'echo persisted > /state/out.txt',
  'state-read': 'cat /state/out.txt',
  sleep: 'sleep 600',
}

if (requireOrSkip(t, qemu, file(image.kernel, why), file(image.initrd, why))) {
  const workDir = mkdtempSync(join(tmpdir(), 'noir-microvm-test-'))
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }))
  const executor = new MicrovmExecutor({ workDir })
  runExecutorCompliance(t, {
    executor,
    waitLimitMs: 90_000,
    makeSpec: (scenario, ctx): ExecSpec => ({
      ...ctx,
      runtime: { kind: 'microvm', kernel: image.kernel, initrd: image.initrd, command: ['sh', '-c', scripts[scenario]] },
      limits: { cpu: 1, memoryBytes: 128 * 1024 * 1024 },
      network: 'none',
    }),
  })
}

t.test('a published port reaches a server in the guest through 127.0.0.1', async (t) => {
  if (!requireOrSkip(t, qemu, file(image.kernel, why), file(image.initrd, why))) return
  const workDir = mkdtempSync(join(tmpdir(), 'noir-microvm-net-'))
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }))
  const executor = new MicrovmExecutor({ workDir })
  const hostPort = await freePort()
  const handle = await executor.prepare({
    allocationId: 'net1',
    runtime: { kind: 'microvm', kernel: image.kernel, initrd: image.initrd, command: ['sh', '-c', 'mkdir -p /tmp/www && echo hello-from-guest > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www'] },
    env: {},
    limits: { cpu: 1, memoryBytes: 128 * 1024 * 1024 },
    network: { ports: [{ containerPort: 8080, hostPort, protocol: 'tcp' }] },
    stateDir: workDir,
  })
  t.teardown(async () => {
    await executor.stop(handle, { graceMs: 0 }).catch(() => undefined)
    await executor.remove(handle)
  })
  await executor.start(handle)
  let body = ''
  for (let i = 0; i < 60 && body === ''; i++) {
    body = await fetch(`http://127.0.0.1:${hostPort}/index.html`).then((r) => r.text(), () => '')
    if (body === '') await new Promise((r) => setTimeout(r, 250))
  }
  t.equal(body.trim(), 'hello-from-guest', 'the guest\'s web server answered on the published port')
  const status = await executor.stop(handle, { graceMs: 5000 })
  t.equal(status.reason, 'stopped', 'httpd ends on SIGTERM: a graceful stop')
})

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

t.test('a guest workload that allocates beyond the VM memory is OOM-killed inside the guest and reported as oom', async (t) => {
  if (!requireOrSkip(t, qemu, file(image.kernel, why), file(image.initrd, why))) return
  const workDir = mkdtempSync(join(tmpdir(), 'noir-microvm-oom-'))
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }))
  const executor = new MicrovmExecutor({ workDir })
  const handle = await executor.prepare({
    allocationId: 'oom1',
    // The shell keeps growing one variable until the guest kernel's OOM killer ends it.
    runtime: { kind: 'microvm', kernel: image.kernel, initrd: image.initrd, command: ['sh', '-c', 'x=a; while :; do x="$x$x"; done'] },
    env: {},
    limits: { cpu: 1, memoryBytes: 96 * 1024 * 1024 },
    network: 'none',
    stateDir: workDir,
  })
  t.teardown(async () => {
    await executor.stop(handle, { graceMs: 0 }).catch(() => undefined)
    await executor.remove(handle)
  })
  await executor.start(handle)
  const status = await executor.wait(handle)
  t.equal(status.reason, 'oom', `reason oom (${JSON.stringify(status)})`)
  t.equal(status.oomKilled, true)
  t.equal(status.code, 137, 'the workload died of SIGKILL (128 + 9)')
})
