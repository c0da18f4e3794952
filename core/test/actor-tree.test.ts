// ActorSystem.actorTree(): the live tree of hosted actors (address, logic, state, mailbox depth, restarts),
// with the XState children their machines invoke or spawn nested under them, kept current by XState's
// inspection events (core/actor-tree.ts).
import t from 'tap'
import { assign, createMachine, fromPromise, fromTransition, sendTo, setup } from 'xstate'
import { canHaveChildren } from '../actor-tree.ts'
import { defineActor, type ActorTreeNode, type HostedActorNode } from '../index.ts'
import { observedSystem, recorder, rejection } from './helpers.ts'

const worker = setup({ types: { events: {} as { type: 'ready' } } }).createMachine({
  id: 'worker',
  initial: 'warming',
  states: { warming: { on: { ready: 'ready' } }, ready: {} },
})

/** Idle until started; working, it invokes a worker machine and a promise (that never settles). */
const jobMachine = setup({
  types: { events: {} as { type: 'start' } | { type: 'poke' } | { type: 'stop' } },
  actors: { worker, fetcher: fromPromise(() => new Promise<never>(() => {})) },
}).createMachine({
  id: 'job',
  initial: 'idle',
  states: {
    idle: { on: { start: 'working' } },
    working: {
      invoke: [{ id: 'worker', src: 'worker' }, { id: 'fetch', src: 'fetcher' }],
      on: { poke: { actions: sendTo('worker', { type: 'ready' }) }, stop: 'idle' },
    },
  },
})

const job = defineActor(jobMachine).with({
  name: 'test/job',
  behaviors: {
    '/job/start': { public: true, event: () => ({ type: 'start' as const }) },
    '/job/poke': { public: true, event: () => ({ type: 'poke' as const }) },
    '/job/stop': { public: true, event: () => ({ type: 'stop' as const }) },
    '/job/state': { public: true, reply: (s) => s.value },
  },
})

function find(nodes: readonly ActorTreeNode[], address: string): HostedActorNode {
  for (const n of nodes) {
    if (n.kind === 'actor' && n.address === address) return n
    const inner = n.kind === 'actor' ? findOrUndefined(n.children, address) : undefined
    if (inner) return inner
  }
  throw new Error(`${address} is not in the tree`)
}

function findOrUndefined(nodes: readonly ActorTreeNode[], address: string): HostedActorNode | undefined {
  try {
    return find(nodes, address)
  } catch {
    return undefined
  }
}

t.test("a machine's invoked children show nested under it, with their id, logic, state and status, and go when it leaves the state", async (t) => {
  const { s } = observedSystem(t)
  const ref = s.spawn(job, { name: 'job' })
  t.same(s.actorTree(), [{ kind: 'actor', address: `${s.did}/job`, logic: 'test/job', state: 'idle', status: 'active', mailbox: 0, restarts: 0, handled: 0, children: [] }])

  await ref.ask('/job/start')
  t.same(find(s.actorTree(), `${s.did}/job`), {
    kind: 'actor', address: `${s.did}/job`, logic: 'test/job', state: 'working', status: 'active', mailbox: 0, restarts: 0, handled: 1,
    children: [
      { kind: 'xstate', id: 'worker', logic: 'worker', state: 'warming', status: 'active', children: [] },
      { kind: 'xstate', id: 'fetch', logic: 'fetcher', state: 'active', status: 'active', children: [] },
    ],
  })

  await ref.ask('/job/poke')
  const kids = find(s.actorTree(), `${s.did}/job`).children
  t.same(kids.map((k) => [k.kind === 'xstate' ? k.id : k.address, k.state]), [['worker', 'ready'], ['fetch', 'active']], "the child's state change is seen")

  await ref.ask('/job/stop')
  t.same(find(s.actorTree(), `${s.did}/job`).children, [], 'leaving the invoking state stops its children: they are gone')
  t.equal(find(s.actorTree(), `${s.did}/job`).state, 'idle')

  await ref.ask('/job/start')
  t.same(find(s.actorTree(), `${s.did}/job`).children.map((k) => (k.kind === 'xstate' ? k.id : '')), ['worker', 'fetch'], 'invoked again, they show again')
})

t.test('children an actor supervises nest under it; machine state values change as it handles messages', async (t) => {
  const { s } = observedSystem(t)
  const parent = recorder({ name: 'test/parent', children: [{ name: 'a', actor: job }, { name: 'b', actor: recorder() }] })
  s.spawn(parent, { name: 'p' })
  await s.ask(`${s.did}/p/a`, '/job/start')
  const p = find(s.actorTree(), `${s.did}/p`)
  t.equal(p.logic, 'test/parent')
  t.same(p.state, 'running')
  t.same(p.children.map((c) => (c.kind === 'actor' ? [c.address, c.logic, c.state] : [c.id])), [[`${s.did}/p/a`, 'test/job', 'working'], [`${s.did}/p/b`, 'test/recorder', 'running']])
  t.same(find(s.actorTree(), `${s.did}/p/a`).children.map((c) => (c.kind === 'xstate' ? c.id : '')), ['worker', 'fetch'], 'a nested actor has its XState children under it')
  await s.ask(`${s.did}/p/b`, '/rec/finish').catch(() => {})
  t.notOk(findOrUndefined(s.actorTree(), `${s.did}/p/b`), 'an actor that reached its final state is no longer in the tree')
})

t.test('mailbox depth counts the messages queued and not yet handled, also while the actor is busy', async (t) => {
  const { s } = observedSystem(t)
  const seen: HostedActorNode[][] = []
  const counter = fromTransition((n: number, e: { type: 'inc' }) => (e.type === 'inc' ? n + 1 : n), 0)
  const probe = defineActor(counter).with({
    name: 'test/probe',
    behaviors: {
      '/probe/look': { public: true, event: () => {
        seen.push(s.actorTree())
        return { type: 'inc' as const }
      } },
      '/probe/inc': { public: true, event: () => ({ type: 'inc' as const }) },
      '/probe/count': { public: true, reply: (snapshot) => snapshot.context },
    },
  })
  const ref = s.spawn(probe, { name: 'probe' })
  ref.tell('/probe/look')
  for (let i = 0; i < 3; i++) ref.tell('/probe/inc')
  t.equal(s.actorTree()[0]!.mailbox, 4, 'four queued before the scheduler runs')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(seen[0]![0]!.mailbox, 3, 'while it handled the first, three waited behind it')
  t.equal(await ref.ask('/probe/count'), 4)
  t.same([seen[0]![0]!.state, seen[0]![0]!.logic], ['active', 'test/probe'], "logic that is not a machine shows its status as its state")
  t.equal(s.actorTree()[0]!.mailbox, 0, 'and none once handled')
  t.equal(s.actorTree()[0]!.handled, 5, 'five messages handled: look, three incs and the count')
  t.equal(seen[0]![0]!.handled, 1, 'counted as it is handled')
})

t.test('restarts count the restarts its supervisor made after crashes', async (t) => {
  const { s } = observedSystem(t)
  s.spawn(recorder(), { name: 'r' })
  s.spawn(recorder({ name: 'test/p', children: [{ name: 'c', actor: recorder() }] }), { name: 'p' })
  await rejection(s.ask(`${s.did}/r`, '/rec/boom', 'first'))
  await rejection(s.ask(`${s.did}/r`, '/rec/boom', 'second'))
  await rejection(s.ask(`${s.did}/p/c`, '/rec/boom', 'child'))
  const tree = s.actorTree()
  t.equal(find(tree, `${s.did}/r`).restarts, 2)
  t.equal(find(tree, `${s.did}/p`).restarts, 0)
  t.equal(find(tree, `${s.did}/p/c`).restarts, 1)
})

t.test('only logic that can have children gets an inspection callback (the callback costs every message of its actor)', async (t) => {
  t.ok(canHaveChildren(jobMachine), 'a machine given actors in setup')
  t.ok(canHaveChildren(createMachine({ initial: 'a', states: { a: { invoke: { src: fromPromise(async () => 1) } } } })), 'a machine that invokes inline logic in a nested state')
  t.notOk(canHaveChildren(worker), 'a machine with neither')
  t.notOk(canHaveChildren(setup({ types: { context: {} as { n: number } } }).createMachine({ context: { n: 0 }, on: { inc: { actions: assign({ n: ({ context }) => context.n + 1 }) } } })), 'a counter machine')
  t.notOk(canHaveChildren(fromTransition((n: number) => n, 0)), 'transition logic')
})

t.test('with inspect: true the tree is kept all the same, and every inspection event is on the event stream', async (t) => {
  const { s, events } = observedSystem(t, { inspect: true })
  const ref = s.spawn(job, { name: 'job' })
  await ref.ask('/job/start')
  t.same(find(s.actorTree(), `${s.did}/job`).children.map((c) => (c.kind === 'xstate' ? c.id : '')), ['worker', 'fetch'])
  t.ok(events.some((e) => e.type === 'inspect' && e.event.type === '@xstate.actor' && e.event.actorRef !== undefined), 'inspection events are emitted')
})
