// Allocation actors on a real ActorSystem with the real executors (wasm always; docker when present):
// lifecycle, restart policy, graceful stop, capacity released at the end, re-attach after a restart.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { Level } from 'level'
import { ActorSystem, LevelKvStore } from '../../core/index.ts'
import { NodeKey } from '../../identity/keys.ts'
import { Allocator } from '../allocator/allocator.ts'
import { AllocationManager, ALLOC_STATUS, type AllocationRecord } from '../allocation/allocation-manager.ts'
import { backoffDelay, defaultRestart, shouldRestart } from '../allocation/allocation-machine.ts'
import { WasmExecutor } from '../executor/wasm/wasm-executor.ts'
import { DockerExecutor } from '../executor/docker/docker-executor.ts'
import { parseShare } from '../share/share.ts'
import { wasmFixture, type WasmFixture } from './wasm-fixtures.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { InsufficientCapacityError, DuplicateAllocationError, ExecutorUnavailableError, InvalidAllocationError } from '../errors.ts'
import type { Executor, ExecutorKind } from '../executor/executor.ts'

const MiB = 1024 * 1024
const fixtures = mkdtempSync(join(tmpdir(), 'noir-alloc-fixtures-'))
t.teardown(() => rmSync(fixtures, { recursive: true, force: true }))
const wasm = (f: WasmFixture): string => {
  const p = join(fixtures, `${f}.wasm`)
  writeFileSync(p, wasmFixture(f))
  return p
}

interface Node {
  manager: AllocationManager
  allocator: Allocator
  system: ActorSystem
  changes: AllocationRecord[]
  close(): Promise<void>
}

/** One in-process node: key, actor system, level store, allocator, manager. `dir` reuses a home (restart). */
async function node(t: Test, executors: Partial<Record<ExecutorKind, Executor>>, dir?: string, key = NodeKey.generate()): Promise<Node & { dir: string; key: NodeKey }> {
  const home = dir ?? mkdtempSync(join(tmpdir(), 'noir-alloc-node-'))
  if (!dir) t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const db = new Level<string, unknown>(join(home, 'data'), { valueEncoding: 'json' })
  await db.open()
  const system = new ActorSystem({ key })
  await system.start()
  const allocator = new Allocator({
    store: new LevelKvStore(db.sublevel<string, unknown>('svc:allocator', { valueEncoding: 'json' })),
    share: parseShare('cpu=2,memory=512MiB,disk=1GiB,gpu=0'),
    portRange: [42000, 42099],
  })
  await allocator.open()
  const changes: AllocationRecord[] = []
  const manager = new AllocationManager({
    system,
    executors,
    allocator,
    store: new LevelKvStore(db.sublevel<string, unknown>('svc:allocations', { valueEncoding: 'json' })),
    stateRoot: join(home, 'allocations'),
    statsEveryMs: 200,
    onChange: (r) => changes.push(r),
  })
  await manager.start()
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await manager.stop()
    await system.stop()
    await db.close()
    for (const ex of Object.values(executors)) if (ex instanceof WasmExecutor) await ex.close()
  }
  t.teardown(close)
  return { manager, allocator, system, changes, close, dir: home, key }
}

t.test('restart policy decisions and backoff', async (t) => {
  const exit0 = { code: 0, oomKilled: false, reason: 'exited' as const, finishedAt: 0 }
  const exit1 = { ...exit0, code: 1 }
  t.equal(shouldRestart({ ...defaultRestart, policy: 'never' }, exit1, 0), false)
  t.equal(shouldRestart({ ...defaultRestart, policy: 'on-failure' }, exit0, 0), false, 'on-failure leaves a clean exit alone')
  t.equal(shouldRestart({ ...defaultRestart, policy: 'on-failure' }, exit1, 0), true)
  t.equal(shouldRestart({ ...defaultRestart, policy: 'always' }, exit0, 0), true)
  t.equal(shouldRestart({ ...defaultRestart, policy: 'always', maxRestarts: 2 }, exit0, 2), false, 'the limit holds')
  const r = { ...defaultRestart, backoffMs: 100, maxBackoffMs: 350 }
  t.same([0, 1, 2, 3].map((n) => backoffDelay(r, n)), [100, 200, 350, 350], 'doubling, capped')
})

t.test('a wasm job runs pending -> starting -> running -> exited, and its capacity is released', async (t) => {
  const n = await node(t, { wasm: new WasmExecutor() })
  const rec = await n.manager.create({ runtime: { kind: 'wasm', module: wasm('exit-zero') }, resources: { cpu: 0.5, memoryBytes: 16 * MiB } })
  t.equal(rec.state, 'pending')
  t.equal((await n.allocator.capacity()).used.cpu, 0.5, 'the resources are held while it runs')
  const end = await n.manager.waitFor(rec.id, (s) => s === 'exited' || s === 'failed')
  t.equal(end.state, 'exited')
  t.equal(end.lastExit?.code, 0)
  const seen = n.changes.filter((c) => c.id === rec.id).map((c) => c.state)
  t.same([...new Set(seen)], ['pending', 'starting', 'running', 'exited'], 'every state was published in order')
  t.equal((await n.allocator.capacity()).used.cpu, 0, 'the reservation is released at the end')
  const lines: string[] = []
  for await (const l of n.manager.logs(rec.id, { follow: false })) lines.push(l.line)
  t.same(lines, ['hello'])
})

t.test('the allocation actor answers status asks at alloc/<id> on the actor system', async (t) => {
  const n = await node(t, { wasm: new WasmExecutor() })
  const rec = await n.manager.create({ runtime: { kind: 'wasm', module: wasm('sleep') }, resources: { cpu: 0.1, memoryBytes: 8 * MiB } })
  await n.manager.waitFor(rec.id, (s) => s === 'running')
  const ref = n.system.lookup(`alloc/${rec.id}`)
  t.ok(ref, 'the actor is registered under alloc/')
  const status = await ref!.ask<{ state: string; id: string }>(ALLOC_STATUS)
  t.equal(status.id, rec.id)
  t.equal(status.state, 'running')
  const stopped = await n.manager.stopAllocation(rec.id, 200)
  t.equal(stopped.state, 'stopped')
})

t.test('a failing service restarts with backoff up to its limit, then stays ended with its exit code', async (t) => {
  const n = await node(t, { wasm: new WasmExecutor() })
  const rec = await n.manager.create({
    runtime: { kind: 'wasm', module: wasm('exit-code') },
    resources: { cpu: 0.1, memoryBytes: 8 * MiB },
    restart: { policy: 'on-failure', maxRestarts: 2, backoffMs: 50, maxBackoffMs: 100 },
  })
  const end = await n.manager.waitFor(rec.id, (s) => s === 'exited' || s === 'failed')
  t.equal(end.restarts, 2, 'restarted exactly maxRestarts times')
  t.equal(end.state, 'exited', 'it ended by itself: exited(code), not failed')
  t.equal(end.lastExit?.code, 3)
  const backoffs = n.changes.filter((c) => c.id === rec.id && c.state === 'backoff').length
  t.equal(backoffs, 2, 'each restart went through backoff')
})

t.test('a start that fails is cleaned up: each restart fails for its own reason, never for the instance the failed start left', async (t) => {
  const { ActorExecutor } = await import('../executor/actor/actor-executor.ts')
  const bundle = join(fixtures, 'broken-actor.mjs')
  writeFileSync(bundle, "throw new Error('broken on purpose')\n")
  const n = await node(t, { actor: new ActorExecutor({}) })
  const rec = await n.manager.create({
    runtime: { kind: 'actor', bundle },
    resources: { cpu: 0.1, memoryBytes: 96 * MiB },
    restart: { policy: 'on-failure', maxRestarts: 2, backoffMs: 50, maxBackoffMs: 100 },
  })
  const end = await n.manager.waitFor(rec.id, (s) => s === 'exited' || s === 'failed')
  const reasons = n.changes.filter((c) => c.id === rec.id && c.reason).map((c) => c.reason!)
  t.ok(reasons.length > 0, `reasons recorded: ${JSON.stringify([...new Set(reasons)])}`)
  t.notOk(reasons.some((r) => /already has an actor instance/.test(r)), 'no restart refused for a leftover instance')
  t.equal(end.restarts, 2, 'restarted up to its limit')
  t.equal(end.reason, reasons[0], 'the last failure is the same as the first: the bundle\'s own error')
})

t.test('requests are checked: beyond the share, duplicate ids, unknown kinds, bad ids', async (t) => {
  const n = await node(t, { wasm: new WasmExecutor() })
  await t.rejects(n.manager.create({ runtime: { kind: 'wasm', module: wasm('exit-zero') }, resources: { cpu: 3, memoryBytes: MiB } }), InsufficientCapacityError)
  await t.rejects(n.manager.create({ runtime: { kind: 'docker', image: 'x' }, resources: { cpu: 0.1, memoryBytes: MiB } }), ExecutorUnavailableError)
  await t.rejects(n.manager.create({ id: 'bad/id', runtime: { kind: 'wasm', module: wasm('exit-zero') }, resources: { cpu: 0.1, memoryBytes: MiB } }), InvalidAllocationError)
  const a = await n.manager.create({ id: 'same', runtime: { kind: 'wasm', module: wasm('sleep') }, resources: { cpu: 0.1, memoryBytes: 8 * MiB } })
  await t.rejects(n.manager.create({ id: 'same', runtime: { kind: 'wasm', module: wasm('sleep') }, resources: { cpu: 0.1, memoryBytes: 8 * MiB } }), DuplicateAllocationError)
  await n.manager.remove(a.id)
  t.equal(n.manager.list().length, 0, 'remove forgets it')
  t.equal((await n.allocator.capacity()).used.cpu, 0)
})

t.test('docker: a service is stopped gracefully within its grace period, then one that ignores SIGTERM is killed', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage('noir/busybox:latest'))) return
  const ex = new DockerExecutor({ nodeId: `alloc-test-${randomUUID().slice(0, 8)}` })
  t.teardown(async () => {
    for (const h of await ex.list()) await ex.remove(h)
  })
  const n = await node(t, { docker: ex })
  await t.rejects(
    n.manager.create({ runtime: { kind: 'docker', image: 'noir/not-here:1' }, resources: { cpu: 0.1, memoryBytes: 32 * MiB } }),
    { name: 'ImageNotFoundError' },
    'a missing image is refused at create, before anything is reserved',
  )
  t.equal((await n.allocator.capacity()).used.cpu, 0)
  const graceful = await n.manager.create({
    runtime: { kind: 'docker', image: 'noir/busybox:latest', command: ['/bin/sh', '-c', "trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done"] },
    resources: { cpu: 0.2, memoryBytes: 32 * MiB },
    restart: { policy: 'always' },
    graceMs: 5000,
  })
  const stubborn = await n.manager.create({
    runtime: { kind: 'docker', image: 'noir/busybox:latest', command: ['/bin/sh', '-c', "trap '' TERM; while :; do sleep 0.1; done"] },
    resources: { cpu: 0.2, memoryBytes: 32 * MiB },
    graceMs: 800,
  })
  await n.manager.waitFor(graceful.id, (s) => s === 'running')
  await n.manager.waitFor(stubborn.id, (s) => s === 'running')
  await new Promise((r) => setTimeout(r, 500))
  const g = await n.manager.stopAllocation(graceful.id)
  t.equal(g.state, 'stopped', 'a stopped service is not restarted even with policy always')
  t.equal(g.lastExit?.reason, 'stopped')
  t.equal(g.lastExit?.code, 0, 'it exited 0 by itself')
  const s = await n.manager.stopAllocation(stubborn.id)
  t.equal(s.state, 'stopped')
  t.equal(s.lastExit?.reason, 'killed', 'killed after the grace period')
  await n.manager.remove(graceful.id)
  await n.manager.remove(stubborn.id)
})

t.test('docker: after a restart of the node, a running container is re-attached, not started twice', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage('noir/busybox:latest'))) return
  const nodeId = `reattach-${randomUUID().slice(0, 8)}`
  const ex1 = new DockerExecutor({ nodeId })
  t.teardown(async () => {
    for (const h of await ex1.list()) await ex1.remove(h)
  })
  const first = await node(t, { docker: ex1 })
  const rec = await first.manager.create({
    runtime: { kind: 'docker', image: 'noir/busybox:latest', command: ['/bin/sh', '-c', 'echo started; while :; do sleep 0.1; done'] },
    resources: { cpu: 0.2, memoryBytes: 32 * MiB },
    graceMs: 500,
  })
  const running = await first.manager.waitFor(rec.id, (s) => s === 'running')
  // its first line is out before the restart (a loaded machine may not have run the shell yet at `running`)
  for (let i = 0; i < 100; i++) {
    const seen: string[] = []
    for await (const l of first.manager.logs(rec.id, { follow: false })) seen.push(l.line)
    if (seen.includes('started')) break
    await new Promise((r) => setTimeout(r, 100))
  }
  await first.close()

  const ex2 = new DockerExecutor({ nodeId })
  const second = await node(t, { docker: ex2 }, first.dir, first.key)
  const again = await second.manager.waitFor(rec.id, (s) => s === 'running')
  t.equal(again.handle?.ref, running.handle?.ref, 'the same container is tracked')
  const instances = (await ex2.list()).filter((h) => h.allocationId === rec.id)
  t.equal(instances.length, 1, 'exactly one container for the allocation')
  const lines: string[] = []
  for await (const l of second.manager.logs(rec.id, { follow: false })) lines.push(l.line)
  t.same(lines.filter((l) => l === 'started'), ['started'], 'it never ran twice')
  t.equal((await second.allocator.capacity()).used.cpu, 0.2, 'its resources are still held')
  const stopped = await second.manager.stopAllocation(rec.id)
  t.equal(stopped.state, 'stopped', 'and the new node controls it')
  await second.manager.remove(rec.id)
})

t.test('after a restart, resources held for allocations that ended or were never recorded are released', async (t) => {
  const first = await node(t, { wasm: new WasmExecutor() })
  // committed for an allocation the old daemon never recorded (it died between commit and record)
  const ghost = await first.allocator.reserve({ cpu: 0.5, memoryBytes: 8 * MiB }, { allocationId: 'ghost' })
  await first.allocator.commit(ghost.id, { allocationId: 'ghost' })
  // committed without an allocation yet (a bid's reservation waiting for its start): must stay
  const bid = await first.allocator.reserve({ cpu: 0.25, memoryBytes: 8 * MiB }, { ttlMs: 60_000 })
  await first.allocator.commit(bid.id)
  await first.close()
  const second = await node(t, { wasm: new WasmExecutor() }, first.dir, first.key)
  t.equal(second.allocator.get(ghost.id), undefined, 'the orphaned hold is released')
  t.equal(second.allocator.get(bid.id)?.state, 'committed', 'a committed reservation not yet tied to an allocation stays')
  t.equal((await second.allocator.capacity()).used.cpu, 0.25)
})
