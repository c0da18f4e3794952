// The hosted actor's face on the node: an actor in the node's ActorSystem at the workload's address
// (e.g. `<nodeDid>/alloc/<id>/workload`) that declares the same behaviors, with the same abilities, as the
// sandboxed actor. The node's kernel does everything on the receive path (signature, replay, capability
// check, mailbox order); the proxy then forwards each accepted message over IPC and answers the ask with
// what the sandbox answered.
import { setup } from 'xstate'
import { defineActor, type ActorDefinition, type BehaviorSpec, type MessageContext } from '../../../core/sdk.ts'
import type { BehaviorInfo } from './protocol.ts'

export interface ForwardEvent {
  type: 'forward'
  behavior: string
  body: unknown
  from: string
  expectsReply: boolean
  respond: (value: unknown) => void
  fail: (error: Error) => void
}

export interface ProxyChannel {
  forward(event: ForwardEvent): void
}

export function proxyDefinition(name: string, behaviors: readonly BehaviorInfo[], channel: ProxyChannel): ActorDefinition {
  const machine = setup({
    types: { events: {} as ForwardEvent },
    actions: { forward: ({ event }) => channel.forward(event) },
  }).createMachine({ id: 'actor-proxy', on: { forward: { actions: 'forward' } } })
  const specs: Record<string, BehaviorSpec<typeof machine, unknown, unknown>> = {}
  for (const b of behaviors) {
    specs[b.path] = {
      ability: b.ability,
      public: b.public,
      deferred: true,
      event: (body: unknown, msg: MessageContext): ForwardEvent => ({
        type: 'forward', behavior: b.path, body, from: msg.from, expectsReply: msg.expectsReply, respond: (v) => msg.respond(v), fail: (e) => msg.fail(e),
      }),
    }
  }
  return defineActor(machine).with({ name: `actor-proxy:${name}`, behaviors: specs, restart: 'temporary' })
}
