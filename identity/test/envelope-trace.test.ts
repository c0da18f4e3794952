// The envelope's optional `trace` field (a W3C traceparent, spec/envelope.md and spec/observability.md): signed
// like every field (a relay cannot graft a message into another trace, or strip it, without breaking the
// signature), checked strictly, parsed on the fast path, and absent from envelopes that do not carry it (an
// envelope of a sender that knows nothing of traces verifies as before).
import t from 'tap'
import { BadSignatureError, EnvelopeVerifier, InvalidEnvelopeInitError, MalformedEnvelopeError, NodeKey, signEnvelope, signEnvelopeBatch, type EnvelopeInit } from '../index.ts'
import { parseCanonicalEnvelope } from '../canonical-envelope-parser.ts'

const alice = NodeKey.generate()
const bob = NodeKey.generate()
const T0 = 1_800_000_000_000
const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

const init = (over: Partial<EnvelopeInit> = {}): EnvelopeInit => ({ from: `${alice.did}/orchestrator`, to: `${bob.did}/market`, behavior: '/noir/market/bid', body: { n: 1 }, now: T0, ...over })
const payloadOf = (bytes: Uint8Array): string => Buffer.from(bytes.subarray(66)).toString('utf8')
const wire = (payload: string, sig: Uint8Array): Uint8Array => {
  const p = Buffer.from(payload, 'utf8')
  const b = new Uint8Array(66 + p.length)
  b[0] = 1
  b[1] = 1
  b.set(sig, 2)
  b.set(p, 66)
  return b
}

t.test('a traced envelope verifies, with its trace, on the fast parser path', async (t) => {
  const s = signEnvelope(alice, init({ trace: TP, replyTo: alice.did }))
  const env = new EnvelopeVerifier({ now: () => T0 }).verify(s.bytes)
  t.equal(env.trace, TP)
  const text = payloadOf(s.bytes)
  t.match(text, /,"to":"[^"]+","trace":"00-4bf9[^"]+","v":1\}$/, 'canonical member order: after to, before v')
  t.equal(parseCanonicalEnvelope(text)?.trace, TP, 'the fast parser takes it')
  const batch = signEnvelopeBatch(alice, [init({ trace: TP }), init()])
  const v = new EnvelopeVerifier({ now: () => T0 })
  t.equal(v.verify(batch[0]!.bytes).trace, TP)
  t.equal(v.verify(batch[1]!.bytes).trace, undefined)
})

t.test('an envelope without a trace is unchanged: no member, verifies as before', async (t) => {
  const s = signEnvelope(alice, init())
  t.notMatch(payloadOf(s.bytes), /trace/)
  t.equal('trace' in new EnvelopeVerifier({ now: () => T0 }).verify(s.bytes), false)
})

t.test('the trace is covered by the signature: changed, added or stripped, the envelope is refused', async (t) => {
  const s = signEnvelope(alice, init({ trace: TP }))
  const sig = s.bytes.subarray(2, 66)
  const text = payloadOf(s.bytes)
  const other = text.replace('4bf92f3577b34da6a3ce929d0e0e4736', '11111111111111111111111111111111')
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(wire(other, sig)), BadSignatureError, 'another trace id')
  const stripped = text.replace(`,"trace":"${TP}"`, '')
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(wire(stripped, sig)), BadSignatureError, 'trace removed')
  const plain = signEnvelope(alice, init())
  const added = payloadOf(plain.bytes).replace(',"v":1}', `,"trace":"${TP}","v":1}`)
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(wire(added, plain.bytes.subarray(2, 66))), BadSignatureError, 'trace grafted on')
})

t.test('a malformed traceparent is refused when signing and when receiving', async (t) => {
  const bad = [
    '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // unknown version
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // upper case
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // zero trace id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // zero span id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
    'x'.repeat(55),
  ]
  for (const trace of bad) t.throws(() => signEnvelope(alice, init({ trace })), InvalidEnvelopeInitError, trace)
  // a peer that signs a bad one itself: refused on receipt with a typed error
  const s = signEnvelope(alice, init({ trace: TP }))
  const text = payloadOf(s.bytes).replace(TP, bad[0]!)
  const sig = alice.sign(Buffer.concat([Buffer.from('noir:msg:v1\0'), Buffer.from(text)]))
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(wire(text, sig)), MalformedEnvelopeError)
  const wrongType = payloadOf(s.bytes).replace(`"trace":"${TP}"`, '"trace":7')
  const sig2 = alice.sign(Buffer.concat([Buffer.from('noir:msg:v1\0'), Buffer.from(wrongType)]))
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(wire(wrongType, sig2)), MalformedEnvelopeError)
})
