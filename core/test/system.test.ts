import t from 'tap'
import { fromPromise, setup } from 'xstate'
import { NodeKey, issueCapability } from '../../identity/index.ts'
import {
  ActorSystem,
  CapabilityDeniedError,
  InvalidDefinitionError,
  MailboxFullError,
  RemoteError,
  SimulatedClock,
  defineActor,
  fromWireError,
  toWireError,
  type SystemEvent,
  type TerminationReason,
} from '../index.ts'
import { observedSystem as system, recorder, rejection } from './helpers.ts'


t.test('with inspect on, XState inspection events appear on the system event stream per actor', async (t) => {
  const { s, events } = system(t, { inspect: true })
  const ref = s.spawn(recorder(), { name: 'r' })
  await ref.ask('/rec/record', 'x')
  const inspected = events.filter((e) => e.type === 'inspect') as Extract<SystemEvent, { type: 'inspect' }>[]
  t.ok(inspected.some((e) => e.event.type === '@xstate.event' && (e.event as { event: { type: string } }).event.type === 'record'))
  t.ok(inspected.every((e) => e.address === ref.address))
})

t.test('without inspect, no inspection events are produced', async (t) => {
  const { s, events } = system(t)
  await s.spawn(recorder(), { name: 'r' }).ask('/rec/record', 'x')
  t.equal(events.filter((e) => e.type === 'inspect').length, 0)
  t.same(events.map((e) => e.type), ['spawned'])
})

t.test('watching an address where nothing runs reports not-found at once', async (t) => {
  const { s } = system(t)
  const reason = await new Promise<TerminationReason>((resolve) => s.watch(`${s.did}/nobody`, resolve))
  t.same(reason, { kind: 'not-found' })
})

t.test('a cancelled watch is not called', async (t) => {
  const { s } = system(t)
  const ref = s.spawn(recorder(), { name: 'r' })
  let called = false
  const cancel = s.watch(ref, () => { called = true })
  cancel()
  await s.stopActor(ref)
  t.equal(called, false)
})

t.test('under the checked local policy a local sender needs a capability too', async (t) => {
  const key = NodeKey.generate()
  const clock = new SimulatedClock()
  const { s, events } = system(t, { key, clock, localPolicy: 'checked' })
  const ref = s.spawn(recorder(), { name: 'r' })
  t.type(await rejection(ref.ask('/rec/guarded', 1)), CapabilityDeniedError)
  ref.tell('/rec/guarded', 2)
  await new Promise((r) => setImmediate(r))
  t.equal(events.filter((e) => e.type === 'rejected').length, 1, 'a denied local tell is reported as rejected')
  const token = await issueCapability(key, { audience: key.did, abilities: [{ can: '/rec/guarded' }], ttlMs: 60_000, now: clock.now() })
  // Messages from one sender keep their order even while their capability checks are in flight.
  ref.tell('/rec/guarded', 'a', { proofs: [token] })
  ref.tell('/rec/record', 'b')
  ref.tell('/rec/guarded', 'c', { proofs: [token] })
  t.same(await ref.ask('/rec/log'), ['a', 'b', 'c'])
})

t.test('under the default trusted local policy local senders need no capability', async (t) => {
  const { s } = system(t)
  t.equal(await s.spawn(recorder(), { name: 'r' }).ask('/rec/guarded', 1), 1)
})

t.test('errors cross the wire as { name, code, message, data } and come back as the same class', async (t) => {
  const wire = toWireError(new MailboxFullError('did:key:z6Mkx/a', 3))
  t.same(wire, { name: 'MailboxFullError', code: 'ERR_MAILBOX_FULL', message: 'mailbox of did:key:z6Mkx/a is full (3 messages)', data: { address: 'did:key:z6Mkx/a', capacity: 3 } })
  const back = fromWireError(JSON.parse(JSON.stringify(wire)))
  t.type(back, MailboxFullError)
  t.equal(back.message, wire.message)
  const unknown = fromWireError({ name: 'SomethingElseError', code: 'ERR_X', message: 'x' })
  t.type(unknown, RemoteError)
  t.equal(unknown.name, 'SomethingElseError')
  t.same(toWireError('plain'), { name: 'Error', code: 'ERROR', message: 'plain' })
})

t.test('the simulated clock fires timers in due order only when advanced', async (t) => {
  const clock = new SimulatedClock(0)
  const fired: string[] = []
  clock.setTimeout(() => fired.push('b'), 20)
  clock.setTimeout(() => fired.push('a'), 10)
  const c = clock.setTimeout(() => fired.push('never'), 15)
  clock.clearTimeout(c)
  clock.advance(9)
  t.same(fired, [])
  clock.advance(11)
  t.same(fired, ['a', 'b'])
  t.equal(clock.now(), 20)
})

t.test('a malformed definition is refused with InvalidDefinitionError', async (t) => {
  const m = setup({}).createMachine({})
  t.throws(() => defineActor(m).with({ behaviors: { 'no-slash': { public: true, reply: () => 1 } } }), InvalidDefinitionError)
  t.throws(() => defineActor(m).with({ behaviors: { '/x': { public: true } } }), InvalidDefinitionError)
  t.throws(() => defineActor(m).with({ behaviors: {}, mailboxCapacity: 0 }), InvalidDefinitionError)
  t.throws(() => defineActor(m).with({ behaviors: {}, supervision: { strategy: 'one-for-none' as 'one-for-one' } }), InvalidDefinitionError)
})

t.test('a failure outside message handling (an invoked promise rejecting) is a crash the supervisor restarts', async (t) => {
  let fail = true
  const machine = setup({
    actors: { work: fromPromise(async () => { if (fail) throw new Error('background failure'); return 1 }) },
  }).createMachine({ id: 'bg', initial: 'working', states: { working: { invoke: { src: 'work', onDone: 'idle' } }, idle: {} } })
  const def = defineActor(machine).with({ name: 'test/bg', behaviors: { '/bg/state': { public: true, reply: (s) => s.value } } })
  const { s, events } = system(t)
  const restarted = new Promise<void>((resolve) => s.subscribe((e) => { if (e.type === 'restarted') { fail = false; resolve() } }))
  s.spawn(def, { name: 'bg' })
  await restarted
  const crash = events.find((e) => e.type === 'crashed') as { error: Error } | undefined
  t.match(crash?.error.message, /background failure/)
  await new Promise((r) => setImmediate(r))
  t.equal(await s.ask(`${s.did}/bg`, '/bg/state'), 'idle', 'the restarted instance finished its work')
})

t.test('a stopped system refuses new actors and stops the old ones', async (t) => {
  const s = new ActorSystem({ key: NodeKey.generate() })
  const ref = s.spawn(recorder(), { name: 'r' })
  await s.stop()
  t.throws(() => s.spawn(recorder(), { name: 'again' }), { name: 'SystemStoppedError' })
  t.type(await rejection(ref.ask('/rec/log')), Error)
  t.same(s.actors(), [])
})

t.test('an actor built from its context messages others as itself and spawns its own children', async (t) => {
  const { s } = system(t)
  const sink = s.spawn(recorder(), { name: 'sink' })
  const forwarder = defineActor((ctx) =>
    setup({ types: { events: {} as { type: 'fwd'; value: unknown } | { type: 'hire'; name: string } } }).createMachine({
      id: 'fwd',
      on: {
        fwd: { actions: ({ event }) => ctx.tell(sink, '/rec/record', [ctx.self, event.value]) },
        hire: { actions: ({ event }) => { ctx.spawnChild(recorder(), { name: event.name }) } },
      },
    }),
  ).with({
    name: 'test/forwarder',
    behaviors: {
      '/fwd/send': { public: true, event: (value: unknown) => ({ type: 'fwd', value }) },
      '/fwd/hire': { public: true, event: (name: unknown) => ({ type: 'hire', name: String(name) }) },
    },
  })
  const f = s.spawn(forwarder, { name: 'f' })
  await f.ask('/fwd/send', 1)
  await f.ask('/fwd/hire', 'helper')
  t.same(await sink.ask('/rec/log'), [[f.address, 1]])
  t.ok(s.lookup('f/helper'), 'the child runs under its parent')
  await s.stopActor(f)
  t.equal(s.lookup('f/helper'), undefined)
})
