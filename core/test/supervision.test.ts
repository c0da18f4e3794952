import t, { type Test } from 'tap'
import { NodeKey } from '../../identity/index.ts'
import { ActorCrashedError, ActorSystem, RestartIntensityExceededError, SimulatedClock, type SupervisionStrategy, type SystemEvent, type TerminationReason } from '../index.ts'
import { recorder, rejection } from './helpers.ts'

type T = Test

function setupSystem(t: T, init: Partial<ConstructorParameters<typeof ActorSystem>[0]> = {}): { s: ActorSystem; clock: SimulatedClock; events: SystemEvent[] } {
  const clock = new SimulatedClock()
  const s = new ActorSystem({ key: NodeKey.generate(), clock, ...init })
  const events: SystemEvent[] = []
  s.subscribe((e) => events.push(e))
  t.teardown(() => s.stop())
  return { s, clock, events }
}

function family(strategy: SupervisionStrategy, maxRestarts = 5) {
  const child = recorder({ name: 'test/child' })
  return recorder({
    name: 'test/parent',
    supervision: { strategy, maxRestarts, withinMs: 1000 },
    children: [{ name: 'a', actor: child }, { name: 'b', actor: child }, { name: 'c', actor: child }],
  })
}

async function logs(s: ActorSystem, paths: string[]): Promise<unknown[]> {
  return await Promise.all(paths.map((p) => s.ask(`${s.did}/${p}`, '/rec/log')))
}

async function crashB(s: ActorSystem): Promise<void> {
  const err = await rejection(s.ask(`${s.did}/p/b`, '/rec/boom', 'b fails'))
  if (!(err instanceof ActorCrashedError)) throw err
}

async function fill(s: ActorSystem): Promise<void> {
  for (const p of ['p', 'p/a', 'p/b', 'p/c']) s.tell(`${s.did}/${p}`, '/rec/record', p)
  await logs(s, ['p'])
}

t.test('one-for-one restarts only the crashed child', async (t) => {
  const { s } = setupSystem(t)
  s.spawn(family('one-for-one'), { name: 'p' })
  await fill(s)
  await crashB(s)
  t.same(await logs(s, ['p', 'p/a', 'p/b', 'p/c']), [['p'], ['p/a'], [], ['p/c']])
})

t.test('all-for-one restarts every child of the supervisor', async (t) => {
  const { s, events } = setupSystem(t)
  s.spawn(family('all-for-one'), { name: 'p' })
  await fill(s)
  await crashB(s)
  t.same(await logs(s, ['p', 'p/a', 'p/b', 'p/c']), [['p'], [], [], []])
  const restarted = events.filter((e) => e.type === 'restarted').map((e) => (e as { address: string }).address.slice(s.did.length + 1))
  t.same(restarted, ['p/a', 'p/b', 'p/c'], 'restarted in start order')
})

t.test('rest-for-one restarts the crashed child and those started after it', async (t) => {
  const { s } = setupSystem(t)
  s.spawn(family('rest-for-one'), { name: 'p' })
  await fill(s)
  await crashB(s)
  t.same(await logs(s, ['p', 'p/a', 'p/b', 'p/c']), [['p'], ['p/a'], [], []])
})

t.test('a restarted child keeps its address, and watchers are not told of a restart', async (t) => {
  const { s } = setupSystem(t)
  s.spawn(family('one-for-one'), { name: 'p' })
  const reasons: TerminationReason[] = []
  s.watch(`${s.did}/p/b`, (r) => reasons.push(r))
  await crashB(s)
  t.same(await s.ask(`${s.did}/p/b`, '/rec/log'), [])
  t.same(reasons, [])
})

t.test('exceeding the restart intensity escalates: the parent is restarted with fresh children', async (t) => {
  const { s, events } = setupSystem(t)
  s.spawn(family('one-for-one', 2), { name: 'p' })
  await fill(s)
  await crashB(s)
  await crashB(s)
  t.same(await logs(s, ['p', 'p/a']), [['p'], ['p/a']], 'two restarts allowed: parent and siblings untouched')
  await crashB(s)
  const esc = events.find((e) => e.type === 'escalated')
  t.ok(esc, 'an escalated event')
  t.equal((esc as { address: string }).address, `${s.did}/p`)
  t.type((esc as { error: Error }).error, RestartIntensityExceededError)
  t.same(await logs(s, ['p', 'p/a', 'p/b', 'p/c']), [[], [], [], []], 'the parent crashed and was restarted by the root with new children')
})

t.test('restarts older than the intensity window do not count', async (t) => {
  const { s, clock, events } = setupSystem(t)
  s.spawn(family('one-for-one', 2), { name: 'p' })
  await fill(s)
  for (let i = 0; i < 6; i++) {
    await crashB(s)
    clock.advance(600)
  }
  t.equal(events.filter((e) => e.type === 'escalated').length, 0)
  t.same(await logs(s, ['p']), [['p']])
})

t.test('when the root supervisor gives up, the whole tree is stopped and the escalation reported', async (t) => {
  let reported: Error | undefined
  const { s } = setupSystem(t, { rootSupervision: { maxRestarts: 1, withinMs: 1000 }, onEscalation: (e) => { reported = e } })
  const ref = s.spawn(recorder(), { name: 'top' })
  s.spawn(family('one-for-one'), { name: 'p' })
  const ended = new Promise<TerminationReason>((resolve) => s.watch(`${s.did}/p/a`, resolve))
  await rejection(ref.ask('/rec/boom', 'one'))
  t.same(await ref.ask('/rec/log'), [], 'first crash: restarted')
  await rejection(ref.ask('/rec/boom', 'two'))
  t.type(reported, RestartIntensityExceededError)
  t.same(s.actors(), [], 'every actor stopped')
  t.same(await ended, { kind: 'stopped', by: 'parent' })
})

t.test('a temporary child that crashes is not restarted; its watchers learn it crashed', async (t) => {
  const { s } = setupSystem(t)
  const ref = s.spawn(recorder({ restart: 'temporary' }), { name: 'tmp' })
  const ended = new Promise<TerminationReason>((resolve) => s.watch(ref, resolve))
  await rejection(ref.ask('/rec/boom', 'bye'))
  const reason = await ended
  t.equal(reason.kind, 'crashed')
  t.match((reason as { error: Error }).error.message, /bye/)
  t.equal(s.lookup('tmp'), undefined)
})

t.test('stopping a parent stops its children first, newest first', async (t) => {
  const { s, events } = setupSystem(t)
  s.spawn(family('one-for-one'), { name: 'p' })
  await s.stopActor(`${s.did}/p`)
  const order = events.filter((e) => e.type === 'terminated').map((e) => (e as { address: string }).address.slice(s.did.length + 1))
  t.same(order, ['p/c', 'p/b', 'p/a', 'p'])
})

t.test('a child spawned under a parent is addressed under it, and ends with it', async (t) => {
  const { s } = setupSystem(t)
  const parent = s.spawn(recorder(), { name: 'p' })
  const child = s.spawn(recorder(), { name: 'kid', parent })
  t.equal(child.address, `${s.did}/p/kid`)
  t.throws(() => s.spawn(recorder(), { name: 'kid', parent }), { name: 'NameTakenError' })
  t.throws(() => s.spawn(recorder(), { name: 'bad/name' }), { name: 'InvalidAddressError' })
  await s.stopActor(parent)
  t.equal(s.lookup('p/kid'), undefined)
})
