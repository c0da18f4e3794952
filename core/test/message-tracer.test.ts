// The kernel's MessageTracer hook (core/types.ts; spec/observability.md "Traces"): a message sent within a trace
// is handled inside that trace, on this node (mailbox) or another (the envelope's signed `trace` field); a
// message sent outside one carries nothing; a node without a tracer still exchanges messages with traced ones
// both ways (the field is ignored). Unit test of the hook with a recording tracer (the OpenTelemetry binding
// is proven across daemon processes in appliance/test/tracing-daemons.test.ts).
import t from 'tap'
import type { MessageTracer } from '../index.ts'
import { TestKit } from '../testkit.ts'
import { recorder } from './helpers.ts'

/** A tracer whose "context" is a string; `current` is the active one (undefined: no trace). */
function recordingTracer(): MessageTracer & { current: string | undefined; handled: { ctx: string; behavior: string; address: string }[]; received: string[] } {
  const tr = {
    current: undefined as string | undefined,
    handled: [] as { ctx: string; behavior: string; address: string }[],
    received: [] as string[],
    capture: () => tr.current,
    traceparent: (c: unknown) => `00-${'ab'.repeat(16)}-${String(c).padStart(16, '0')}-01`,
    fromTraceparent: (tp: string) => {
      tr.received.push(tp)
      return `remote:${tp.slice(36, 52)}`
    },
    handle: (c: unknown, behavior: string, address: string, fn: () => void) => {
      tr.handled.push({ ctx: String(c), behavior, address })
      const before = tr.current
      tr.current = String(c)
      try {
        fn()
      } finally {
        tr.current = before
      }
    },
  }
  return tr
}

t.test('a local message sent in a trace is handled in it; outside one, untouched', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const tracer = recordingTracer()
  const a = await kit.node({ tracer })
  a.system.spawn(recorder(), { name: 'r' })
  a.system.tell(`${a.system.did}/r`, '/rec/record', 1)
  tracer.current = '0000000000000abc'
  a.system.tell(`${a.system.did}/r`, '/rec/record', 2)
  tracer.current = undefined
  await kit.settle()
  t.same(tracer.handled, [{ ctx: '0000000000000abc', behavior: '/rec/record', address: `${a.system.did}/r` }], 'only the traced one, in its context')
  t.same(await a.system.ask(`${a.system.did}/r`, '/rec/log'), [1, 2], 'both delivered')
})

t.test('across nodes: the traceparent rides in the envelope and the receiver handles in the sender\'s trace', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const ta = recordingTracer()
  const tb = recordingTracer()
  const a = await kit.node({ tracer: ta })
  const b = await kit.node({ tracer: tb })
  b.system.spawn(recorder(), { name: 'r' })
  const addr = `${b.system.did}/r`
  ta.current = '00000000000000f1'
  a.system.tell(addr, '/rec/record', 'traced')
  const log = a.system.ask(addr, '/rec/log')
  ta.current = undefined
  a.system.tell(addr, '/rec/record', 'plain')
  t.same(await log, ['traced'])
  await kit.settle()
  t.same(tb.received, [`00-${'ab'.repeat(16)}-00000000000000f1-01`, `00-${'ab'.repeat(16)}-00000000000000f1-01`], 'the tell and the ask carried it; the untraced tell nothing')
  t.same(tb.handled.map((h) => [h.ctx, h.behavior]), [['remote:00000000000000f1', '/rec/record'], ['remote:00000000000000f1', '/rec/log']])
  t.same(await a.system.ask(addr, '/rec/log'), ['traced', 'plain'])
})

t.test('a node without a tracer and a traced node still talk, both ways', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const traced = recordingTracer()
  const a = await kit.node({ tracer: traced })
  const plain = await kit.node()
  plain.system.spawn(recorder(), { name: 'r' })
  a.system.spawn(recorder(), { name: 'r' })
  traced.current = '0000000000000001'
  t.same(await a.system.ask(`${plain.system.did}/r`, '/rec/log'), [], 'the untraced node answers a traced ask (it ignores the field)')
  traced.current = undefined
  plain.system.tell(`${a.system.did}/r`, '/rec/record', 'from plain')
  await kit.settle()
  t.same(await a.system.ask(`${a.system.did}/r`, '/rec/log'), ['from plain'], 'the traced node takes untraced envelopes')
  t.same(traced.received, [], 'nothing to continue from an untraced sender')
  t.equal(traced.handled.length, 0, 'and no span made for it')
})
