// OpenTelemetry for one node (spec/observability.md, "Traces"): a TracerProvider of its own (tests run several
// daemons in one process; nothing is registered globally but the context manager), exporting over OTLP/HTTP
// when config.json `tracing` is set. It binds the kernel's MessageTracer (core/types.ts): a message sent in a
// trace carries its context (the envelope's `trace` field, a W3C traceparent) and is handled inside a span of
// it, here or on another node. Spans name behaviors and actor paths, never bodies, keys or paths on disk.
import { context, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, type Context, type Span, type Tracer } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { hrTimeToMilliseconds } from '@opentelemetry/core'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import type { MessageTracer } from '../../core/index.ts'
import type { TracingConfig } from './config.ts'

type Attributes = Record<string, string | number | boolean>

let contextManagerSet = false

/** One AsyncLocalStorage context manager per process: contexts follow async continuations. */
function ensureContextManager(): void {
  if (contextManagerSet) return
  contextManagerSet = true
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
}

/** How long after its span ended a context still carries its trace to messages sent in it. */
export const LINGER_MS = 30_000

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The sampled span of `ctx`, unless it ended more than LINGER_MS ago. */
function liveSpan(ctx: Context): Span | undefined {
  const span = trace.getSpan(ctx)
  if (span === undefined || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return undefined
  const ended = span as unknown as { ended?: boolean; endTime?: [number, number] }
  if (ended.ended === true && ended.endTime !== undefined && Date.now() - hrTimeToMilliseconds(ended.endTime) > LINGER_MS) return undefined
  return span
}

export class NodeTracing {
  readonly #provider: TracerProvider
  readonly #traceparents = new WeakMap<Context, string>()
  readonly tracer: Tracer

  constructor(node: string, cfg: Pick<TracingConfig, 'sampleRatio' | 'batchSize' | 'flushMs'> & { otlp?: string }, opts: { exporter?: SpanExporter } = {}) {
    ensureContextManager()
    const exporter = opts.exporter ?? new OTLPTraceExporter({ url: cfg.otlp, timeoutMillis: 10_000 })
    this.#provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'noir-node', 'service.instance.id': node }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(cfg.sampleRatio) }),
      spanProcessors: [new BatchSpanProcessor({ exporter, maxExportBatchSize: cfg.batchSize, scheduledDelayMillis: cfg.flushMs, maxQueueSize: Math.max(2048, cfg.batchSize * 4) })],
    })
    this.tracer = this.#provider.getTracer('noirledger')
  }

  /** Runs `fn` in a new span (a child of the active one, if any); the span ends when `fn` settles. */
  inSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T> | T, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
    return this.tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
      try {
        return await fn()
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'Error' })
        throw err
      } finally {
        span.end()
      }
    })
  }

  /** `{ trace, span }` ids of the active span, for a log line; undefined outside a trace. */
  ids(): { trace: string; span: string } | undefined {
    const span = liveSpan(context.active())
    if (span === undefined) return undefined
    const sc = span.spanContext()
    return { trace: sc.traceId, span: sc.spanId }
  }

  /** The kernel's view: carry the active context with messages, handle them inside spans. */
  readonly messages: MessageTracer = {
    capture: () => {
      // a sampled span, ended or not: work a request started goes on after its span ended, in its trace; but
      // not for ever (timers started in a trace keep its context: a contract's metering every minute would
      // join the deploy's trace for the life of the service): LINGER_MS after the span ended, no longer
      const ctx = context.active()
      return liveSpan(ctx) ? ctx : undefined
    },
    traceparent: (captured) => {
      // a burst of messages sent in one context shares one text
      const ctx = captured as Context
      let tp = this.#traceparents.get(ctx)
      if (tp === undefined) {
        const sc = trace.getSpanContext(ctx)
        if (sc === undefined || (sc.traceFlags & TraceFlags.SAMPLED) === 0) return undefined
        tp = `00-${sc.traceId}-${sc.spanId}-01`
        this.#traceparents.set(ctx, tp)
      }
      return tp
    },
    fromTraceparent: (traceparent) => {
      const m = TRACEPARENT.exec(traceparent)
      if (m === null) return undefined
      const flags = parseInt(m[3]!, 16)
      return trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1]!, spanId: m[2]!, traceFlags: flags & TraceFlags.SAMPLED, isRemote: true })
    },
    handle: (captured, behavior, address, fn) => {
      const parent = captured as Context
      const remote = trace.getSpanContext(parent)?.isRemote === true
      const slash = address.indexOf('/')
      const span = this.tracer.startSpan(behavior, { kind: remote ? SpanKind.SERVER : SpanKind.INTERNAL, attributes: { 'noir.actor': slash < 0 ? '' : address.slice(slash + 1) } }, parent)
      try {
        context.with(trace.setSpan(parent, span), fn)
      } finally {
        span.end()
      }
    },
  }

  /** Exports what is still batched. */
  flush(): Promise<void> {
    return this.#provider.forceFlush()
  }

  /** Flushes and stops exporting. */
  shutdown(): Promise<void> {
    return this.#provider.shutdown()
  }
}
