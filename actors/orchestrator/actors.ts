// The market actor on a node's ActorSystem (the consumer side's actors are the orchestrator's own,
// orchestrator.ts):
//   <did>/market        the provider side: bid, propose (reserve + countersign), start, stop, logs, fence
// A small XState machine whose `call` event runs one operation of the Provider and answers the ask when it
// settles (deferred replies), so the mailbox stays the single way in.
// The market is open (behaviors are public, as a marketplace must be): what binds is the signature on each
// bid and contract, and every operation on a contract checks that the sender is that contract's consumer.
import { setup } from 'xstate'
import { defineActor, registerErrorClass, type MessageContext } from '../../core/index.ts'
import { parseAddress } from '../../identity/address.ts'
import * as errors from '../errors.ts'
import type { Provider } from '../provider/provider.ts'
import { MarketBehavior } from './protocol.ts'

for (const value of Object.values(errors)) {
  // Each class's `name` equals its class name, so a remote caller gets the same class back.
  if (typeof value === 'function' && value.prototype instanceof Error) registerErrorClass(value as never)
}

type CallEvent = { type: 'call'; run: () => void }

const callMachine = (id: string) =>
  setup({ types: { events: {} as CallEvent }, actions: { run: ({ event }) => event.run() } }).createMachine({
    id,
    on: { call: { actions: 'run' } },
  })

const senderDid = (msg: MessageContext): string => parseAddress(msg.from).did

/** Answers the ask with the promise's outcome. */
const settle = (msg: MessageContext, p: () => Promise<unknown>): CallEvent => ({
  type: 'call',
  run: () => {
    p().then((v) => msg.respond(v ?? null), (err: unknown) => msg.fail(err instanceof Error ? err : new Error(String(err))))
  },
})

export function marketActor(provider: Provider) {
  const op = (fn: (body: never, from: string) => Promise<unknown>) => ({
    public: true,
    deferred: true,
    event: (body: unknown, msg: MessageContext): CallEvent => settle(msg, () => fn(body as never, senderDid(msg))),
  })
  return defineActor(callMachine('noir-market')).with({
    name: 'noir-market',
    mailboxCapacity: 10_000,
    behaviors: {
      [MarketBehavior.bid]: op((b) => provider.bid(b)),
      [MarketBehavior.propose]: op((b, from) => provider.propose(b, from)),
      [MarketBehavior.start]: op((b, from) => provider.startWork(b, from)),
      [MarketBehavior.stop]: op((b, from) => provider.stopWork(b, from)),
      [MarketBehavior.logs]: op((b, from) => provider.logs(b, from)),
      [MarketBehavior.fence]: op((b, from) => provider.fence(b, from)),
      [MarketBehavior.handover]: op((b, from) => provider.handover(b, from)),
      // not public: only this node's pubsub layer tells it, with the signer it verified
      [MarketBehavior.fenceHeard]: {
        deferred: true,
        event: (body: { fence: { slot: string; epoch: number }; from: string }, msg: MessageContext): CallEvent => settle(msg, () => provider.fence(body.fence, body.from)),
      },
    },
  })
}
