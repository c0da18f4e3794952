// NodeTracing's binding of the kernel hook (appliance/observability/tracing.ts) with the SDK's in-memory
// exporter: a traceparent round trip, spans of handled messages under their parent, ids for log lines, and a
// context whose span ended long ago carries its trace no more (timers started in a trace do not keep it).
import t from 'tap'
import { context, trace, ROOT_CONTEXT } from '@opentelemetry/api'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace'
import { NodeTracing, LINGER_MS } from '../observability/tracing.ts'

t.test('context carried, spans parented, old contexts let go', async (t) => {
  const exporter = new InMemorySpanExporter()
  const tracing = new NodeTracing('did:key:zTest', { sampleRatio: 1, batchSize: 1, flushMs: 10 }, { exporter })
  t.teardown(() => tracing.shutdown())
  const m = tracing.messages
  t.equal(m.capture(), undefined, 'outside a trace: nothing to carry')
  t.equal(tracing.ids(), undefined)
  let tp: string | undefined
  let ids: { trace: string; span: string } | undefined
  await tracing.inSpan('POST /v1/deployments', {}, async () => {
    const captured = m.capture()
    t.ok(captured, 'inside a span: its context')
    tp = m.traceparent(captured)
    ids = tracing.ids()
  })
  t.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
  t.equal(tp!.slice(3, 35), ids!.trace, 'the traceparent names the trace the log lines carry')
  const remote = m.fromTraceparent(tp!)
  let inner: unknown
  m.handle(remote, '/noir/market/bid', 'did:key:zOther/market', () => {
    inner = m.capture()
  })
  t.ok(inner, 'the handling runs in a context of its own span')
  t.equal(m.fromTraceparent('garbage'), undefined, 'a malformed traceparent gives no context')
  await tracing.flush()
  const spans = exporter.getFinishedSpans()
  const api = spans.find((s) => s.name === 'POST /v1/deployments')!
  const bid = spans.find((s) => s.name === '/noir/market/bid')!
  t.equal(bid.spanContext().traceId, api.spanContext().traceId, 'one trace')
  t.equal(bid.parentSpanContext?.spanId, api.spanContext().spanId, 'the handling is a child of the sender\'s span')
  t.equal(bid.attributes['noir.actor'], 'market', 'the actor path, not the DID')

  // a context whose span ended more than LINGER_MS ago is carried no further
  const past = Date.now() - LINGER_MS - 5000
  const old = tracing.tracer.startSpan('old', { startTime: past })
  old.end(past + 10)
  t.equal(context.with(trace.setSpan(ROOT_CONTEXT, old), () => m.capture()), undefined, 'long ended: not carried')
  const recent = tracing.tracer.startSpan('recent')
  recent.end()
  t.ok(context.with(trace.setSpan(ROOT_CONTEXT, recent), () => m.capture()), 'just ended: still carried')
})
