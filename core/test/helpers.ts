// Machines, definitions and systems shared by the core tests.
import type { Test } from 'tap'
import { assign, setup } from 'xstate'
import { NodeKey } from '../../identity/index.ts'
import { ActorSystem, defineActor, InvalidMessageError, SimulatedClock, type ActorDefinition, type MessageContext, type SystemEvent } from '../index.ts'

/** A system on a simulated clock, stopped when the test ends, with every system event it emitted. */
export function observedSystem(t: Test, init: Partial<ConstructorParameters<typeof ActorSystem>[0]> = {}): { s: ActorSystem; events: SystemEvent[] } {
  const s = new ActorSystem({ key: NodeKey.generate(), clock: new SimulatedClock(), ...init })
  const events: SystemEvent[] = []
  s.subscribe((e) => events.push(e))
  t.teardown(() => s.stop())
  return { s, events }
}

/** Records every value it is told, in order; can be made to crash; answers asks in several ways. */
export const recorderMachine = setup({
  types: {
    context: {} as { log: unknown[]; parked: MessageContext[] },
    events: {} as
      | { type: 'record'; value: unknown }
      | { type: 'boom'; why: string }
      | { type: 'park'; msg: MessageContext }
      | { type: 'release'; value: unknown }
      | { type: 'finish' },
  },
  actions: {
    explode: (_, params: { why: string }) => {
      throw new Error(params.why)
    },
  },
}).createMachine({
  id: 'recorder',
  context: { log: [], parked: [] },
  initial: 'running',
  states: {
    running: {
      on: {
        record: { actions: assign({ log: ({ context, event }) => [...context.log, event.value] }) },
        boom: { actions: { type: 'explode', params: ({ event }) => ({ why: event.why }) } },
        park: { actions: assign({ parked: ({ context, event }) => [...context.parked, event.msg] }) },
        release: {
          actions: [({ context, event }) => { for (const m of context.parked) m.respond(event.value) }, assign({ parked: [] })],
        },
        finish: 'finished',
      },
    },
    finished: { type: 'final' },
  },
})

export interface RecorderOptions {
  name?: string
  mailboxCapacity?: number
  restart?: 'permanent' | 'temporary'
  supervision?: ActorDefinition['supervision']
  children?: ActorDefinition['children']
  persist?: boolean
}

export function recorder(options: RecorderOptions = {}): ActorDefinition {
  return defineActor(recorderMachine).with({
    name: options.name ?? 'test/recorder',
    behaviors: {
      '/rec/record': { public: true, event: (value: unknown) => ({ type: 'record', value }) },
      '/rec/log': { public: true, reply: (snapshot) => snapshot.context.log },
      '/rec/boom': { public: true, event: (why: unknown) => ({ type: 'boom', why: String(why) }) },
      '/rec/park': { public: true, deferred: true, event: (_body: unknown, msg) => ({ type: 'park', msg }) },
      '/rec/release': { public: true, event: (value: unknown) => ({ type: 'release', value }) },
      '/rec/finish': { public: true, event: () => ({ type: 'finish' }) },
      '/rec/refuse': {
        public: true,
        reply: () => {
          throw new InvalidMessageError('/rec/refuse', 'refused on purpose')
        },
      },
      '/rec/guarded': { event: (value: unknown) => ({ type: 'record', value }), reply: (snapshot) => snapshot.context.log.length },
      '/rec/admin': { ability: '/rec/admin', event: (value: unknown) => ({ type: 'record', value }) },
    },
    ...(options.mailboxCapacity ? { mailboxCapacity: options.mailboxCapacity } : {}),
    ...(options.restart ? { restart: options.restart } : {}),
    ...(options.supervision ? { supervision: options.supervision } : {}),
    ...(options.children ? { children: options.children } : {}),
    ...(options.persist ? { persist: options.persist } : {}),
  })
}

/** Rejects with the error the promise rejects with, or fails if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection, got a value')
}

/** The error `fn` throws synchronously. */
export function thrown(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a throw')
}
