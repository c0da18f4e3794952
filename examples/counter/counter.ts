// A counter actor: the smallest stateful SDK actor. Its state is an XState context, so a snapshot taken
// on one node restores on another and the count continues (examples/counter/README.md).
import { assign, setup } from 'xstate'
import { defineActor, InvalidMessageError } from '../../core/index.ts'

export const counterMachine = setup({
  types: {
    context: {} as { count: number },
    events: {} as { type: 'increment'; by: number } | { type: 'reset' },
    input: {} as { start?: number } | undefined,
  },
}).createMachine({
  id: 'counter',
  context: ({ input }) => ({ count: input?.start ?? 0 }),
  on: {
    increment: { actions: assign({ count: ({ context, event }) => context.count + event.by }) },
    reset: { actions: assign({ count: 0 }) },
  },
})

function parseIncrement(body: unknown): { by: number } {
  const by = body === undefined || body === null ? 1 : (body as { by?: unknown }).by
  if (typeof by !== 'number' || !Number.isSafeInteger(by)) throw new InvalidMessageError('/counter/increment', 'by must be a safe integer')
  return { by }
}

export const counter = defineActor(counterMachine).with({
  name: 'example/counter',
  behaviors: {
    // Anyone holding a capability for /counter/increment may count; the answer is the new count.
    '/counter/increment': {
      parse: parseIncrement,
      event: (body: { by: number }) => ({ type: 'increment', by: body.by }),
      reply: (snapshot) => snapshot.context.count,
    },
    '/counter/reset': { ability: '/counter/admin', event: () => ({ type: 'reset' }) },
    // Reading is public.
    '/counter/get': { public: true, reply: (snapshot) => snapshot.context.count },
  },
  persist: true,
})
