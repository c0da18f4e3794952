// gVisor's runsc run directly from an OCI bundle (appliance/executor/docker/runsc.ts): a shell counting in
// memory is checkpointed (its sandbox ends) and restored as another allocation, with another state directory,
// and counts on from its last number; then the refusals, each a typed error.
import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import Docker from 'dockerode'
import { docker, dockerImage, requireOrSkip, runsc } from '../../scripts/testing/requirements.ts'
import { DockerExecutor } from '../executor/docker/docker-executor.ts'
import { CHECKPOINT_FILE, PROCESS_IMAGE_DIR, RESTORE_IMAGE_DIR, RunscError, RunscRunner } from '../executor/docker/runsc.ts'
import type { ExecHandle, ExecSpec, LogLine } from '../executor/executor.ts'
import { ImageNotFoundError, InvalidExecSpecError, UnknownInstanceError } from '../errors.ts'
import { Level } from 'level'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LABEL_GRACE } from '../watchdog/lease.ts'
import { runscEnabled } from '../node-services/appliance-service.ts'
import { cpSync, readdirSync } from 'node:fs'
import { ActorSystem, LevelKvStore } from '../../core/index.ts'
import { NodeKey } from '../../identity/keys.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'
import { Allocator } from '../allocator/allocator.ts'
import { AllocationManager } from '../allocation/allocation-manager.ts'
import { parseShare } from '../share/share.ts'
import { ApplianceRuntime, type WorkloadArtifacts } from '../node-services/appliance-runtime.ts'
import { Catalog } from '../catalog/catalog.ts'
import { COMPLIANCE_ENV_NAME, COMPLIANCE_EXIT_CODE, runExecutorCompliance, type ComplianceScenario } from './executor-compliance.ts'

const IMAGE = 'noir/busybox:latest'
const MiB = 1024 * 1024
const COUNTER = 'i=0; trap "echo term; exit 0" TERM; while true; do i=$((i+1)); echo "count $i"; sleep 0.1; done'

const work = mkdtempSync(join(tmpdir(), 'noir-runsc-test-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const nodeId = `runsc-test-${randomUUID().slice(0, 8)}`
const runner = new RunscRunner({ nodeId, dir: join(work, 'runsc'), docker: new Docker() })
const ex = new DockerExecutor({ nodeId, runsc: runner })

/** An allocation's state directory as the allocation manager makes it: <alloc dir>/state-<x>. */
const stateDirOf = (id: string): string => {
  const d = join(work, 'allocations', id, 'state-x')
  mkdirSync(d, { recursive: true })
  return d
}
const spec = (allocationId: string, script: string, over: Partial<ExecSpec> = {}): ExecSpec => ({
  allocationId,
  runtime: { kind: 'docker', image: IMAGE, command: ['/bin/sh', '-c', script], runtime: 'runsc' },
  env: {},
  limits: { cpu: 0.5, memoryBytes: 256 * MiB },
  network: 'none',
  stateDir: stateDirOf(allocationId),
  ...over,
})
const counts = async (h: ExecHandle): Promise<number[]> => {
  const out: number[] = []
  for await (const l of ex.logs(h, { follow: false }) as AsyncIterable<LogLine>) {
    const m = /^count (\d+)$/.exec(l.line)
    if (m) out.push(Number(m[1]))
  }
  return out
}
const until = async <T>(f: () => Promise<T | undefined>, ms = 20_000): Promise<T> => {
  const end = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 100))
  }
}

t.test('the refusals are typed (no runsc needed)', async (t) => {
  const bogus = new RunscRunner({ nodeId, dir: join(work, 'bogus'), docker: new Docker(), bin: join(work, 'no-such-runsc') })
  const a = bogus.available()
  t.equal(a.ok, false, 'a missing binary is not available')
  if (!a.ok) t.match(a.reason, /runsc/, `with the reason (${a.reason})`)
  const off = new DockerExecutor({ nodeId })
  t.equal(off.processCheckpoints().ok, false, 'an executor without the runner cannot checkpoint processes')
  t.throws(() => runner.check(spec('a-ports', 'true', { network: { ports: [{ containerPort: 80, hostPort: 20080, protocol: 'tcp' }] } })), InvalidExecSpecError, 'published ports are refused')
  t.throws(() => runner.check(spec('a-rw', 'true', { readOnlyRoot: false })), InvalidExecSpecError, 'a writable root is refused')
  t.throws(() => runner.check({ ...spec('a-wasm', 'true'), runtime: { kind: 'wasm', module: '/x.wasm' } }), InvalidExecSpecError, 'another runtime kind is refused')
  t.equal(await ex.suspend({ allocationId: 'x', kind: 'docker', ref: 'a'.repeat(64) }), false, 'a container not under runsc is not suspended (its files move alone)')
  await t.rejects(ex.wait({ allocationId: 'x', kind: 'docker', ref: 'runsc-nothing-here' }), UnknownInstanceError, 'an unknown sandbox')
  await t.rejects(off.wait({ allocationId: 'x', kind: 'docker', ref: 'runsc-nothing-here' }), UnknownInstanceError, 'a sandbox ref on an executor without the runner')
})

t.test('config.json executors.container.runsc: absent or true = where installed, false = never, else ConfigError', async (t) => {
  t.equal(runscEnabled(undefined), true)
  t.equal(runscEnabled({}), true)
  t.equal(runscEnabled({ container: { runsc: true } }), true)
  t.equal(runscEnabled({ container: { runsc: false } }), false)
  for (const bad of [{ container: { runsc: 'yes' } }, { container: 1 }, [], 'x']) t.throws(() => runscEnabled(bad), { name: 'ConfigError', message: /executors/ }, JSON.stringify(bad))
})

t.test('a process counting in memory is checkpointed and restored elsewhere; it counts on', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE), runsc)) return
  t.teardown(async () => {
    for (const h of await ex.list()) await ex.remove(h)
  })
  t.ok(ex.processCheckpoints().ok, 'runsc runs directly here')
  await t.rejects(ex.prepare(spec('a-missing', 'true', { runtime: { kind: 'docker', image: 'noir/no-such-image:1', runtime: 'runsc' } })), ImageNotFoundError, 'a missing image')

  const first = spec(`a-${randomUUID().slice(0, 8)}`, COUNTER)
  const h = await ex.prepare(first)
  t.match(h.ref, /^runsc-/, 'a runsc instance')
  t.equal(await ex.phase(h), 'created')
  await ex.start(h)
  t.equal(await ex.phase(h), 'running')
  t.ok((await until(async () => ((await counts(h)).length >= 5 ? true : undefined))), 'it counts')
  const s = await ex.stats(h)
  t.ok(s.cpuNanos > 0 && s.memoryBytes > 0, `stats from runsc (${s.cpuNanos} ns, ${s.memoryBytes} B)`)

  writeFileSync(join(first.stateDir, 'planted'), 'x')
  mkdirSync(join(first.stateDir, PROCESS_IMAGE_DIR))
  writeFileSync(join(first.stateDir, PROCESS_IMAGE_DIR, 'evil'), 'planted by the workload')
  const t0 = performance.now()
  t.equal(await ex.suspend(h), true, 'suspended')
  const checkpointMs = performance.now() - t0
  const image = join(first.stateDir, PROCESS_IMAGE_DIR)
  t.same(readdirSync(image), [CHECKPOINT_FILE], "the process image is in its state directory (the workload's own files there are gone)")
  const held = await Promise.race([ex.wait(h).then(() => 'ended'), new Promise((r) => setTimeout(() => r('held'), 300))])
  t.equal(held, 'held', 'to the allocation it is paused: its exit waits for the stop (no restart in place)')
  t.equal(await ex.suspend(h), false, 'suspended twice: nothing more')
  const st = await ex.stop(h, { graceMs: 2000 })
  t.equal(st.reason, 'stopped', `the stop ends it at once (${st.message})`)
  const before = await counts(h)
  const last = before.at(-1)!
  await new Promise((r) => setTimeout(r, 300))
  t.equal((await counts(h)).at(-1), last, 'nothing counts after the checkpoint')

  // another allocation, another state directory, as on the target node of a migration
  const second = spec(`b-${randomUUID().slice(0, 8)}`, 'echo this command is not run: the image is')
  renameSync(image, join(second.stateDir, '..', RESTORE_IMAGE_DIR))
  const h2 = await ex.prepare(second)
  const t1 = performance.now()
  await ex.start(h2)
  const restoreMs = performance.now() - t1
  const after = await until(async () => {
    const c = await counts(h2)
    return c.length >= 3 ? c : undefined
  })
  t.equal(after[0], last + 1, `the restored process counts on from ${last} (got ${after.slice(0, 3).join(', ')}), not from 1`)
  t.notOk(existsSync(join(second.stateDir, '..', RESTORE_IMAGE_DIR)), 'the image is gone once read (a restart in place runs afresh)')
  t.comment(`checkpoint ${checkpointMs.toFixed(0)} ms, restore ${restoreMs.toFixed(0)} ms`)
  const end = await ex.stop(h2, { graceMs: 2000 })
  t.same([end.reason, end.code], ['stopped', 0], 'SIGTERM reaches the restored process (its trap exits 0)')
  await ex.remove(h)
  await ex.remove(h2)
})

t.test('exit codes, and a restore from a damaged image is RunscError', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE), runsc)) return
  const h = await ex.prepare(spec(`c-${randomUUID().slice(0, 8)}`, 'echo hello; exit 3'))
  await ex.start(h)
  const st = await ex.wait(h)
  t.same([st.reason, st.code], ['exited', 3], 'its own exit code')
  t.same((await (async () => { const o: string[] = []; for await (const l of ex.logs(h, { follow: false })) o.push(l.line); return o })()), ['hello'], 'its output')
  await ex.remove(h)

  const bad = spec(`d-${randomUUID().slice(0, 8)}`, 'true')
  const dir = join(bad.stateDir, '..', RESTORE_IMAGE_DIR)
  mkdirSync(dir)
  writeFileSync(join(dir, CHECKPOINT_FILE), 'not a checkpoint')
  const hb = await ex.prepare(bad)
  await t.rejects(ex.start(hb), RunscError, 'a damaged image is refused by runsc')
  t.notOk(existsSync(dir), 'and deleted')
  await ex.remove(hb)

  const never = await ex.prepare(spec(`e-${randomUUID().slice(0, 8)}`, 'sleep 60'))
  t.equal(await ex.suspend(never), false, 'a prepared instance is not suspended')
  const sst = await ex.stop(never, { graceMs: 100 })
  t.equal(sst.reason, 'stopped', 'a prepared instance stops without running')
  t.notOk(readFileSync(join(work, 'runsc', 'bundles', never.ref, 'config.json'), 'utf8').includes('"pids"'), 'no host pids limit on the sandbox')
  await ex.remove(never)
})

const fixtures: Record<ComplianceScenario, string> = {
  'exit-zero': 'echo hello',
  'exit-code': `exit ${COMPLIANCE_EXIT_CODE}`,
  env: `echo "$${COMPLIANCE_ENV_NAME}"`,
  'log-stream': 'for i in 1 2 3 4 5; do echo "tick $i"; sleep 0.2; done',
  graceful: "trap 'echo term; exit 0' TERM; while :; do sleep 0.1; done",
  'ignore-term': "trap '' TERM; while :; do sleep 0.1; done",
  busy: 'x=$(head -c 1048576 /dev/zero | tr "\\0" a); while :; do :; done',
  'state-write': 'echo persisted > /state/out.txt',
  'state-read': 'cat /state/out.txt',
  sleep: 'sleep 300',
}

t.test('the executor compliance suite, under runsc run directly', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE), runsc)) return
  t.teardown(async () => {
    for (const h of await ex.list()) await ex.remove(h)
  })
  runExecutorCompliance(t, {
    executor: ex,
    makeSpec: (scenario, ctx) => ({ ...spec(ctx.allocationId, fixtures[scenario]), stateDir: ctx.stateDir, env: ctx.env }),
  })
})

t.test("the appliance's checkpoint: the process image goes into the archive; without one the files go alone", async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE), runsc)) return
  const home = mkdtempSync(join(tmpdir(), 'noir-runsc-runtime-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const db = new Level<string, unknown>(join(home, 'data'), { valueEncoding: 'json' })
  await db.open()
  const system = new ActorSystem({ key: NodeKey.generate() })
  await system.start()
  const store = new LevelKvStore(db.sublevel<string, unknown>('svc:appliance', { valueEncoding: 'json' }))
  const allocator = new Allocator({ store, share: parseShare('cpu=2,memory=1GiB,disk=1GiB') })
  await allocator.open()
  const allocations = new AllocationManager({ system, executors: { docker: ex }, allocator, store, stateRoot: join(home, 'allocations') })
  await allocations.start()
  // the archive is a copy of the directory as it was packed; a restore copies it back
  const packed = new Map<string, string>()
  const files = (dir: string, pre = ''): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name), `${pre}${e.name}/`) : [`${pre}${e.name}`])).sort()
  const artifacts: WorkloadArtifacts = {
    file: async () => '/dev/null',
    bundle: async () => '/dev/null',
    image: async (_d, id) => id,
    packState: async (dir) => {
      const digest = `sha256:${String(packed.size).padStart(64, '0')}`
      const copy = join(home, `packed-${packed.size}`)
      cpSync(dir, copy, { recursive: true })
      packed.set(digest, copy)
      return { digest, bytes: 1 }
    },
    unpackState: async (digest, dir) => cpSync(packed.get(digest)!, dir, { recursive: true }),
  }
  const runtime = new ApplianceRuntime({ parts: { allocator, allocations, executors: { docker: ex } }, catalog: new Catalog(home), artifacts })
  await runtime.refreshRuntimes()
  t.teardown(async () => {
    runtime.close()
    for (const a of allocations.list()) await allocations.remove(a.id).catch(() => undefined)
    await allocations.stop()
    await system.stop()
    await db.close()
  })
  const workload = (name: string, script: string, o: { kind?: 'service' | 'job'; process?: boolean } = {}) => validateWorkload({
    apiVersion: 'noir/v1', kind: o.kind ?? 'service', name, stateDir: '/state',
    runtime: { type: 'container', image: IMAGE, command: ['/bin/sh', '-c', script], ...(o.process === false ? {} : { checkpoint: 'process' }) },
    resources: { cpu: 0.5, memory: '128Mi' },
  })
  const start = async (w: ReturnType<typeof workload>, n: string, restore?: string) => {
    const { reservationId } = await runtime.reserve({ id: `r-${n}`, resources: w.resources, ttlMs: 10_000 })
    return (await runtime.start({ contractId: n, slot: `d/${n}`, workload: w, reservationId, ...(restore ? { restore: { digest: restore, from: [] } } : {}) })).instanceId
  }
  const countOf = (d: string): number => {
    try {
      return Number(readFileSync(join(d, 'count'), 'utf8').trim() || 0)
    } catch {
      return 0
    }
  }
  t.equal(runtime.missing(workload('x', 'true')), undefined, 'this node takes checkpoint: process workloads')

  // a counter that also plants a fake image of its own in /state
  const counter = workload('counter', 'mkdir -p /state/.noir-process; echo planted > /state/.noir-process/checkpoint.img; i=0; while true; do i=$((i+1)); echo $i > /state/count; sleep 0.1; done')
  const id = await start(counter, `k1-${randomUUID().slice(0, 6)}`)
  const dir = allocations.get(id).spec.stateDir
  await until(async () => (countOf(dir) >= 10 ? true : undefined))
  const k = await runtime.checkpoint(id)
  const archive = packed.get(k.digest)!
  t.same(files(join(archive, '.noir-process')), [CHECKPOINT_FILE], 'the archive holds the process image')
  t.not(readFileSync(join(archive, '.noir-process', CHECKPOINT_FILE), 'utf8'), 'planted\n', "runsc's, not the one the workload planted")
  const at = Number(readFileSync(join(archive, 'count'), 'utf8').trim())
  t.same(await runtime.checkpoint(id), k, 'asked again: the same archive')

  const id2 = await start(counter, `k2-${randomUUID().slice(0, 6)}`, k.digest)
  const dir2 = allocations.get(id2).spec.stateDir
  t.notOk(existsSync(join(dir2, '.noir-process')), "the image is out of the workload's view")
  const seen: number[] = []
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 100))
    // `echo $i > count` truncates before it writes: a read in between finds the file empty, so read again
    let v = countOf(dir2)
    for (let tries = 0; v === 0 && tries < 20; tries++) {
      await new Promise((r) => setTimeout(r, 5))
      v = countOf(dir2)
    }
    seen.push(v)
  }
  t.ok(seen.every((v) => v >= at) && seen.at(-1)! > at, `restored: it counts on from ${at} (${seen.join(', ')}), never from 1`)
  await runtime.stop(id2)

  // a job that has ended: nothing to save, the files go alone (no wait for a stop that never comes)
  const ended = await start(workload('done', 'echo here > /state/file; exit 0', { kind: 'job' }), `k3-${randomUUID().slice(0, 6)}`)
  await allocations.waitFor(ended, (st) => st === 'exited' || st === 'failed')
  const k3 = await runtime.checkpoint(ended)
  t.same(files(packed.get(k3.digest)!), ['file'], 'an ended instance: the state directory alone')

  // a workload not under runsc restored from an archive that holds an image: the image is dropped
  const plain = workload('plain', 'sleep 60', { process: false })
  const id4 = await start(plain, `k4-${randomUUID().slice(0, 6)}`, k.digest)
  const dir4 = allocations.get(id4).spec.stateDir
  t.notOk(existsSync(join(dir4, '.noir-process')) || existsSync(join(dir4, '..', RESTORE_IMAGE_DIR)), 'a plain container gets no process image')
  await runtime.stop(id4)
})

t.test("the node's watchdog kills a runsc replica once its daemon has been silent past the grace", async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE), runsc)) return
  const home = mkdtempSync(join(tmpdir(), 'noir-runsc-watchdog-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const did = `did:key:runsc-watchdog-${randomUUID().slice(0, 6)}`
  const wx = new DockerExecutor({ nodeId: did, runsc: new RunscRunner({ nodeId: did, dir: join(home, 'runsc'), docker: new Docker() }) })
  const replica = await wx.prepare({ ...spec(`w-${randomUUID().slice(0, 6)}`, 'while true; do sleep 0.1; done'), labels: { [LABEL_GRACE]: '1000' } })
  const owners = await wx.prepare(spec(`o-${randomUUID().slice(0, 6)}`, 'while true; do sleep 0.1; done'))
  t.teardown(async () => {
    await wx.remove(replica)
    await wx.remove(owners)
  })
  await wx.start(replica)
  await wx.start(owners)
  // a daemon that is gone, whose last renewal was 5 s ago
  const gone = spawnSync('true').pid
  mkdirSync(join(home, 'watchdog'), { recursive: true })
  writeFileSync(join(home, 'watchdog', 'lease.json'), JSON.stringify({ pid: gone, at: Date.now() - 5000 }))
  const main = fileURLToPath(new URL('../watchdog/watchdog-main.ts', import.meta.url))
  const w = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', main, home, did, String(gone)], { stdio: 'ignore' })
  const exited = new Promise<number | null>((r) => w.on('exit', (code) => r(code)))
  t.teardown(() => void w.kill('SIGKILL'))
  const st = await wx.wait(replica)
  t.equal(st.code, 137, `the replica's sandbox was killed (${st.reason} ${st.code})`)
  t.equal(await exited, 0, 'then the watchdog exits (no replica of the gone daemon runs)')
  // read once it exited: the kill can be seen before its log line is written
  t.match(readFileSync(join(home, 'watchdog', 'watchdog.log'), 'utf8'), new RegExp(`stopped a replica its daemon stopped renewing.*${replica.ref}`), 'the watchdog says so')
  t.equal(await wx.phase(owners), 'running', "a sandbox without a grace (not a contract replica) is left alone")
})
