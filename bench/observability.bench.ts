// The cost of metrics and tracing on the signed tell path, measured in one run: two nodes in this process over
// real libp2p (Noise, yamux, signed envelopes, sealed streams), a sender telling a fromTransition actor on the
// other node, in three set-ups measured in alternating rounds so the machine's drift falls on each alike:
// - off: plain actor systems (the baseline);
// - on: both nodes with what a daemon with `metrics` and `tracing` configured runs (counting transport, the
//   kernel's ask observer, the node's registry scraped, a tracer whose spans are exported), tells made outside
//   any trace (the usual case: a trace follows a request, not every message);
// - on, every tell traced: each window of tells sent inside a sampled span, so every envelope carries a
//   traceparent and every handling is a span (exported to a counting exporter): the worst case.
// Goal (issue 20): on / off >= 0.95.
import { ExportResultCode } from '@opentelemetry/core'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace'
import { NodeKey } from '../identity/keys.ts'
import { ActorSystem, type ActorSystemInit } from '../core/index.ts'
import type { Transport } from '../core/transport.ts'
import { Mesh } from '../p2p/mesh.ts'
import { NodeMetrics } from '../appliance/observability/node-metrics.ts'
import { NodeTracing } from '../appliance/observability/tracing.ts'
import { countingTransport } from '../appliance/observability/counting-transport.ts'
import { tallyDefinition } from './p2p-peer.ts'
import { percentile, printSection } from './report.ts'

const meshOpts = { mdns: false, natTraversal: false, pingIntervalMs: 0 }

/** Counts exported spans and drops them (an OTLP endpoint's cost is the collector's, not the node's). */
class CountingExporter implements SpanExporter {
  spans = 0
  export(spans: ReadableSpan[], done: (r: { code: ExportResultCode }) => void): void {
    this.spans += spans.length
    done({ code: ExportResultCode.SUCCESS })
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

interface Pair {
  send(n: number): Promise<void>
  tracing: NodeTracing | undefined
  metrics: NodeMetrics[]
  exporter: CountingExporter | undefined
  stop(): Promise<void>
}

async function node(observed: { exporter: CountingExporter } | undefined, bootstrap?: string[]): Promise<{ key: NodeKey; mesh: Mesh; sys: ActorSystem; metrics?: NodeMetrics; tracing?: NodeTracing }> {
  const key = NodeKey.generate()
  const mesh = await Mesh.create({ key, ...meshOpts, ...(bootstrap ? { bootstrap } : {}) })
  await mesh.start()
  const init: ActorSystemInit = { key, transport: mesh.transport, askTimeoutMs: 60_000 }
  if (!observed) {
    const sys = new ActorSystem(init)
    await sys.start()
    return { key, mesh, sys }
  }
  const metrics = new NodeMetrics(key.did)
  const tracing = new NodeTracing(key.did, { sampleRatio: 1, batchSize: 512, flushMs: 1000 }, { exporter: observed.exporter })
  const counted = countingTransport(mesh.transport as Transport)
  metrics.bindTransport(counted.counts)
  const sys = new ActorSystem({ ...init, transport: counted.transport, observer: metrics.observer, tracer: tracing.messages })
  metrics.bindSystem(sys)
  await sys.start()
  return { key, mesh, sys, metrics, tracing }
}

async function pair(observed: boolean): Promise<Pair> {
  const exporter = observed ? new CountingExporter() : undefined
  const b = await node(exporter ? { exporter } : undefined)
  const a = await node(exporter ? { exporter } : undefined, b.mesh.multiaddrs())
  b.sys.spawn(tallyDefinition(), { name: 'tally' })
  const to = `${b.key.did}/tally`
  await a.sys.ask(to, '/bench/count', null)
  const window = 20_000
  // flow control by credit as bench/p2p.bench.ts does: at most two windows in flight
  const send = async (n: number): Promise<void> => {
    let sent = 0
    let previous: Promise<unknown> | undefined
    while (sent < n) {
      const burst = Math.min(window, n - sent)
      for (let i = 0; i < burst; i++) {
        a.sys.tell(to, '/bench/hit', i)
        if (i % 1000 === 999) await new Promise((r) => setImmediate(r))
      }
      sent += burst
      const counted = a.sys.ask(to, '/bench/count', null)
      if (previous !== undefined) await previous
      previous = counted
    }
    await previous
  }
  return {
    send,
    tracing: a.tracing,
    metrics: [a.metrics, b.metrics].filter((m): m is NodeMetrics => m !== undefined),
    exporter,
    stop: async () => {
      await a.sys.stop()
      await b.sys.stop()
      await a.mesh.stop()
      await b.mesh.stop()
      await a.tracing?.shutdown()
      await b.tracing?.shutdown()
    },
  }
}

const WARMUP = 30_000
const TOTAL = 60_000
const ROUNDS = 12

const off = await pair(false)
const on = await pair(true)
const traced = await pair(true)
const sendTraced = (n: number): Promise<void> => traced.tracing!.inSpan('bench window', {}, () => traced.send(n))

const kinds: [string, (n: number) => Promise<void>][] = [['off', off.send], ['on', on.send], ['on, traced', sendTraced]]
for (const [, send] of kinds) await send(WARMUP)
const rates = new Map<string, number[]>(kinds.map(([k]) => [k, []]))
// tells per CPU-second of this process (all its threads): what the work costs, less swayed than wall time by
// other processes on a shared machine
const perCpu = new Map<string, number[]>(kinds.map(([k]) => [k, []]))
for (let r = 0; r < ROUNDS; r++) {
  for (const [k, send] of kinds) {
    // one set-up's garbage (the traced pair's spans) is not collected during another's round
    ;(globalThis as { gc?: () => void }).gc?.()
    const t0 = process.hrtime.bigint()
    const c0 = process.cpuUsage()
    await send(TOTAL)
    rates.get(k)!.push(TOTAL / (Number(process.hrtime.bigint() - t0) / 1e9))
    const c = process.cpuUsage(c0)
    perCpu.get(k)!.push(TOTAL / ((c.user + c.system) / 1e6))
  }
}
// what the observed nodes counted (a scrape), and what the traced pair exported
const scraped = await on.metrics[0]!.scrape()
const sentCount = Number(/noir_messages_sent_total\{[^}]*\} (\d+)/.exec(scraped)?.[1] ?? NaN)
await traced.tracing!.flush()
const spans = traced.exporter!.spans
await off.stop()
await on.stop()
await traced.stop()

const med = (k: string): number => percentile(rates.get(k)!, 50)
const fmt = (xs: number[]): string => xs.map((x) => Math.round(x / 1000) + 'k').join(', ')
printSection(`signed tells/s with metrics and tracing on vs off (two nodes over libp2p in this process; ${ROUNDS} alternating rounds of ${TOTAL.toLocaleString('en-US')} after ${WARMUP.toLocaleString('en-US')}: median; off ${fmt(rates.get('off')!)}; on ${fmt(rates.get('on')!)}; traced ${fmt(rates.get('on, traced')!)})`, [
  { name: 'tells/s, metrics + tracing on (untraced tells)', value: med('on'), unit: 'msg/s', better: 'higher', baseline: { name: 'off', value: med('off') }, target: '>= 0.95' },
  { name: 'tells/s, every tell in a sampled trace', value: med('on, traced'), unit: 'msg/s', better: 'higher', baseline: { name: 'off', value: med('off') } },
  { name: 'tells per CPU-second, on (untraced tells)', value: percentile(perCpu.get('on')!, 50), unit: 'msg/cpu-s', better: 'higher', baseline: { name: 'off', value: percentile(perCpu.get('off')!, 50) }, target: '>= 0.95' },
  { name: 'tells per CPU-second, every tell traced', value: percentile(perCpu.get('on, traced')!, 50), unit: 'msg/cpu-s', better: 'higher', baseline: { name: 'off', value: percentile(perCpu.get('off')!, 50) } },
])
// the machine drifts within seconds: the ratio of each round's pair (measured back to back) is steadier
const pairwise = (k: string): number => percentile(rates.get(k)!.map((x, i) => x / rates.get('off')![i]!), 50)
console.log(`  median of per-round ratios (each round's set-ups back to back): on/off ${pairwise('on').toFixed(2)}, traced/off ${pairwise('on, traced').toFixed(2)}`)
console.log(`  (checks: the observed sender counted ${sentCount.toLocaleString('en-US')} envelopes or frames sent; the traced pair exported ${spans.toLocaleString('en-US')} spans for ${(WARMUP + ROUNDS * TOTAL).toLocaleString('en-US')} tells)`)
