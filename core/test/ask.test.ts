import t, { type Test } from 'tap'
import { NodeKey } from '../../identity/index.ts'
import {
  ActorCrashedError,
  ActorNotFoundError,
  ActorStoppedError,
  ActorSystem,
  AskTimeoutError,
  InvalidMessageError,
  SimulatedClock,
  UnknownBehaviorError,
} from '../index.ts'
import { recorder, rejection } from './helpers.ts'

function system(t: Test, clock = new SimulatedClock()): ActorSystem {
  const s = new ActorSystem({ key: NodeKey.generate(), clock })
  t.teardown(() => s.stop())
  return s
}

t.test('an ask is answered from the snapshot after the message is handled', async (t) => {
  const s = system(t)
  const ref = s.spawn(recorder(), { name: 'r' })
  ref.tell('/rec/record', 'a')
  ref.tell('/rec/record', 'b')
  t.same(await ref.ask('/rec/log'), ['a', 'b'])
  t.same(await s.ask(`${s.did}/r`, '/rec/log'), ['a', 'b'], 'the full address reaches the same actor')
})

t.test('an ask with no answer fails with AskTimeoutError when the simulated clock passes its time-out', async (t) => {
  const clock = new SimulatedClock()
  const s = system(t, clock)
  const ref = s.spawn(recorder(), { name: 'r' })
  let settled = false
  const p = ref.ask('/rec/park', null, { timeoutMs: 1000 })
  p.catch(() => {}).finally(() => { settled = true })
  await new Promise((r) => setImmediate(r))
  clock.advance(999)
  await new Promise((r) => setImmediate(r))
  t.equal(settled, false, 'still waiting 1 ms before the time-out')
  clock.advance(1)
  const err = await rejection(p)
  t.type(err, AskTimeoutError)
  t.equal(err.name, 'AskTimeoutError')
  t.equal(clock.pending, 0, 'no timer left behind')
})

t.test('a deferred behavior is answered when the machine calls respond', async (t) => {
  const s = system(t)
  const ref = s.spawn(recorder(), { name: 'r' })
  const a = ref.ask('/rec/park')
  const b = ref.ask('/rec/park')
  ref.tell('/rec/release', 42)
  t.same(await Promise.all([a, b]), [42, 42])
})

t.test('asking an actor that does not exist fails at once with ActorNotFoundError', async (t) => {
  const s = system(t)
  const err = await rejection(s.ask(`${s.did}/nobody`, '/rec/log', null, { timeoutMs: 60_000 }))
  t.type(err, ActorNotFoundError)
  t.type(await rejection(s.ask(`${s.did}/nobody/child`, '/rec/log')), ActorNotFoundError)
})

t.test('asking a stopped actor fails at once with ActorStoppedError, by address and by ref', async (t) => {
  const s = system(t)
  const ref = s.spawn(recorder(), { name: 'r' })
  await s.stopActor(ref)
  t.type(await rejection(ref.ask('/rec/log', null, { timeoutMs: 60_000 })), ActorStoppedError)
  t.type(await rejection(s.ask(`${s.did}/r`, '/rec/log', null, { timeoutMs: 60_000 })), ActorStoppedError)
  t.equal(s.lookup('r'), undefined, 'the name is released')
})

t.test('an ask to an actor that crashes while handling it fails at once with ActorCrashedError', async (t) => {
  const s = system(t)
  const ref = s.spawn(recorder(), { name: 'r' })
  const err = await rejection(ref.ask('/rec/boom', 'kaput', { timeoutMs: 60_000 }))
  t.type(err, ActorCrashedError)
  t.match(err.message, /kaput/)
  t.same(await ref.ask('/rec/log'), [], 'restarted fresh by the root supervisor')
})

t.test('asks queued behind a crashing message fail with ActorCrashedError, pending deferred asks too', async (t) => {
  const s = system(t)
  const ref = s.spawn(recorder(), { name: 'r' })
  const parked = ref.ask('/rec/park', null, { timeoutMs: 60_000 })
  await new Promise((r) => setImmediate(r))
  const crash = ref.ask('/rec/boom', 'x')
  const behind = ref.ask('/rec/log', null, { timeoutMs: 60_000 })
  t.type(await rejection(crash), ActorCrashedError)
  t.type(await rejection(behind), ActorCrashedError)
  t.type(await rejection(parked), ActorCrashedError)
})

t.test('a behavior can answer with a typed error without crashing the actor', async (t) => {
  const s = system(t)
  const ref = s.spawn(recorder(), { name: 'r' })
  ref.tell('/rec/record', 1)
  const err = await rejection(ref.ask('/rec/refuse'))
  t.type(err, InvalidMessageError)
  t.same(await ref.ask('/rec/log'), [1], 'state kept: no crash')
})

t.test('an undeclared behavior is refused with UnknownBehaviorError (ask rejects, tell throws)', async (t) => {
  const s = system(t)
  const ref = s.spawn(recorder(), { name: 'r' })
  t.type(await rejection(ref.ask('/rec/nope')), UnknownBehaviorError)
  t.throws(() => ref.tell('/rec/nope'), { name: 'UnknownBehaviorError' })
})

t.test('an actor that reaches a final state ends with reason done and is then stopped', async (t) => {
  const s = system(t)
  const ref = s.spawn(recorder(), { name: 'r' })
  const ended = new Promise((resolve) => s.watch(ref, resolve))
  await ref.ask('/rec/finish')
  t.same(await ended, { kind: 'done', output: undefined })
  t.type(await rejection(ref.ask('/rec/log')), ActorStoppedError)
})
