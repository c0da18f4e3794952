// Actors whose XState logic is not a state machine: `fromTransition` logic (one value, a reducer) gets the same
// kernel as a machine: tells and asks in order, replies from the snapshot, snapshots saved and restored,
// crashes supervised and restarted from the initial state.
import t from 'tap'
import { fromTransition } from 'xstate'
import { NodeKey } from '../../identity/index.ts'
import { ActorCrashedError, ActorSystem, InvalidDefinitionError, MemorySnapshotStore, defineActor } from '../index.ts'
import { observedSystem as system, rejection, thrown } from './helpers.ts'

type TallyEvent = { type: 'add'; by: number } | { type: 'boom' }

/** A tally as transition logic: the state is the running total and how many additions made it. */
function tally(name = 'test/tally') {
  const logic = fromTransition((state: { total: number; adds: number }, event: TallyEvent) => {
    if (event.type === 'boom') throw new Error('tally exploded')
    return { total: state.total + event.by, adds: state.adds + 1 }
  }, { total: 0, adds: 0 })
  return defineActor(logic).with({
    name,
    behaviors: {
      '/tally/add': { public: true, event: (by: number) => ({ type: 'add' as const, by }), reply: (s) => s.context.total },
      '/tally/get': { public: true, reply: (s) => s.context },
      '/tally/boom': { public: true, event: () => ({ type: 'boom' as const }) },
    },
  })
}

t.test('transition logic handles tells and asks in mailbox order and answers from its snapshot', async (t) => {
  const { s } = system(t)
  const ref = s.spawn(tally(), { name: 'tally' })
  for (let i = 1; i <= 10; i++) ref.tell('/tally/add', i)
  t.equal(await ref.ask('/tally/add', 100), 155, 'the ask sees every earlier tell')
  t.same(await ref.ask('/tally/get'), { total: 155, adds: 11 })
})

t.test('a transition that throws is a crash: the ask fails, the supervisor restarts it from the initial state', async (t) => {
  const { s, events } = system(t)
  const ref = s.spawn(tally(), { name: 'tally' })
  await ref.ask('/tally/add', 5)
  const err = await rejection(ref.ask('/tally/boom'))
  t.type(err, ActorCrashedError)
  t.match((err as Error).message, /tally exploded/)
  t.ok(events.some((e) => e.type === 'restarted'), 'restarted')
  t.same(await ref.ask('/tally/get'), { total: 0, adds: 0 }, 'fresh state after the restart')
})

t.test('a transition actor snapshot restores in another system and goes on from there', async (t) => {
  const store = new MemorySnapshotStore()
  const one = new ActorSystem({ key: NodeKey.generate(), snapshots: store })
  const two = new ActorSystem({ key: NodeKey.generate(), snapshots: store })
  t.teardown(async () => { await one.stop(); await two.stop() })
  const ref = one.spawn(tally(), { name: 'tally' })
  await ref.ask('/tally/add', 7)
  await ref.ask('/tally/add', 8)
  const record = await one.saveSnapshot(ref)
  t.equal(record.definition, 'test/tally')
  const moved = await two.restore(tally(), { name: 'tally' })
  t.same(await moved.ask('/tally/get'), { total: 15, adds: 2 })
  t.equal(await moved.ask('/tally/add', 1), 16)
})

t.test('defineActor refuses what is not XState actor logic', async (t) => {
  const bad: [string, unknown][] = [['null', null], ['a number', 42], ['an empty object', {}], ['transition only', { transition: () => ({}) }], ['initial snapshot only', { getInitialSnapshot: () => ({}) }]]
  for (const [what, logic] of bad) {
    t.throws(() => defineActor(logic as never).with({ behaviors: {} }), InvalidDefinitionError, `refused: ${what}`)
  }
  const named = defineActor(fromTransition((s: number) => s, 0)).with({ behaviors: {} })
  t.equal(named.name, 'actor', 'logic without an id gets the default name')
})

t.test('a logic factory that returns something else fails the spawn with the definition named, not a TypeError', async (t) => {
  const { s } = system(t)
  const def = defineActor(() => ({ not: 'logic' }) as never).with({ name: 'test/bad-factory', behaviors: { '/x/get': { public: true, reply: () => 1 } } })
  const err = thrown(() => s.spawn(def, { name: 'bad' }))
  t.type(err, ActorCrashedError)
  t.type((err as ActorCrashedError).cause, InvalidDefinitionError)
  t.match(((err as ActorCrashedError).cause as Error).message, /test\/bad-factory: its logic factory returned something that is not XState actor logic/)
  t.equal(s.lookup('bad'), undefined, 'nothing is left registered under the name')
})
