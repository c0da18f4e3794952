// The mesh, measured in one run (each figure beside a baseline measured here, now):
// - remote signed ask round trip vs a raw libp2p stream echo (same layout, alternating rounds): both nodes
//   in this process (default and strictest settings), and to a node in another process (as two daemons);
// - remote signed tell throughput to another process (median of 3 runs) vs one core's node:crypto Ed25519
//   verify rate, to a fromTransition actor (the runtime's own rate) and to a state-machine actor; and what two
//   threads verifying at once add (these 2-vCPU VMs share a second core unevenly);
// - daemon start time vs a bare `node` start; RSS of an idle daemon vs an idle bare `node`.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { NodeKey } from '../identity/keys.ts'
import { ActorSystem, signedRemote, type RemoteEndpointOptions } from '../core/index.ts'
import { Mesh } from '../p2p/mesh.ts'
import { DaemonCluster } from '../scripts/testing/daemons.ts'
import { percentile, printSection, type Figure } from './report.ts'
import { verifyRate, verifyRateOnThreads } from './verify-rate.ts'
import { RAW_ECHO_PROTOCOL, serveRawEcho, sinkDefinition } from './p2p-peer.ts'
import { peerIdFromDid } from '../identity/did-key.ts'
import type { Stream } from '@libp2p/interface'

const here = dirname(fileURLToPath(import.meta.url))
const meshOpts = { mdns: false, natTraversal: false, pingIntervalMs: 0 }
const body100 = 'x'.repeat(100)

async function pair(): Promise<{ a: Mesh; b: Mesh; stop: () => Promise<void> }> {
  const a = await Mesh.create({ key: NodeKey.generate(), ...meshOpts })
  await a.start()
  const b = await Mesh.create({ key: NodeKey.generate(), ...meshOpts, bootstrap: a.multiaddrs() })
  await b.start()
  return { a, b, stop: async () => { await b.stop(); await a.stop() } }
}

/** Sequential round trips of one kind (µs each); `n` more each call, on connections kept open. */
type RoundTrips = { run: (n: number) => Promise<number[]>; stop: () => Promise<void> }

/** Sequential 100-byte round trips on a raw libp2p stream to an echo handler. */
function echoRoundTrips(stream: Stream): (n: number) => Promise<number[]> {
  const it = stream[Symbol.asyncIterator]()
  const msg = new TextEncoder().encode(body100)
  return async (n) => {
    const samples: number[] = []
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint()
      stream.send(msg)
      let got = 0
      while (got < msg.byteLength) {
        const r = await it.next()
        if (r.done) throw new Error('echo stream ended')
        got += r.value.byteLength
      }
      samples.push(Number(process.hrtime.bigint() - t0) / 1000)
    }
    return samples
  }
}

/** Sequential asks (µs each) of the peer's sink actor, 100-byte body echoed back. */
function askRoundTrips(system: ActorSystem, to: string): (n: number) => Promise<number[]> {
  return async (n) => {
    const samples: number[] = []
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint()
      await system.ask(to, '/bench/echo', body100)
      samples.push(Number(process.hrtime.bigint() - t0) / 1000)
    }
    return samples
  }
}

/** Raw libp2p: one stream, 100-byte echo, both nodes in this process. */
async function rawEcho(): Promise<RoundTrips> {
  const { a, b, stop } = await pair()
  await serveRawEcho(a)
  const stream = await b.host.dialProtocol(a.host.peerId, RAW_ECHO_PROTOCOL)
  return { run: echoRoundTrips(stream), stop: async () => { await stream.close(); await stop() } }
}

/** Signed asks between two actor systems over libp2p, 100-byte body echoed by the actor. */
async function signedAsks(options: RemoteEndpointOptions): Promise<RoundTrips> {
  const ka = NodeKey.generate()
  const kb = NodeKey.generate()
  const a = await Mesh.create({ key: ka, ...meshOpts })
  await a.start()
  const b = await Mesh.create({ key: kb, ...meshOpts, bootstrap: a.multiaddrs() })
  await b.start()
  const remote = signedRemote(options)
  const sysA = new ActorSystem({ key: ka, transport: a.transport, remote })
  const sysB = new ActorSystem({ key: kb, transport: b.transport, remote })
  await sysA.start()
  await sysB.start()
  sysA.spawn(sinkDefinition(), { name: 'sink' })
  const run = askRoundTrips(sysB, `${ka.did}/sink`)
  return { run, stop: async () => { await sysB.stop(); await sysA.stop(); await b.stop(); await a.stop() } }
}

/**
 * Round trips of each kind, measured in alternating rounds (after a warm-up) so that the machine's drift
 * (these VMs change speed within minutes) falls on the baseline and ours alike.
 */
async function interleaved(kinds: RoundTrips[], rounds: number, perRound: number): Promise<number[][]> {
  const samples = kinds.map(() => [] as number[])
  for (const k of kinds) await k.run(300)
  for (let r = 0; r < rounds; r++) for (let k = 0; k < kinds.length; k++) samples[k]!.push(...(await kinds[k]!.run(perRound)))
  return samples
}

/**
 * Signed tells to a sink actor (`actor`: `sink` or `tally` of bench/p2p-peer.ts) in another process:
 * messages/s, end to end (handled by the actor), in steady state: `warmup` tells first (code compiled, caches
 * and buffers grown), then `rounds` timed runs of `total` each on the same connection (these VMs change speed
 * within seconds: one run can fall in a slow spell).
 */
async function tellThroughput(actor: 'sink' | 'tally', warmup: number, total: number, rounds: number): Promise<number[]> {
  const { peer, sys, stop } = await withPeerProcess()
  const to = `${peer.did}/${actor}`
  const window = 20_000
  const send = async (n: number): Promise<void> => {
    let sent = 0
    let previous: Promise<unknown> | undefined
    while (sent < n) {
      const burst = Math.min(window, n - sent)
      for (let i = 0; i < burst; i++) {
        sys.tell(to, '/bench/hit', i)
        if (i % 1000 === 999) await new Promise((r) => setImmediate(r))
      }
      sent += burst
      // flow control by credit: at most two windows in flight. The count answer to a window comes after every
      // earlier tell was handled; waiting for the previous window's (not this one's) keeps the receiver busy
      // while the sender fills the next window, as a streaming sender would, instead of draining the pipe
      // every window (which left each side idle in turn, ~10% of the run)
      const counted = sys.ask(to, '/bench/count', null)
      if (previous !== undefined) await previous
      previous = counted
    }
    await previous
  }
  await send(warmup)
  const rates: number[] = []
  let expected = warmup
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint()
    await send(total)
    const hits = await sys.ask<number>(to, '/bench/count', null)
    const secs = Number(process.hrtime.bigint() - t0) / 1e9
    expected += total
    if (hits !== expected) console.log(`  (sink counted ${hits} of ${expected})`)
    rates.push(total / secs)
  }
  await stop()
  return rates
}

/** A node in this process (default remote options) connected to bench/p2p-peer.ts run as another process. */
async function withPeerProcess(): Promise<{ peer: { did: string; multiaddrs: string[] }; mesh: Mesh; sys: ActorSystem; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [join(here, 'p2p-peer.ts')], { stdio: ['pipe', 'pipe', 'inherit'] })
  const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve))
  const peer = JSON.parse(first) as { did: string; multiaddrs: string[] }
  const key = NodeKey.generate()
  const mesh = await Mesh.create({ key, ...meshOpts, bootstrap: peer.multiaddrs })
  await mesh.start()
  const sys = new ActorSystem({ key, transport: mesh.transport, askTimeoutMs: 60_000 })
  await sys.start()
  await sys.ask(`${peer.did}/sink`, '/bench/count', null) // connection and stream up
  const stop = async (): Promise<void> => {
    await sys.stop()
    await mesh.stop()
    child.stdin!.end()
    await new Promise((r) => child.once('exit', r))
  }
  return { peer, mesh, sys, stop }
}

/** Raw echo and signed asks to a node in another process (as two daemons are), in alternating rounds. */
async function crossProcessRoundTrips(): Promise<[number[], number[]]> {
  const { peer, mesh, sys, stop } = await withPeerProcess()
  const stream = await mesh.host.dialProtocol(peerIdFromDid(peer.did), RAW_ECHO_PROTOCOL)
  const raw: RoundTrips = { run: echoRoundTrips(stream), stop: async () => { await stream.close() } }
  const asks: RoundTrips = { run: askRoundTrips(sys, `${peer.did}/sink`), stop: async () => {} }
  const samples = (await interleaved([raw, asks], 20, 250)) as [number[], number[]]
  await raw.stop()
  await stop()
  return samples
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

async function bareNode(): Promise<{ startMs: number; rss: number }> {
  const t0 = performance.now()
  const p = spawn(process.execPath, ['-e', 'console.log("up"); setTimeout(() => {}, 60000)'], { stdio: ['ignore', 'pipe', 'ignore'] })
  await new Promise<void>((resolve) => p.stdout!.once('data', () => resolve()))
  const startMs = performance.now() - t0
  await new Promise((r) => setTimeout(r, 1500))
  const rss = rssMiB(p.pid!)
  p.kill('SIGKILL')
  return { startMs, rss }
}

async function daemonStartAndRss(): Promise<{ startMs: number; bootMs: number; rss: number }> {
  const cluster = new DaemonCluster()
  try {
    const { home } = await cluster.makeHome()
    const t0 = performance.now()
    const d = await cluster.start({ home })
    const startMs = performance.now() - t0
    await new Promise((r) => setTimeout(r, 1500))
    // the 'ready' line is written just after api.json (which ends `start`): read it once it has arrived
    const bootMs = Number(d.logLines().find((l) => l.msg === 'ready')?.startMs ?? NaN)
    return { startMs, bootMs, rss: rssMiB(d.pid) }
  } finally {
    await cluster.cleanup()
  }
}

// Two phases, each against the raw echo measured in the same rounds: the default, then the strictest setting
// (whose garbage would otherwise land in the default's rounds as collection pauses).
const echo = await rawEcho()
const sealed = await signedAsks({})
const [raw, ask] = (await interleaved([echo, sealed], 20, 250)) as [number[], number[]]
await sealed.stop()
const strict = await signedAsks({ sealedStreams: false, signatureCheck: 'inline' })
const [raw2, askInline] = (await interleaved([echo, strict], 4, 250)) as [number[], number[]]
await strict.stop()
await echo.stop()
const rawP50 = percentile(raw, 50)
const rawP99 = percentile(raw, 99)
printSection('remote ask round trip (100-byte body, one node pair per kind, sequential; 20 alternating rounds of 250 with the raw echo, so p99 is the 50th slowest of 5,000)', [
  { name: 'signed ask p50 (default: sealed stream, concurrent checks)', value: percentile(ask, 50), unit: 'µs', better: 'lower', baseline: { name: 'raw libp2p echo p50', value: rawP50 }, target: '>= 0.5 (at most 2x raw)' },
  { name: 'signed ask p99 (default)', value: percentile(ask, 99), unit: 'µs', better: 'lower', baseline: { name: 'raw libp2p echo p99', value: rawP99 }, target: '>= 0.5 (at most 2x raw)' },
  { name: 'signed ask p50, self-signed envelopes, inline checks', value: percentile(askInline, 50), unit: 'µs', better: 'lower', baseline: { name: 'raw libp2p echo p50 (its rounds)', value: percentile(raw2, 50) } },
])

const [xRaw, xAsk] = await crossProcessRoundTrips()
printSection('remote ask round trip to a node in another process (as between two daemons; 20 alternating rounds of 250)', [
  { name: 'signed ask p50 (default)', value: percentile(xAsk, 50), unit: 'µs', better: 'lower', baseline: { name: 'raw libp2p echo p50', value: percentile(xRaw, 50) }, target: '>= 0.5 (at most 2x raw)' },
  { name: 'signed ask p99 (default)', value: percentile(xAsk, 99), unit: 'µs', better: 'lower', baseline: { name: 'raw libp2p echo p99', value: percentile(xRaw, 99) }, target: '>= 0.5 (at most 2x raw)' },
])

const verifiesBefore = verifyRate()
const tallyRates = await tellThroughput('tally', 50_000, 300_000, 3)
const sinkRates = await tellThroughput('sink', 50_000, 300_000, 3)
const verifies = (verifiesBefore + verifyRate()) / 2
const verifies2 = await verifyRateOnThreads(2)
const fmtRate = (n: number): string => Math.round(n).toLocaleString('en-US')
printSection(`remote signed tell throughput (to an actor in another process; 3 runs of 300,000 after 50,000 to warm up: median; runs: fromTransition ${tallyRates.map(fmtRate).join(', ')}; state machine ${sinkRates.map(fmtRate).join(', ')})`, [
  { name: 'signed tells handled/s, fromTransition actor', value: percentile(tallyRates, 50), unit: 'msg/s', better: 'higher', baseline: { name: 'node:crypto Ed25519 verify, 1 core (before and after)', value: verifies }, target: 'goal 100,000 msg/s, 6.7x the ~15,000/s verify rate it was set against' },
  { name: 'slowest of its 3 runs', value: Math.min(...tallyRates), unit: 'msg/s', better: 'higher', baseline: { name: 'the same verify rate', value: verifies } },
  { name: 'signed tells handled/s, state-machine actor', value: percentile(sinkRates, 50), unit: 'msg/s', better: 'higher', baseline: { name: 'the same verify rate', value: verifies } },
  // Recorded, not measured in this run: the figures on this machine before nothing could reach a
  // state-changing behavior before its seal was checked (issue 24 asks the tell rate to stay within 10%).
  { name: 'fromTransition tells/s against the recorded rate', value: percentile(tallyRates, 50), unit: 'msg/s', better: 'higher', baseline: { name: 'recorded before the signature gate (2026-12-04)', value: 164_723 }, target: '>= 0.9' },
  { name: 'state-machine tells/s against the recorded rate', value: percentile(sinkRates, 50), unit: 'msg/s', better: 'higher', baseline: { name: 'recorded before the signature gate (2026-12-04)', value: 134_654 }, target: '>= 0.9' },
  { name: 'Ed25519 verify on 2 threads at once', value: verifies2, unit: 'verify/s', better: 'higher', baseline: { name: '1 core', value: verifies } },
])

const bare = await bareNode()
const daemon = await daemonStartAndRss()
const figures: Figure[] = [
  { name: 'daemon start (spawn -> api.json)', value: daemon.startMs, unit: 'ms', better: 'lower', baseline: { name: 'bare node start', value: bare.startMs } },
  { name: 'daemon boot inside the process', value: daemon.bootMs, unit: 'ms', better: 'lower' },
  { name: 'idle daemon RSS', value: daemon.rss, unit: 'MiB', better: 'lower', baseline: { name: 'idle bare node RSS', value: bare.rss } },
]
printSection('daemon', figures)
process.exit(0)
