// A small kit for testing actors: ActorSystems joined by an in-memory network, a shared simulated clock,
// a way to let in-flight messages land, and a recorder of system events. Real kernel, real signed
// envelopes, real capability checks; only the wire and the clock are in memory.
import { NodeKey, issueCapability, type Ability } from '../identity/index.ts'
import { ActorSystem, type ActorSystemInit } from './actor-system.ts'
import { SimulatedClock, realClock, type Clock } from './clock.ts'
import { MemoryNetwork, type MemoryTransport } from './memory-transport.ts'
import type { SystemEvent } from './types.ts'

export interface TestNode {
  system: ActorSystem
  key: NodeKey
  transport: MemoryTransport
  /** Every system event seen so far, in order. */
  events: SystemEvent[]
}

export interface TestKitOptions {
  /** Use a SimulatedClock shared by every node (default true). */
  simulatedClock?: boolean
  /** Memory transports that claim authenticated peers (core/memory-transport.ts); default false. */
  authenticatesPeers?: boolean
}

export class TestKit {
  readonly network = new MemoryNetwork()
  readonly clock: Clock
  readonly #nodes: TestNode[] = []
  readonly #authenticatesPeers: boolean

  constructor(options: TestKitOptions = {}) {
    this.clock = options.simulatedClock === false ? realClock : new SimulatedClock()
    this.#authenticatesPeers = options.authenticatesPeers === true
  }

  /** Starts an ActorSystem with its own key on the kit's network and clock. */
  async node(init: Partial<ActorSystemInit> = {}): Promise<TestNode> {
    const key = init.key ?? NodeKey.generate()
    const transport = this.network.transport(key.did, { authenticatesPeers: this.#authenticatesPeers })
    const system = new ActorSystem({ clock: this.clock, ...init, key, transport })
    const events: SystemEvent[] = []
    system.subscribe((e) => events.push(e))
    await system.start()
    const node = { system, key, transport, events }
    this.#nodes.push(node)
    return node
  }

  /** Moves the simulated clock (throws with a real clock). */
  advance(ms: number): void {
    if (!(this.clock instanceof SimulatedClock)) throw new Error('advance() needs the simulated clock')
    this.clock.advance(ms)
  }

  /** Lets queued work run: microtasks and `turns` event-loop turns (the memory network delivers on later turns). */
  async settle(turns = 5): Promise<void> {
    for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve))
  }

  /** A capability token from `issuer` to `audience` for the abilities, valid at the kit's clock time. */
  async grant(issuer: NodeKey, audience: string, abilities: (string | Ability)[], ttlMs = 3_600_000): Promise<string> {
    return await issueCapability(issuer, {
      audience,
      abilities: abilities.map((a) => (typeof a === 'string' ? { can: a } : a)),
      ttlMs,
      now: this.clock.now(),
    })
  }

  /** Stops every node the kit started (for t.teardown). */
  async stop(): Promise<void> {
    for (const n of this.#nodes.splice(0).reverse()) await n.system.stop()
  }
}
