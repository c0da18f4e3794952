// The built-in actor every daemon hosts at `<node did>/node`: public behaviors to check that a node is
// alive and reachable over the mesh (used by tests, `noir actor send`, and the demo).
//   /noir/node/ping  -> { pong: true, did, count }       (count: pings handled since start)
//   /noir/node/info  -> { did, peerId, multiaddrs, version }
//   /noir/node/echo  -> the body, unchanged
import { assign, setup } from 'xstate'
import { defineActor } from '../../core/index.ts'
import type { NodeContext, NodeService } from './service.ts'
import { VERSION } from './routes.ts'

export const NODE_ACTOR_NAME = 'node'

export function nodeActorDefinition(info: () => { did: string; peerId: string; multiaddrs: string[] }) {
  const machine = setup({
    types: { context: {} as { pings: number }, events: {} as { type: 'ping' } },
  }).createMachine({
    id: 'noir-node',
    context: { pings: 0 },
    on: { ping: { actions: assign({ pings: ({ context }) => context.pings + 1 }) } },
  })
  return defineActor(machine).with({
    name: 'noir-node',
    behaviors: {
      '/noir/node/ping': {
        public: true,
        event: () => ({ type: 'ping' as const }),
        reply: (snapshot) => ({ pong: true, did: info().did, count: snapshot.context.pings }),
      },
      '/noir/node/info': {
        public: true,
        reply: () => ({ ...info(), version: VERSION }),
      },
      '/noir/node/echo': {
        public: true,
        reply: (_snapshot, body) => body,
      },
    },
  })
}

export class NodeInfoService implements NodeService {
  readonly name = 'node-actor'
  #ctx: NodeContext | undefined

  start(ctx: NodeContext): void {
    this.#ctx = ctx
    ctx.system.spawn(
      nodeActorDefinition(() => ({ did: ctx.did, peerId: ctx.mesh.peerId, multiaddrs: ctx.mesh.multiaddrs() })),
      { name: NODE_ACTOR_NAME },
    )
  }

  async stop(): Promise<void> {
    const ctx = this.#ctx
    this.#ctx = undefined
    if (ctx?.system.running) await ctx.system.stopActor(NODE_ACTOR_NAME).catch(() => {})
  }
}
