// An SDK actor run by the actor executor is a real actor of its node: another node (an ActorSystem joined
// by the memory transport, with real signed envelopes and capability tokens) asks it across the wire; it
// messages the node's other actors from its own address; the sandbox refuses it files outside its state
// directory and child processes with a typed error; and its snapshot restores into a new instance.
import t, { type Test } from 'tap'
import { fileURLToPath } from 'node:url'
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { assign, setup } from 'xstate'
import { TestKit } from '../../core/testkit.ts'
import { CapabilityDeniedError, MemorySnapshotStore, defineActor, type ActorSystem, type MessageContext } from '../../core/index.ts'
import { ActorExecutor, SandboxAccessDeniedError, SNAPSHOT_FILE } from '../executor/actor/index.ts'
import type { ExecHandle, ExecSpec } from '../executor/executor.ts'
import { requireOrSkip, type Requirement } from '../../scripts/testing/requirements.ts'

const bwrap: Requirement = {
  name: 'bubblewrap',
  missing: () =>
    spawnSync('bwrap', ['--dev-bind', '/', '/', '--unshare-net', '--', 'true'], { stdio: 'ignore' }).status === 0
      ? undefined
      : 'bwrap cannot make a network namespace here (Debian package bubblewrap; needs user or root namespaces)',
}

const probe = fileURLToPath(new URL('./fixtures/actor/probe.ts', import.meta.url))
const counter = fileURLToPath(new URL('../../examples/counter/counter.ts', import.meta.url))

const rejection = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

async function twoNodes(t: Test, localPolicy: 'trusted' | 'checked' = 'trusted') {
  const kit = new TestKit({ simulatedClock: false })
  t.teardown(() => kit.stop())
  const a = await kit.node({ localPolicy })
  const b = await kit.node()
  return { kit, a, b }
}

/** Starts a bundle on node `system` and tears it down after the test, even on failure. */
async function run(t: Test, executor: ActorExecutor, bundle: string, allocationId: string, stateDir?: string): Promise<{ handle: ExecHandle; stateDir: string }> {
  const dir = stateDir ?? mkdtempSync(join(tmpdir(), 'noir-actor-node-'))
  if (stateDir === undefined) t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const spec: ExecSpec = { allocationId, runtime: { kind: 'actor', bundle }, env: {}, limits: { cpu: 1, memoryBytes: 256 * 1024 * 1024 }, network: 'none', stateDir: dir }
  const handle = await executor.prepare(spec)
  t.teardown(async () => {
    await executor.stop(handle, { graceMs: 0 }).catch(() => undefined)
    await executor.remove(handle)
  })
  await executor.start(handle)
  return { handle, stateDir: dir }
}

/** A plain actor on node A that answers with the address of whoever asked (the workload's sender address). */
function whoAsked(system: ActorSystem): void {
  const m = setup({ types: { context: {} as { from: string }, events: {} as { type: 'seen'; from: string } } }).createMachine({
    id: 'who',
    context: { from: '' },
    on: { seen: { actions: assign({ from: ({ event }) => event.from }) } },
  })
  system.spawn(
    defineActor(m).with({
      name: 'test/who',
      behaviors: {
        '/who': { public: true, event: (_b: unknown, msg: MessageContext) => ({ type: 'seen' as const, from: msg.from }), reply: (s) => s.context.from },
        '/who/guarded': { event: (_b: unknown, msg: MessageContext) => ({ type: 'seen' as const, from: msg.from }), reply: (s) => s.context.from },
      },
    }),
    { name: 'who' },
  )
}

t.test('an SDK actor in the sandbox answers an ask from another node, and the sandbox refuses it files and processes', async (t) => {
  const { kit, a, b } = await twoNodes(t)
  const executor = new ActorExecutor({ system: a.system })
  const { handle, stateDir } = await run(t, executor, probe, 'probe1')
  const address = executor.addressOf(handle)!
  t.equal(address, `${a.system.did}/actor-probe1`, 'it is addressed under node A\'s DID')

  // Inside its state directory: allowed.
  t.equal(await b.system.ask(address, '/probe/write-state', { text: 'mine' }), true, 'node B asks it across the wire and gets its answer')
  t.equal(await b.system.ask(address, '/probe/read', { path: join(stateDir, 'probe.txt') }), 'mine', 'it reads its own state directory')

  // Outside: refused by Node's permission model, answered as a typed error across the wire.
  const secret = join(mkdtempSync(join(tmpdir(), 'noir-secret-')), 'secret.txt')
  writeFileSync(secret, 'not for the workload')
  t.teardown(() => rmSync(join(secret, '..'), { recursive: true, force: true }))
  const denied = await rejection(b.system.ask(address, '/probe/read', { path: secret }))
  t.type(denied, SandboxAccessDeniedError, 'a file outside its state directory is refused with SandboxAccessDeniedError')
  t.equal(denied.name, 'SandboxAccessDeniedError')
  t.match((denied as SandboxAccessDeniedError).data, { permission: 'FileSystemRead', resource: secret }, 'naming the permission and the file')

  // Node A trusts its own local senders, but the workload's messages are marked untrusted: capability-checked.
  whoAsked(a.system)
  const who = `${a.system.did}/who`
  t.equal(await b.system.ask(address, '/probe/relay', { to: who, behavior: '/who', body: null }), address, 'a public behavior of A\'s own actor needs no capability')
  const local = await rejection(b.system.ask(address, '/probe/relay', { to: who, behavior: '/who/guarded', body: null }))
  t.type(local, CapabilityDeniedError, 'without a token the workload may not use a guarded behavior of A\'s own actor, though A trusts local senders')
  const token = await kit.grant(a.key, a.system.did, ['/who/guarded'])
  t.equal(await b.system.ask(address, '/probe/relay', { to: who, behavior: '/who/guarded', body: null, proofs: [token] }), address, 'with a covering token it is delivered')

  const spawnDenied = await rejection(b.system.ask(address, '/probe/spawn'))
  t.type(spawnDenied, SandboxAccessDeniedError, 'spawning a process is refused with SandboxAccessDeniedError')
  t.match((spawnDenied as SandboxAccessDeniedError).data, { permission: 'ChildProcess' })

  const status = await executor.stop(handle, { graceMs: 5000 })
  t.equal(status.reason, 'stopped', 'it stops gracefully')
  t.type(await rejection(b.system.ask(address, '/probe/read', { path: secret }, { timeoutMs: 5000 })), Error, 'once stopped, node B gets an error, not an answer')
})

t.test('the sandboxed actor messages the node\'s other actors from its own address, and its behaviors keep their abilities on the node', async (t) => {
  const { kit, a, b } = await twoNodes(t, 'checked')
  whoAsked(a.system)
  const executor = new ActorExecutor({ system: a.system })
  const { handle } = await run(t, executor, probe, 'probe2')
  const address = executor.addressOf(handle)!
  const seenFrom = await b.system.ask(address, '/probe/relay', { to: `${a.system.did}/who`, behavior: '/who', body: null })
  t.equal(seenFrom, address, 'with localPolicy checked: B -> workload -> A\'s public actor -> back to B; it saw the workload\'s address as the sender')
  const echo = await b.system.ask(address, '/probe/relay', { to: `${b.system.did}/who-b`, behavior: '/who', body: null }).catch((e: Error) => e)
  t.equal((echo as Error).name, 'ActorNotFoundError', 'a message to an actor missing on node B comes back through the workload as the typed error')

  // The counter example requires a capability for /counter/increment: the workload's proxy declares the same ability.
  const { handle: ch } = await run(t, executor, counter, 'count1')
  const caddr = executor.addressOf(ch)!
  t.type(await rejection(b.system.ask(caddr, '/counter/increment', { by: 1 })), CapabilityDeniedError, 'without a capability node B is denied by node A')
  const token = await kit.grant(a.key, b.system.did, ['/counter/increment'])
  t.equal(await b.system.ask(caddr, '/counter/increment', { by: 2 }, { proofs: [token] }), 2, 'with one from node A it counts')
})

t.test('the actor\'s snapshot is saved on stop and a new instance on the same state continues from it', async (t) => {
  const { kit, a, b } = await twoNodes(t)
  const executor = new ActorExecutor({ system: a.system })
  const token = await kit.grant(a.key, b.system.did, ['/counter/increment'])
  const first = await run(t, executor, counter, 'count-a')
  const addr1 = executor.addressOf(first.handle)!
  for (const by of [1, 2, 3]) await b.system.ask(addr1, '/counter/increment', { by }, { proofs: [token] })
  t.equal(await b.system.ask(addr1, '/counter/get'), 6)
  const checkpoint = await executor.checkpoint(first.handle)
  t.match(checkpoint, { v: 1, definition: 'example/counter', snapshot: { context: { count: 6 } } }, 'a checkpoint taken while it runs holds the count')
  const stopped = await executor.stop(first.handle, { graceMs: 5000 })
  t.equal(stopped.reason, 'stopped')
  t.ok(existsSync(join(first.stateDir, SNAPSHOT_FILE)), 'the snapshot is in its state directory')
  t.equal(executor.savedSnapshot(first.handle)?.definition, 'example/counter')

  // A new instance (another allocation, another process) on the same state directory.
  const second = await run(t, executor, counter, 'count-b', first.stateDir)
  const addr2 = executor.addressOf(second.handle)!
  t.not(addr2, addr1)
  t.equal(await b.system.ask(addr2, '/counter/get'), 6, 'the new instance starts where the old one stopped')
  t.equal(await b.system.ask(addr2, '/counter/increment', { by: 4 }, { proofs: [token] }), 10, 'and continues counting')
})

t.test('a warm sandbox (bundle loaded, actor not started) is adopted by the same spec and starts from the snapshot put there after it was spawned', async (t) => {
  const { kit, a, b } = await twoNodes(t)
  const executor = new ActorExecutor({ system: a.system })
  const token = await kit.grant(a.key, b.system.did, ['/counter/increment'])
  const first = await run(t, executor, counter, 'warm-a')
  for (const by of [2, 3]) await b.system.ask(executor.addressOf(first.handle)!, '/counter/increment', { by }, { proofs: [token] })

  // the new sandbox first: spawned and its bundle loaded while the old instance still runs
  const dir = mkdtempSync(join(tmpdir(), 'noir-actor-warm-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const spec: ExecSpec = { allocationId: 'warm-b', runtime: { kind: 'actor', bundle: counter }, env: {}, limits: { cpu: 1, memoryBytes: 256 * 1024 * 1024 }, network: 'none', stateDir: dir }
  await executor.warm(spec)
  await executor.warm(spec) // asked again: the same sandbox
  t.ok(executor.isWarm('warm-b'), 'a warm sandbox waits for its allocation')
  t.equal(await b.system.ask(executor.addressOf(first.handle)!, '/counter/get'), 5, 'the old instance still answers meanwhile')

  // then the old one stops (its snapshot saved), and its snapshot is handed to the new state directory
  t.equal((await executor.stop(first.handle, { graceMs: 5000 })).reason, 'stopped')
  copyFileSync(join(first.stateDir, SNAPSHOT_FILE), join(dir, SNAPSHOT_FILE))
  const handle = await executor.prepare(spec)
  t.teardown(async () => {
    await executor.stop(handle, { graceMs: 0 }).catch(() => undefined)
    await executor.remove(handle)
  })
  t.notOk(executor.isWarm('warm-b'), 'prepare() of the same spec adopted it')
  await executor.start(handle)
  const addr = executor.addressOf(handle)!
  t.equal(await b.system.ask(addr, '/counter/get'), 5, 'it starts from the snapshot handed over')
  t.equal(await b.system.ask(addr, '/counter/increment', { by: 1 }, { proofs: [token] }), 6, 'and counts on')
})

t.test('a warm sandbox is not adopted by another spec (a cold start instead), and one never adopted can be ended', async (t) => {
  const { a } = await twoNodes(t)
  const executor = new ActorExecutor({ system: a.system })
  const dir = mkdtempSync(join(tmpdir(), 'noir-actor-warm-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const spec: ExecSpec = { allocationId: 'warm-c', runtime: { kind: 'actor', bundle: counter }, env: { A: '1' }, limits: { cpu: 1, memoryBytes: 256 * 1024 * 1024 }, network: 'none', stateDir: dir }
  await executor.warm(spec)
  const handle = await executor.prepare({ ...spec, env: { A: '2' } })
  t.teardown(async () => {
    await executor.stop(handle, { graceMs: 0 }).catch(() => undefined)
    await executor.remove(handle)
  })
  t.notOk(executor.isWarm('warm-c'), 'the warm sandbox is gone')
  await executor.start(handle)
  t.equal(await a.system.ask(executor.addressOf(handle)!, '/counter/get'), 0, 'a cold start of the other spec runs')

  await executor.warm({ ...spec, allocationId: 'warm-d' })
  t.ok(executor.isWarm('warm-d'))
  await executor.discardWarm('warm-d')
  t.notOk(executor.isWarm('warm-d'), 'discarded: ended')
  await executor.discardWarm('warm-d') // nothing to end: no error
})

t.test('an actor that allocates beyond its memory limit is ended and reported as OOM', async (t) => {
  const { a, b } = await twoNodes(t)
  const executor = new ActorExecutor({ system: a.system })
  const { handle } = await run(t, executor, probe, 'hog1')
  const err = await rejection(b.system.ask(executor.addressOf(handle)!, '/probe/hog', null, { timeoutMs: 60_000 }))
  t.equal(err.name, 'ActorWorkloadEndedError', 'the pending ask fails with a typed error, not a time-out')
  const status = await executor.wait(handle)
  t.equal(status.reason, 'oom', 'reason oom')
  t.equal(status.oomKilled, true)
})

t.test('an actor that burns through its CPU time budget is ended with reason cpu-time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-actor-cpu-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const executor = new ActorExecutor()
  const handle = await executor.prepare({
    allocationId: 'cpu1',
    runtime: { kind: 'actor', bundle: fileURLToPath(new URL('./fixtures/actor/compliance.ts', import.meta.url)) },
    env: { COMPLIANCE_SCENARIO: 'busy' },
    limits: { cpu: 1, memoryBytes: 256 * 1024 * 1024, cpuTimeMs: 1500 },
    network: 'none',
    stateDir: dir,
  })
  t.teardown(() => executor.remove(handle))
  await executor.start(handle)
  const status = await executor.wait(handle)
  t.equal(status.reason, 'cpu-time', 'reason cpu-time')
  const used = (await executor.stats(handle)).cpuNanos / 1e6
  t.ok(used >= 1500, `it was allowed its budget first (${Math.round(used)} ms CPU)`)
})

t.test('with a SnapshotStore, the stop snapshot is mirrored there and seeds the same allocation on a fresh state directory', async (t) => {
  const { kit, a, b } = await twoNodes(t)
  const store = new MemorySnapshotStore()
  const executor = new ActorExecutor({ system: a.system, snapshots: store })
  const token = await kit.grant(a.key, b.system.did, ['/counter/increment'])
  const first = await run(t, executor, counter, 'moving')
  await b.system.ask(executor.addressOf(first.handle)!, '/counter/increment', { by: 5 }, { proofs: [token] })
  await executor.stop(first.handle, { graceMs: 5000 })
  await executor.remove(first.handle)
  t.match(await store.load('moving'), { definition: 'example/counter', snapshot: { context: { count: 5 } } }, 'the store holds the stop snapshot under the allocation id')
  const moved = await run(t, executor, counter, 'moving')
  t.not(moved.stateDir, first.stateDir, 'a fresh state directory (as on another node)')
  t.equal(await b.system.ask(executor.addressOf(moved.handle)!, '/counter/get'), 5, 'the instance continues from the stored snapshot')
})

t.test('with network none the sandbox has no route to the host, even to 127.0.0.1 (a network namespace via bubblewrap)', async (t) => {
  if (!requireOrSkip(t, bwrap)) return
  const server = createServer((sock) => sock.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port
  const { a } = await twoNodes(t)
  const executor = new ActorExecutor({ system: a.system })
  const isolated = await run(t, executor, probe, 'net-none')
  t.equal(await a.system.ask(executor.addressOf(isolated.handle)!, '/probe/connect', { port }), 'ECONNREFUSED', 'the host\'s listener is unreachable from the sandbox')
  const open = new ActorExecutor({ system: a.system, isolateNetwork: false })
  const shared = await run(t, open, probe, 'net-host')
  t.equal(await a.system.ask(open.addressOf(shared.handle)!, '/probe/connect', { port }), 'connected', 'control: without the namespace the same connection succeeds')
})
