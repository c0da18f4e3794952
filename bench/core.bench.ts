// The actor kernel's local numbers, each beside a raw XState baseline measured in this run:
// tell throughput vs actor.send (for a state machine, and for `fromTransition` logic), ask round trip p50/p99,
// spawn rate, memory of 100,000 idle actors.
// Remote-path numbers belong to the p2p bench.
import { assign, createActor, fromTransition, setup, type AnyActorLogic } from 'xstate'
import { NodeKey } from '../identity/index.ts'
import { ActorSystem, defineActor, type ActorDefinition } from '../core/index.ts'
import { percentile, printSection } from './report.ts'

const machine = setup({
  types: { context: {} as { n: number }, events: {} as { type: 'inc'; by: number } },
}).createMachine({
  id: 'bench',
  context: { n: 0 },
  on: { inc: { actions: assign({ n: ({ context, event }) => context.n + event.by }) } },
})

const def = defineActor(machine).with({
  name: 'bench/counter',
  mailboxCapacity: 1_000_000,
  behaviors: {
    '/b/inc': { public: true, event: (by: number) => ({ type: 'inc', by }) },
    '/b/get': { public: true, reply: (s) => s.context.n },
    '/b/add': { public: true, event: (by: number) => ({ type: 'inc', by }), reply: (s) => s.context.n },
  },
})

/** The same counter as transition logic: the kernel's own cost shows when the logic's is small. */
const reducer = fromTransition((state: { n: number }, event: { type: 'inc'; by: number }) => ({ n: state.n + event.by }), { n: 0 })

const reducerDef = defineActor(reducer).with({
  name: 'bench/counter-reducer',
  mailboxCapacity: 1_000_000,
  behaviors: {
    '/b/inc': { public: true, event: (by: number) => ({ type: 'inc' as const, by }) },
    '/b/get': { public: true, reply: (s) => s.context.n },
  },
})

const gc = (globalThis as { gc?: () => void }).gc
const heapMiB = (): number => {
  gc?.()
  gc?.()
  return process.memoryUsage().heapUsed / 2 ** 20
}
const now = (): number => Number(process.hrtime.bigint()) / 1e6

async function rawSendRate(n: number, logic: AnyActorLogic = machine): Promise<number> {
  const actor = createActor(logic).start()
  const ev = { type: 'inc' as const, by: 1 }
  const t0 = now()
  for (let i = 0; i < n; i++) actor.send(ev)
  const ms = now() - t0
  if (actor.getSnapshot().context.n !== n) throw new Error('raw count mismatch')
  actor.stop()
  return (n / ms) * 1000
}

async function tellRate(system: ActorSystem, n: number, round: number, definition: ActorDefinition = def): Promise<number> {
  const ref = system.spawn(definition, { name: `tell-${definition.name.replace(/\//g, '.')}-${round}` })
  const t0 = now()
  for (let i = 0; i < n; i++) ref.tell('/b/inc', 1)
  const count = await ref.ask<number>('/b/get')
  const ms = now() - t0
  if (count !== n) throw new Error(`tell count mismatch ${count}`)
  await system.stopActor(ref)
  return (n / ms) * 1000
}

const median = (xs: number[]): number => percentile(xs, 50)

const system = new ActorSystem({ key: NodeKey.generate() })
const N = 200_000
const rounds = 5
const raw: number[] = []
const ours: number[] = []
const rawReducer: number[] = []
const oursReducer: number[] = []
for (let r = 0; r < rounds; r++) {
  raw.push(await rawSendRate(N))
  ours.push(await tellRate(system, N, r))
  rawReducer.push(await rawSendRate(N, reducer))
  oursReducer.push(await tellRate(system, N, r, reducerDef))
}

// ask round trip, sequential
const target = system.spawn(def, { name: 'ask' })
const rawActor = createActor(machine).start()
const askSamples: number[] = []
const rawSamples: number[] = []
for (let i = 0; i < 2000; i++) await target.ask('/b/add', 1) // warm-up
for (let i = 0; i < 20_000; i++) {
  const t0 = process.hrtime.bigint()
  await target.ask('/b/add', 1)
  askSamples.push(Number(process.hrtime.bigint() - t0) / 1000)
  const t1 = process.hrtime.bigint()
  rawActor.send({ type: 'inc', by: 1 })
  await Promise.resolve(rawActor.getSnapshot().context.n)
  rawSamples.push(Number(process.hrtime.bigint() - t1) / 1000)
}

// spawn rate
const SPAWN = 20_000
let t0 = now()
const rawActors = []
for (let i = 0; i < SPAWN; i++) rawActors.push(createActor(machine).start())
const rawSpawn = (SPAWN / (now() - t0)) * 1000
for (const a of rawActors) a.stop()
rawActors.length = 0
const spawnSys = new ActorSystem({ key: NodeKey.generate() })
t0 = now()
for (let i = 0; i < SPAWN; i++) spawnSys.spawn(def, { name: `s${i}` })
const ourSpawn = (SPAWN / (now() - t0)) * 1000
await spawnSys.stop()

// memory of 100,000 idle actors
const IDLE = 100_000
let base = heapMiB()
const idleRaw = []
for (let i = 0; i < IDLE; i++) idleRaw.push(createActor(machine).start())
const rawMiB = heapMiB() - base
for (const a of idleRaw) a.stop()
idleRaw.length = 0
base = heapMiB()
const memSys = new ActorSystem({ key: NodeKey.generate() })
for (let i = 0; i < IDLE; i++) memSys.spawn(def, { name: `idle${i}` })
const ourMiB = heapMiB() - base
const rssMiB = process.memoryUsage().rss / 2 ** 20
if (memSys.actors().length !== IDLE) throw new Error('idle actors missing')
await memSys.stop()
await system.stop()

printSection('core: local actors (median of 5 rounds of 200k messages)', [
  { name: 'tell throughput (enqueue + handle)', value: median(ours), unit: 'msg/s', baseline: { name: 'raw actor.send', value: median(raw) }, better: 'higher', target: '>= 0.7 of raw' },
  { name: 'tell throughput, fromTransition logic', value: median(oursReducer), unit: 'msg/s', baseline: { name: 'raw actor.send, same logic', value: median(rawReducer) }, better: 'higher' },
  { name: 'ask round trip p50 (event + reply)', value: percentile(askSamples, 50), unit: 'µs', baseline: { name: 'raw send + await', value: percentile(rawSamples, 50) }, better: 'lower' },
  { name: 'ask round trip p99 (event + reply)', value: percentile(askSamples, 99), unit: 'µs', baseline: { name: 'raw send + await', value: percentile(rawSamples, 99) }, better: 'lower' },
  { name: 'spawn rate', value: ourSpawn, unit: 'actors/s', baseline: { name: 'raw createActor().start()', value: rawSpawn }, better: 'higher' },
  { name: 'heap of 100,000 idle actors', value: ourMiB, unit: 'MiB', baseline: { name: 'raw XState actors', value: rawMiB }, better: 'lower', target: '< 1024 MiB' },
  { name: 'process RSS with them', value: rssMiB, unit: 'MiB', better: 'lower' },
])
