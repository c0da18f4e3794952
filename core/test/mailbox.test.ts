import t, { type Test } from 'tap'
import { NodeKey } from '../../identity/index.ts'
import { ActorSystem, MailboxFullError, SimulatedClock, type SystemEvent } from '../index.ts'
import { recorder, rejection, thrown } from './helpers.ts'

type T = Test

function system(t: T): ActorSystem {
  const s = new ActorSystem({ key: NodeKey.generate(), clock: new SimulatedClock() })
  t.teardown(() => s.stop())
  return s
}

t.test('messages are handled one at a time in arrival order, interleaved senders included', async (t) => {
  const s = system(t)
  const ref = s.spawn(recorder({ mailboxCapacity: 10_000 }), { name: 'r' })
  const a = s.spawn(recorder(), { name: 'a' })
  const b = s.spawn(recorder(), { name: 'b' })
  const expected: string[] = []
  for (let i = 0; i < 2000; i++) {
    const from = i % 3 === 0 ? b.address : a.address
    const value = `${from === a.address ? 'a' : 'b'}${i}`
    s.tell(ref, '/rec/record', value, { from })
    expected.push(value)
  }
  t.equal(ref.mailboxDepth, 2000, 'all queued before any is handled (tell never runs the actor inline)')
  t.same(await ref.ask('/rec/log'), expected)
  t.equal(ref.mailboxDepth, 0)
})

t.test('messages sent while handling another land behind it', async (t) => {
  const s = system(t)
  const first = s.spawn(recorder(), { name: 'first' })
  const second = s.spawn(recorder(), { name: 'second' })
  s.tell(first, '/rec/record', 1)
  s.tell(second, '/rec/record', 1)
  s.tell(first, '/rec/record', 2)
  t.same(await Promise.all([first.ask('/rec/log'), second.ask('/rec/log')]), [[1, 2], [1]])
})

t.test('a full mailbox refuses the message with MailboxFullError and its depth is observable', async (t) => {
  const s = system(t)
  const ref = s.spawn(recorder({ mailboxCapacity: 3 }), { name: 'r' })
  ref.tell('/rec/record', 1)
  ref.tell('/rec/record', 2)
  ref.tell('/rec/record', 3)
  t.equal(ref.mailboxDepth, 3)
  t.equal(s.mailboxDepth(`${s.did}/r`), 3)
  t.same(s.stats(), { actors: 1, queuedMessages: 3, readyActors: 1 })
  const err = thrown(() => ref.tell('/rec/record', 4))
  t.type(err, MailboxFullError)
  t.same((err as MailboxFullError).data, { address: ref.address, capacity: 3 })
  t.type(await rejection(ref.ask('/rec/log')), MailboxFullError, 'an ask is refused the same way')
  await new Promise((r) => setImmediate(r))
  t.equal(ref.mailboxDepth, 0, 'drained')
  t.same(await ref.ask('/rec/log'), [1, 2, 3], 'accepted messages were handled; the refused ones were not')
})

t.test('a tell dropped from the mailbox by a stop is reported as rejected', async (t) => {
  const s = system(t)
  const events: SystemEvent[] = []
  s.subscribe((e) => events.push(e))
  const ref = s.spawn(recorder(), { name: 'r' })
  ref.tell('/rec/record', 1)
  await s.stopActor(ref)
  const rejected = events.filter((e) => e.type === 'rejected')
  t.equal(rejected.length, 1)
  t.equal((rejected[0] as { error: Error }).error.name, 'ActorStoppedError')
})

t.test('a body refused by the behavior parse is refused at once with InvalidMessageError', async (t) => {
  const { counter } = await import('../../examples/counter/counter.ts')
  const s = system(t)
  const ref = s.spawn(counter, { name: 'c' })
  t.throws(() => ref.tell('/counter/increment', { by: 'x' }), { name: 'InvalidMessageError' })
  t.equal(ref.mailboxDepth, 0, 'nothing queued')
})
