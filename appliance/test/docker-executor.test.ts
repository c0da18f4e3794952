// The docker executor against the real dockerd: the compliance suite, then what only containers do
// (OOM, CPU quota, missing image, labels, read-only root, /dev/shm).
import t, { type Test } from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import Docker from 'dockerode'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { DockerExecutor, LABEL_ALLOCATION, LABEL_NODE, shmBytes } from '../executor/docker/docker-executor.ts'
import { DEFAULT_PIDS_LIMIT, type ExecSpec, type LogLine } from '../executor/executor.ts'
import { COMPLIANCE_ENV_NAME, COMPLIANCE_EXIT_CODE, runExecutorCompliance, type ComplianceScenario } from './executor-compliance.ts'
import { ImageNotFoundError } from '../errors.ts'

const IMAGE = 'noir/busybox:latest'
const MiB = 1024 * 1024

const fixtures: Record<ComplianceScenario, string> = {
  'exit-zero': 'echo hello',
  'exit-code': `exit ${COMPLIANCE_EXIT_CODE}`,
  env: `echo "$${COMPLIANCE_ENV_NAME}"`,
  'log-stream': 'for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.2; done',
  graceful: "trap 'echo term; exit 0' TERM; while :; do sleep 0.1; done",
  // PID 1 ignores signals it has no handler for; say so explicitly anyway.
  'ignore-term': "trap '' TERM; while :; do sleep 0.1; done",
  busy: 'x=$(head -c 1048576 /dev/zero | tr "\\0" a); while :; do :; done',
  'state-write': 'echo persisted > /state/out.txt',
  'state-read': 'cat /state/out.txt',
  sleep: 'sleep 300',
}

const sh = (script: string): string[] => ['/bin/sh', '-c', script]
const lines = async (it: AsyncIterable<LogLine>): Promise<string[]> => {
  const out: string[] = []
  for await (const l of it) out.push(l.line)
  return out
}

if (requireOrSkip(t, docker, dockerImage(IMAGE))) {
  const nodeId = `test-node-${randomUUID().slice(0, 8)}`
  const executor = new DockerExecutor({ nodeId })
  t.teardown(async () => {
    for (const h of await executor.list()) await executor.remove(h)
  })

  const spec = (allocationId: string, stateDir: string, script: string, over: Partial<ExecSpec> = {}): ExecSpec => ({
    allocationId,
    runtime: { kind: 'docker', image: IMAGE, command: sh(script) },
    env: {},
    limits: { cpu: 1, memoryBytes: 64 * MiB, pids: 64 },
    network: 'none',
    stateDir,
    ...over,
  })
  const tempState = (tt: Test): string => {
    const d = mkdtempSync(join(tmpdir(), 'noir-docker-'))
    tt.teardown(() => rmSync(d, { recursive: true, force: true }))
    return d
  }

  t.test('compliance', async (t) => {
    runExecutorCompliance(t, {
      executor,
      makeSpec: (scenario, ctx) => spec(ctx.allocationId, ctx.stateDir, fixtures[scenario], { env: ctx.env }),
    })
  })

  t.test('a container limited to 32 MiB that allocates 64 MiB is reported as OOM-killed', async (t) => {
    const h = await executor.prepare(spec(`oom-${randomUUID().slice(0, 8)}`, tempState(t), 'exec dd if=/dev/zero of=/dev/null bs=64M count=1', {
      limits: { cpu: 1, memoryBytes: 32 * MiB },
    }))
    t.teardown(() => executor.remove(h))
    await executor.start(h)
    const status = await executor.wait(h)
    t.equal(status.oomKilled, true, 'oomKilled')
    t.equal(status.reason, 'oom', 'reason oom')
    t.equal(status.code, null, 'it ended by a signal, not an exit code')
    const out = await lines(executor.logs(h, { follow: false }))
    t.notOk(out.some((l) => l.includes('records out')), 'the allocation never completed')
  })

  t.test('a CPU quota of half a core holds a busy loop to half a core, measured beside an unlimited one', async (t) => {
    const busy = 'while :; do :; done'
    const limited = await executor.prepare(spec(`cpu-half-${randomUUID().slice(0, 8)}`, tempState(t), busy, { limits: { cpu: 0.5, memoryBytes: 32 * MiB } }))
    const free = await executor.prepare(spec(`cpu-free-${randomUUID().slice(0, 8)}`, tempState(t), busy, { limits: { cpu: 2, memoryBytes: 32 * MiB } }))
    t.teardown(async () => {
      await executor.remove(limited)
      await executor.remove(free)
    })
    const info = await new Docker().getContainer(limited.ref).inspect()
    t.equal(info.HostConfig.NanoCpus, 500_000_000, 'the quota is set on the container')
    await executor.start(limited)
    await executor.start(free)
    await new Promise((r) => setTimeout(r, 500))
    const [a1, b1] = await Promise.all([executor.stats(limited), executor.stats(free)])
    await new Promise((r) => setTimeout(r, 2500))
    const [a2, b2] = await Promise.all([executor.stats(limited), executor.stats(free)])
    const cores = (x: typeof a1, y: typeof a1): number => (y.cpuNanos - x.cpuNanos) / ((y.ts - x.ts) * 1e6)
    const lim = cores(a1, a2)
    const unl = cores(b1, b2)
    t.comment(`limited ${lim.toFixed(2)} cores, unlimited ${unl.toFixed(2)} cores`)
    t.ok(lim <= 0.6, `the limited loop used at most ~0.5 core (${lim.toFixed(2)})`)
    t.ok(lim > 0, `and it did run (${lim.toFixed(2)})`)
    // The unlimited figure depends on what else this shared machine runs, so it is reported, not asserted.
    const freeInfo = await new Docker().getContainer(free.ref).inspect()
    t.equal(freeInfo.HostConfig.NanoCpus, 2e9, 'the other container\'s quota is the whole machine (every container has one)')
  })

  t.test('a missing image is refused with ImageNotFoundError and never pulled', async (t) => {
    await t.rejects(executor.prepare(spec('missing-image', tempState(t), 'true', { runtime: { kind: 'docker', image: 'noir/does-not-exist:1' } })), ImageNotFoundError)
  })

  t.test('validate asks Docker for an image once in a while; a create that finds it gone refuses it and forgets it', async (t) => {
    const tag = `noir/validate-cache-${randomUUID().slice(0, 8)}:1`
    const d = new Docker()
    await d.getImage(IMAGE).tag({ repo: tag.split(':')[0]!, tag: '1' })
    t.teardown(() => d.getImage(tag).remove().catch(() => undefined))
    const ex = new DockerExecutor({ nodeId })
    const s = spec(`cache-${randomUUID().slice(0, 8)}`, tempState(t), 'true', { runtime: { kind: 'docker', image: tag } })
    await ex.validate(s)
    await d.getImage(tag).remove()
    await ex.validate(s) // found a moment ago: not asked again
    await t.rejects(ex.prepare(s), ImageNotFoundError, 'the create refuses it')
    await t.rejects(ex.validate(s), ImageNotFoundError, 'and validate asks Docker again from then on')
    await t.rejects(new DockerExecutor({ nodeId }).validate(s), ImageNotFoundError, 'a fresh executor asks at once')
  })

  t.test('containers carry their allocation and node labels, a read-only root and the state dir at /state', async (t) => {
    const dir = tempState(t)
    const h = await executor.prepare(spec(`labels-${randomUUID().slice(0, 8)}`, dir, 'touch /rootfile 2>/dev/null && echo root-writable || echo root-readonly; touch /state/ok && echo state-writable'))
    t.teardown(() => executor.remove(h))
    const info = await new Docker().getContainer(h.ref).inspect()
    t.equal(info.Config.Labels[LABEL_ALLOCATION], h.allocationId)
    t.equal(info.Config.Labels[LABEL_NODE], nodeId)
    t.equal(info.HostConfig.NetworkMode, 'none')
    t.equal(info.HostConfig.MemorySwap, info.HostConfig.Memory, 'no swap beyond the memory limit')
    t.equal(info.HostConfig.PidsLimit, 64)
    await executor.start(h)
    t.equal((await executor.wait(h)).code, 0)
    const out = await lines(executor.logs(h, { follow: false }))
    t.same(out, ['root-readonly', 'state-writable'])
  })

  t.test('/dev/shm is the memory limit less 32 MiB: a full one fails a write (ENOSPC) before the container is OOM-killed', async (t) => {
    t.equal(shmBytes(32 * MiB), 64 * MiB, 'never below Docker\'s default 64 MiB')
    t.equal(shmBytes(1024 * MiB), 992 * MiB, 'the limit less 32 MiB')
    const h = await executor.prepare(spec(`shm-${randomUUID().slice(0, 8)}`, tempState(t), 'df -k /dev/shm | tail -1; dd if=/dev/zero of=/dev/shm/f bs=1M count=256 2>/dev/null; echo "dd=$?"; ls -l /dev/shm/f', {
      limits: { cpu: 1, memoryBytes: 128 * MiB },
    }))
    t.teardown(() => executor.remove(h))
    const info = await new Docker().getContainer(h.ref).inspect()
    t.equal(info.HostConfig.ShmSize, 96 * MiB, 'Docker was asked for it')
    await executor.start(h)
    const status = await executor.wait(h)
    t.same([status.code, status.oomKilled], [0, false], 'the container ended on its own')
    const out = await lines(executor.logs(h, { follow: false }))
    t.match(out[0], /\s98304\s/, 'a 96 MiB /dev/shm')
    t.equal(out[1], 'dd=1', 'writing 256 MiB into it fails (ENOSPC)')
    t.match(out[2], new RegExp(`\\s${96 * MiB}\\s`), 'after 96 MiB')
  })

  t.test('a CPU request below the floor is refused, never run unlimited (Docker reads NanoCpus 0 as no limit)', async (t) => {
    for (const cpu of [0, 1e-12, 5e-324, -0, 0.009, Number.NaN]) {
      await t.rejects(executor.prepare(spec(`cpu-floor-${randomUUID().slice(0, 8)}`, tempState(t), 'true', { limits: { cpu, memoryBytes: 32 * MiB } })), { name: 'InvalidExecSpecError' }, `cpu ${cpu}`)
    }
    t.same(await executor.list(), [], 'no container was created for a refused request')
  })

  t.test('a container whose request names no pids limit gets the default one, and a fork bomb stops at it', async (t) => {
    // Each `sleep &` is a process; the shell records how many it started, and dies at the first fork refused.
    const tries = DEFAULT_PIDS_LIMIT + 200
    const bomb = `i=0; while [ $i -lt ${tries} ]; do sleep 30 & i=$((i+1)); echo $i > /state/started; done`
    const state = tempState(t)
    const h = await executor.prepare(spec(`forkbomb-${randomUUID().slice(0, 8)}`, state, bomb, { limits: { cpu: 1, memoryBytes: 64 * MiB } }))
    t.teardown(() => executor.remove(h))
    const info = await new Docker().getContainer(h.ref).inspect()
    t.equal(info.HostConfig.PidsLimit, DEFAULT_PIDS_LIMIT, 'the container carries the default pids limit')
    t.equal(info.HostConfig.NanoCpus, 1e9, 'and its CPU quota')
    await executor.start(h)
    const exit = await executor.wait(h)
    const started = Number(readFileSync(join(state, 'started'), 'utf8'))
    t.not(exit.code, 0, 'the bomb ended on a refused fork')
    t.ok(started > 0 && started < DEFAULT_PIDS_LIMIT, `it started ${started} of ${tries} processes`)
  })

  t.test('a published port is bound on 127.0.0.1 only', async (t) => {
    const h = await executor.prepare(spec(`ports-${randomUUID().slice(0, 8)}`, tempState(t), 'sleep 30', {
      network: { ports: [{ containerPort: 8080, hostPort: 0, protocol: 'tcp' }] },
    }))
    t.teardown(() => executor.remove(h))
    await executor.start(h)
    const info = await new Docker().getContainer(h.ref).inspect()
    const b = info.NetworkSettings.Ports['8080/tcp']?.[0]
    t.equal(b?.HostIp, '127.0.0.1')
    t.ok(Number(b?.HostPort) > 0, `bound to port ${b?.HostPort}`)
  })
}

// gVisor's runsc (run straight from an OCI bundle, `runtime: 'runsc'`) is tested in appliance/test/runsc.test.ts,
// with the executor compliance suite in that mode; a runsc registered as a Docker runtime is not used.
