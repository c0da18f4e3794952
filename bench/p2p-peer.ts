// The other node of bench/p2p.bench.ts, run as its own process: a mesh + actor system with two sink actors
// (`sink`, a state machine; `tally`, fromTransition logic), and a raw libp2p echo protocol (the baseline).
// Prints one JSON line `{ did, multiaddrs }` when ready; exits when stdin closes.
import { assign, fromTransition, setup } from 'xstate'
import { NodeKey } from '../identity/keys.ts'
import { ActorSystem, defineActor } from '../core/index.ts'
import { Mesh } from '../p2p/mesh.ts'

/** A raw libp2p stream protocol that echoes what it reads: the round-trip baseline. */
export const RAW_ECHO_PROTOCOL = '/bench/echo/1.0.0'

/** Serves RAW_ECHO_PROTOCOL on `mesh`. */
export async function serveRawEcho(mesh: Mesh): Promise<void> {
  await mesh.host.handle(RAW_ECHO_PROTOCOL, async (stream) => {
    for await (const chunk of stream) stream.send(chunk)
  })
}

export function sinkDefinition() {
  const machine = setup({ types: { context: {} as { hits: number }, events: {} as { type: 'hit' } } }).createMachine({
    id: 'bench-sink',
    context: { hits: 0 },
    on: { hit: { actions: assign({ hits: ({ context }) => context.hits + 1 }) } },
  })
  return defineActor(machine).with({
    name: 'bench-sink',
    mailboxCapacity: 1_000_000,
    behaviors: {
      '/bench/hit': { public: true, event: () => ({ type: 'hit' as const }) },
      '/bench/count': { public: true, reply: (s) => s.context.hits },
      '/bench/echo': { public: true, reply: (_s, body) => body },
    },
  })
}

/**
 * The same counting sink as transition logic (a reducer over one value), the XState analogue of an Erlang
 * receive loop: what it costs per message is small beside the runtime's own cost, which a tell to it then shows.
 */
export function tallyDefinition() {
  const logic = fromTransition((state: { hits: number }, _event: { type: 'hit' }) => ({ hits: state.hits + 1 }), { hits: 0 })
  return defineActor(logic).with({
    name: 'bench-tally',
    mailboxCapacity: 1_000_000,
    behaviors: {
      '/bench/hit': { public: true, event: () => ({ type: 'hit' as const }) },
      '/bench/count': { public: true, reply: (s) => s.context.hits },
    },
  })
}

if (import.meta.main) {
  const key = NodeKey.generate()
  const mesh = await Mesh.create({ key, mdns: false, natTraversal: false, pingIntervalMs: 0 })
  await mesh.start()
  await serveRawEcho(mesh)
  const system = new ActorSystem({ key, transport: mesh.transport })
  await system.start()
  system.spawn(sinkDefinition(), { name: 'sink' })
  system.spawn(tallyDefinition(), { name: 'tally' })
  process.stdout.write(JSON.stringify({ did: key.did, multiaddrs: mesh.multiaddrs() }) + '\n')
  process.stdin.resume()
  process.stdin.once('end', () => {
    void (async () => {
      await system.stop()
      await mesh.stop()
      process.exit(0)
    })()
  })
}
