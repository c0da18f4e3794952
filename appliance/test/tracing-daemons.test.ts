// One deploy is one trace across three daemon processes: each daemon exports its spans over OTLP/HTTP to a
// receiver this test runs on loopback. The deploy request's span on the orchestrating node is the root; the
// asks it makes carry the trace in their envelopes (signed `trace` field), so the bids, the contracts proposed
// to and started on the two workers (a replica each: each has room for one), and each worker's executor start
// are all spans of that one trace, each with a parent that is in it (the links cross processes). Log lines
// written in the trace carry its id. Broadcasts published in the trace (pubsub, signed `trace` field) are
// handled in it on every node that receives them.
import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { DaemonCluster, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { removeNodeContainers } from '../../cli/commands/demo.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'

const IMAGE = 'noir/busybox:latest'

interface OtlpValue { stringValue?: string }
interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: { key: string; value: OtlpValue }[] }
interface OtlpExport { resourceSpans: { resource: { attributes: { key: string; value: OtlpValue }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[] }
interface Span extends OtlpSpan { node: string }

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (text += c))
    req.on('end', () => resolve(text))
    req.on('error', reject)
  })
}

const service = {
  apiVersion: 'noir/v1', kind: 'service', name: 'traced',
  runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1 & wait $!; done'] },
  resources: { cpu: 0.6, memory: '32Mi' },
  constraints: { labels: { role: 'worker' } },
  service: { replicas: 2 },
}

t.test('one deploy, one trace across three daemon processes', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  // the OTLP/HTTP receiver (JSON encoding, as @opentelemetry/exporter-trace-otlp-http sends it)
  const spans: Span[] = []
  const contentTypes = new Set<string>()
  const receiver = createServer((req, res) => {
    void body(req).then((text) => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end()
      contentTypes.add(String(req.headers['content-type']))
      const doc = JSON.parse(text) as OtlpExport
      for (const rs of doc.resourceSpans) {
        const node = rs.resource.attributes.find((a) => a.key === 'service.instance.id')?.value.stringValue ?? '?'
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, node })
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
  if (process.env.NOIR_TRACE_DUMP) t.teardown(async () => (await import('node:fs')).writeFileSync(process.env.NOIR_TRACE_DUMP!, JSON.stringify(spans, null, 1)))
  t.teardown(() => new Promise<void>((r) => receiver.close(() => r())))
  const otlp = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`

  const cluster = new DaemonCluster()
  t.teardown(async () => {
    const dids = cluster.daemons.map((d) => d.did)
    await cluster.cleanup()
    await removeNodeContainers(dids)
  })
  const share = 'cpu=1,memory=1GiB,disk=2GiB,gpu=0'
  const config = (labels: Record<string, string>) => ({
    config: { share, tracing: { otlp, flushMs: 100 }, orchestration: { beatMs: 200, bidWindowMs: 1000, labels } } as never,
  })
  const a = await cluster.start(config({}))
  const [b, c] = await Promise.all([cluster.start({ ...config({ role: 'worker' }), bootstrap: a.multiaddrs }), cluster.start({ ...config({ role: 'worker' }), bootstrap: a.multiaddrs })]) as [DaemonHandle, DaemonHandle]
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 2, 20_000)
  await new Promise((r) => setTimeout(r, 1500))

  const dep = await a.api.post<DeploymentView>('/v1/deployments', { workload: service })
  const v = await eventually(async () => {
    const x = await a.api.get<DeploymentView>(`/v1/deployments/${dep.id}`)
    return (x.phase === 'running' || x.phase === 'failed') && x
  }, 60_000, 200)
  t.equal(v.phase, 'running', `the service runs (${v.reason ?? ''})`)
  t.same(v.replicas.map((r) => r.node).sort(), [b.did, c.did].sort(), 'one replica on each worker (each has room for one only)')

  const root = await eventually(() => spans.find((s) => s.node === a.did && s.name === 'POST /v1/deployments'), 20_000)
  t.notOk(root.parentSpanId, 'the deploy request is the root of its trace')
  t.equal(root.kind, 2, 'a server span')
  /** The span's ancestors up to the root of its trace, once they all arrived. */
  const chainOfIn = (traceId: string, leaf: Span): Promise<Span[]> => eventually(() => {
    const mine = new Map(spans.filter((s) => s.traceId === traceId).map((s) => [s.spanId, s]))
    const path: Span[] = [leaf]
    for (let s = leaf; s.parentSpanId; ) {
      const p = mine.get(s.parentSpanId)
      if (!p) return false
      path.push(p)
      s = p
    }
    return path
  }, 20_000)
  const chainOf = (leaf: Span): Promise<Span[]> => chainOfIn(root.traceId, leaf)
  for (const worker of [b, c]) {
    const executor = await eventually(() => spans.find((s) => s.traceId === root.traceId && s.name === 'noir.executor.start' && s.node === worker.did), 30_000)
    t.ok(executor, `the executor start on worker ${worker.did.slice(-6)} is in the deploy's trace`)
    const chain = await chainOf(executor)
    t.equal(chain.at(-1)!.spanId, root.spanId, 'it leads back to the deploy request, parent by parent')
    t.ok(chain.some((s) => s.node === a.did), 'the chain crosses from the orchestrating process to the worker')
    t.ok(chain.some((s, i) => i > 0 && s.node !== chain[i - 1]!.node && chain[i - 1]!.kind === 2), 'where it crosses, the receiving span is a server span with a remote parent')
    t.ok(chain.some((s) => s.name === '/noir/market/start'), `the provider's market handling is on the way (${chain.map((s) => s.name).join(' <- ')})`)
  }

  await new Promise((r) => setTimeout(r, 500))
  const trace = spans.filter((s) => s.traceId === root.traceId)
  const ids = new Set(trace.map((s) => s.spanId))
  t.same(trace.filter((s) => s.parentSpanId && !ids.has(s.parentSpanId)).map((s) => s.name), [], 'no span of the trace has a parent outside it')
  t.same([...new Set(trace.map((s) => s.node))].sort(), [a.did, b.did, c.did].sort(), 'the trace spans all three processes')
  t.same(spans.filter((s) => s.name === 'noir.executor.start' && s.traceId !== root.traceId), [], 'no executor start outside it')
  t.ok([...contentTypes].every((ct) => ct.startsWith('application/json')), 'exported as OTLP/HTTP JSON')
  // a broadcast published in a trace carries it: a dry run asks every node by a bid-request broadcast, and
  // each worker handles that broadcast in a span of the request's trace, and its bid (an ask back) in it too
  await a.api.post('/v1/bids/dry-run', { workload: service })
  const dry = await eventually(() => spans.find((s) => s.node === a.did && s.name === 'POST /v1/bids/dry-run'), 20_000)
  for (const worker of [b, c]) {
    const received = await eventually(() => spans.find((s) => s.traceId === dry.traceId && s.node === worker.did && s.name.startsWith('pubsub ')), 20_000)
      .catch(() => undefined)
    t.ok(received, `worker ${worker.did.slice(-6)} handled the bid-request broadcast inside the dry run's trace (${[...new Set(spans.filter((x) => x.traceId === dry.traceId).map((x) => `${x.name}@${x.node.slice(-6)}`))].join(', ')})`)
    if (!received) continue
    t.match(received.name, /^pubsub .*bid/, 'the span names the topic')
    t.equal(received.kind, 2, 'a server span (its parent is remote)')
    const chain = await chainOfIn(dry.traceId, received)
    t.equal(chain.at(-1)!.spanId, dry.spanId, 'it leads back to the dry-run request, parent by parent')
  }

  // log lines written inside the trace carry its id
  for (const worker of [b, c]) {
    const traced = worker.logs().split('\n').filter((l) => l.includes(`"trace":"${root.traceId}"`))
    t.ok(traced.length > 0, 'the worker logged within the trace, with its id')
    t.ok(traced.every((l) => /"span":"[0-9a-f]{16}"/.test(l)), 'and the span id')
  }
})
