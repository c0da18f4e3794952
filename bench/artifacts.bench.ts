// Artifacts, measured in one run (each figure beside a baseline measured here, now):
// - a fetch over /noir/artifact/1.0.0 (into a store on disk, hashed, checked) from a node in another process
//   vs a raw libp2p stream of the same bytes on the same connection (alternating rounds, medians);
// - the same fetch between two real daemons (`POST /v1/artifacts/fetch`) vs a raw libp2p stream of the same
//   bytes between two bare processes whose mesh and V8 heap setting are a daemon's (bench/artifact-peer.ts;
//   alternating rounds, medians);
// - an image shipped as an artifact (docker save into the consumer's store, fetched by the worker daemon,
//   docker load there) vs `docker save | docker load` of the same image on one host.
// Every process here runs with the daemon's V8 heap setting (appliance/daemon/heap-limits.ts).
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { randomBytes } from 'node:crypto'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { ArtifactStore } from '../artifacts/store.ts'
import { fetchArtifact } from '../artifacts/protocol.ts'
import { imageIdOfArchive } from '../artifacts/oci.ts'
import { loadImageArchive, saveImage, saveImageStream } from '../appliance/executor/docker/image-archive.ts'
import { DaemonCluster } from '../scripts/testing/daemons.ts'
import { printSection, type Figure } from './report.ts'
import { daemonLikeMesh, readRaw } from './artifact-peer.ts'
import { countBuffersInHeapLimit } from '../appliance/daemon/heap-limits.ts'

countBuffersInHeapLimit()

const here = dirname(fileURLToPath(import.meta.url))
const SIZE = 64 * 1024 * 1024
const ROUNDS = 5
const MiB = 1024 * 1024
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const mibs = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000)
const work = mkdtempSync(join(tmpdir(), 'noir-artifacts-bench-'))

async function rawOnce(host: Libp2p, peer: Libp2p['peerId']): Promise<number> {
  const t0 = performance.now()
  const n = await readRaw(host, peer)
  if (n !== SIZE) throw new Error(`raw stream: ${n} of ${SIZE} bytes`)
  return performance.now() - t0
}

const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100
/** CPU time (user + system, all threads, ms) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuMs(pid: number): number {
  const stat = `/proc/${pid}/stat`
  if (!existsSync(stat)) return Number.NaN
  const f = readFileSync(stat, 'utf8').split(') ')[1]!.split(' ')
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS
}
/** A process's peak resident memory (MiB), from /proc (Linux); NaN elsewhere. */
function peakRssMiB(pid: number): number {
  const status = `/proc/${pid}/status`
  if (!existsSync(status)) return Number.NaN
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(status, 'utf8'))?.[1] ?? Number.NaN) / 1024
}
/** Runs `fn` and measures the CPU each of `pids` used meanwhile: [ms of wall time, the busier one's CPU ms, each one's]. */
async function timed(pids: number[], fn: () => Promise<void>): Promise<{ ms: number; busiest: number; each: number[] }> {
  const c0 = pids.map(cpuMs)
  const t0 = performance.now()
  await fn()
  const ms = performance.now() - t0
  const each = pids.map((p, i) => cpuMs(p) - c0[i]!)
  return { ms, busiest: Math.max(...each), each }
}

/** A bare process of its own (bench/artifact-peer.ts): its first line, then one line per `ask`. */
function peerProcess(args: string[]): { pid: number; first: Promise<unknown>; ask: (line: unknown) => Promise<unknown>; end: () => void } {
  const p = spawn(process.execPath, [join(here, 'artifact-peer.ts'), ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: p.stdout! })
  const waiting: Array<(v: unknown) => void> = []
  lines.on('line', (l) => waiting.shift()?.(JSON.parse(l)))
  const next = (): Promise<unknown> => new Promise((resolve) => waiting.push(resolve))
  return {
    pid: p.pid!,
    first: next(),
    ask: (line) => {
      const r = next()
      p.stdin!.write(JSON.stringify(line) + '\n')
      return r
    },
    end: () => p.stdin!.end(),
  }
}

// 1. protocol vs raw, to a node in another process
const holder = peerProcess(['holder', String(SIZE), String(ROUNDS * 2 + 2)])
const ready = (await holder.first) as { multiaddrs: string[]; digests: string[] }
const mesh = await daemonLikeMesh()
const host = mesh.host as unknown as Libp2p
const conn = await host.dial(multiaddr(ready.multiaddrs[0]!))
const peer = conn.remotePeer
const raw: number[] = []
const ours: number[] = []
const inline: number[] = []
await rawOnce(host, peer) // warm-up (yamux windows grow per stream; the connection's Noise is set up)
const fetchOnce = async (digest: string, dir: string, hashOffThreadFrom?: number): Promise<number> => {
  const store = new ArtifactStore({ dir: join(work, dir), ...(hashOffThreadFrom !== undefined ? { hashOffThreadFrom } : {}) })
  const t0 = performance.now()
  await fetchArtifact(host, peer, digest, store)
  return performance.now() - t0
}
// and one fetch of each kind not counted either (the code paths of both sides warm up)
await fetchOnce(ready.digests[ROUNDS * 2]!, 'warm-off-thread', 8 * MiB)
await fetchOnce(ready.digests[ROUNDS * 2 + 1]!, 'warm-inline')
for (let i = 0; i < ROUNDS; i++) {
  raw.push(await rawOnce(host, peer))
  ours.push(await fetchOnce(ready.digests[i]!, `fetch-${i}`, 8 * MiB))
  inline.push(await fetchOnce(ready.digests[ROUNDS + i]!, `inline-${i}`))
}
const protocolFigure: Figure = {
  name: `fetch ${SIZE / MiB} MiB (hashed off-thread, option)`, value: mibs(SIZE, median(ours)), unit: 'MiB/s',
  baseline: { name: 'raw libp2p stream', value: mibs(SIZE, median(raw)) }, better: 'higher', target: '>= 0.7',
}
const inlineFigure: Figure = {
  name: `fetch ${SIZE / MiB} MiB (hashed inline, default)`, value: mibs(SIZE, median(inline)), unit: 'MiB/s',
  baseline: { name: 'raw libp2p stream', value: mibs(SIZE, median(raw)) }, better: 'higher', target: '>= 0.7',
}

// 2. between two daemons; the baseline between two bare processes (the holder above and a fetcher)
const fetcher = peerProcess(['fetcher'])
await fetcher.first
const rawBetweenPeers = async (): Promise<{ ms: number; busiest: number; each: number[] }> => {
  let inside = 0
  const r = await timed([holder.pid, fetcher.pid], async () => {
    const answer = (await fetcher.ask({ from: ready.multiaddrs[0], bytes: SIZE })) as { ms?: number; error?: string }
    if (answer.ms === undefined) throw new Error(`raw stream between the bare processes: ${answer.error}`)
    inside = answer.ms
  })
  return { ...r, ms: inside } // timed in the fetcher: the stream only, not the pipe to it
}
const cluster = new DaemonCluster()
const images: string[] = []
const figures: Figure[] = [inlineFigure, protocolFigure]
let daemonRounds = ''
try {
  const a = await cluster.start({ config: { share: 'cpu=1,memory=1GiB,disk=4GiB,gpu=0' } as never })
  const b = await cluster.start({ bootstrap: a.multiaddrs, config: { share: 'cpu=1,memory=1GiB,disk=4GiB,gpu=0' } as never })
  const storeA = new ArtifactStore({ dir: join(a.home, 'artifacts') })
  const daemonRuns: Array<{ ms: number; busiest: number; each: number[] }> = []
  const rawRuns: Array<{ ms: number; busiest: number; each: number[] }> = []
  const daemonOnce = async (): Promise<{ ms: number; busiest: number; each: number[] }> => {
    const d = await storeA.putBytes(randomBytes(SIZE))
    return await timed([a.pid, b.pid], async () => {
      await b.api.post('/v1/artifacts/fetch', { digest: d, from: [a.did] })
    })
  }
  // one round each not counted: the connection (and yamux's window) and the code paths of both pairs warm up
  await rawBetweenPeers()
  await daemonOnce()
  for (let i = 0; i < ROUNDS; i++) {
    rawRuns.push(await rawBetweenPeers())
    daemonRuns.push(await daemonOnce())
  }
  figures.push({
    name: `daemon -> daemon fetch ${SIZE / MiB} MiB`, value: mibs(SIZE, median(daemonRuns.map((r) => r.ms))), unit: 'MiB/s',
    baseline: { name: 'raw stream, bare processes', value: mibs(SIZE, median(rawRuns.map((r) => r.ms))) }, better: 'higher', target: '>= 0.7',
  })
  // what a loaded machine blurs least: the CPU the busier side spent on the 64 MiB (holder or fetcher, every thread)
  if (daemonRuns.every((r) => Number.isFinite(r.busiest))) {
    figures.push({
      name: `  the same, CPU of the busier side`, value: median(daemonRuns.map((r) => r.busiest)), unit: 'ms',
      baseline: { name: 'raw stream, bare processes', value: median(rawRuns.map((r) => r.busiest)) }, better: 'lower',
    })
  }
  const show = (rs: Array<{ ms: number; each: number[] }>): string => rs.map((r) => `${Math.round(r.ms)} (cpu ${r.each.map(Math.round).join('/')})`).join(', ')
  daemonRounds = `raw ${show(rawRuns)}; daemons ${show(daemonRuns)} (cpu holder/fetcher); peak RSS MiB: daemons ${Math.round(peakRssMiB(a.pid))}/${Math.round(peakRssMiB(b.pid))}, bare ${Math.round(peakRssMiB(holder.pid))}/${Math.round(peakRssMiB(fetcher.pid))}`

  // 3. an image: a throwaway one with a 48 MiB layer
  const tag = `noir-bench/artifact-${randomBytes(4).toString('hex')}:latest`
  const ctx = join(work, 'image')
  spawnSync('mkdir', ['-p', ctx])
  spawnSync('sh', ['-c', `printf 'FROM noir/busybox:latest\\nRUN head -c 50331648 /dev/urandom > /blob\\n' > ${ctx}/Dockerfile`])
  const built = spawnSync('docker', ['build', '-q', '-t', tag, '--label', 'noir.bench=artifacts', ctx], { encoding: 'utf8' })
  if (built.status !== 0) throw new Error(`docker build: ${built.stderr}`)
  const id = built.stdout.trim()
  images.push(id)
  // baseline: docker save | docker load on this host (the image removed in between, as on a node without it)
  const base0 = performance.now()
  const file = join(work, 'base.tar')
  await saveImage(id, file)
  spawnSync('docker', ['rmi', '-f', tag, id])
  await loadImageArchive(file, id)
  const baseMs = performance.now() - base0
  spawnSync('docker', ['tag', id, tag])
  // ours: save into the consumer's store, fetch by the worker daemon, load there
  const ours0 = performance.now()
  // as noir deploy does it: docker save streamed into the consumer's store, hashed once
  const { digest } = await storeA.putStream(await saveImageStream(tag) as AsyncIterable<Uint8Array>)
  if ((await imageIdOfArchive(await storeA.verifiedPath(digest))) !== id) throw new Error('the archive holds another image')
  spawnSync('docker', ['rmi', '-f', tag, id])
  await b.api.post('/v1/artifacts/fetch', { digest, from: [a.did] })
  // as the worker's runtime does: the fetch hashed the bytes on the way in, then docker load
  await loadImageArchive(join(b.home, 'artifacts', 'blobs', digest.slice(7)), id)
  const oursMs = performance.now() - ours0
  figures.push({ name: 'image (48 MiB layer) shipped as an artifact', value: oursMs, unit: 'ms', baseline: { name: 'docker save | docker load', value: baseMs }, better: 'lower' })
} finally {
  for (const i of images) spawnSync('docker', ['rmi', '-f', i])
  await cluster.cleanup()
  holder.end()
  fetcher.end()
  await mesh.stop()
  rmSync(work, { recursive: true, force: true })
}
printSection('artifacts', figures)
console.log(`  rounds (ms): raw ${raw.map(Math.round).join(', ')}; off-thread ${ours.map(Math.round).join(', ')}; inline ${inline.map(Math.round).join(', ')}`)
console.log(`  daemon rounds (ms): ${daemonRounds}`)
process.exit(0)
