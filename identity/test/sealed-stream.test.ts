// Sealed streams (spec/envelope.md, "Sealed streams"): member and seal frames, the seal signature (the very
// signature signEnvelopeBatch makes for the same envelopes), its checks, standalone evidence, the reader.
import t from 'tap'
import { NodeKey } from '../keys.ts'
import { EnvelopeVerifier, decodeEnvelope, prepareEnvelope, prepareEnvelopeFrame, signEnvelopeBatch, type EnvelopeInit, type JsonValue } from '../envelope.ts'
import { decodeWireHeader } from '../envelope-wire.ts'
import { BadSignatureError, EnvelopeTooLargeError, InvalidEnvelopeInitError, MalformedEnvelopeError, UnsealedEnvelopeError } from '../errors.ts'
import {
  KIND_MEMBER,
  KIND_SEAL,
  MEMBER_HEADER,
  SealedStreamReader,
  decodeStreamFrame,
  encodeMember,
  encodeSeal,
  isStreamFrame,
  sealRoot,
  setMemberHeader,
  signSeal,
  standaloneEnvelopes,
  verifySeal,
} from '../sealed-stream.ts'

const alice = NodeKey.generate()
const bob = NodeKey.generate()
const T0 = 1_767_225_600_000

function inits(n: number): EnvelopeInit[] {
  return Array.from({ length: n }, (_, i) => ({ from: alice.did, to: `${bob.did}/sink`, behavior: '/t/hit', body: { i }, id: `m-${i}`, nonce: `nonce-${String(i).padStart(4, '0')}`, now: T0 }))
}

t.test('member and seal frames round-trip; isStreamFrame tells them from self-signed envelopes', async (t) => {
  const { payload } = prepareEnvelope(alice, inits(1)[0]!)
  const m = decodeStreamFrame(encodeMember(0xfffffffe, 12, payload), 1 << 20)
  t.same(m, { kind: KIND_MEMBER, batch: 0xfffffffe, index: 12, payload })
  const sig = new Uint8Array(64).fill(9)
  const s = decodeStreamFrame(encodeSeal(5, 3, sig), 1 << 20)
  t.same(s, { kind: KIND_SEAL, batch: 5, count: 3, signature: sig })
  t.ok(isStreamFrame(encodeMember(1, 0, payload)) && isStreamFrame(encodeSeal(1, 1, sig)))
  t.notOk(isStreamFrame(signEnvelopeBatch(alice, inits(2))[0]!.bytes), 'a batch-signed envelope is not a stream frame')
})

t.test('malformed frames are refused with typed errors', async (t) => {
  const sig = new Uint8Array(64)
  t.throws(() => decodeStreamFrame(Uint8Array.of(1, 3, 0, 0, 0), 1 << 20), MalformedEnvelopeError, 'a member shorter than its header')
  t.throws(() => decodeStreamFrame(encodeSeal(1, 1, sig).subarray(0, 70), 1 << 20), MalformedEnvelopeError, 'a cut seal')
  t.throws(() => decodeStreamFrame(encodeSeal(1, 0, sig), 1 << 20), MalformedEnvelopeError, 'a seal over no envelopes')
  t.throws(() => decodeStreamFrame(encodeSeal(1, 65_537, sig), 1 << 20), MalformedEnvelopeError, 'a seal over too many envelopes')
  t.throws(() => decodeStreamFrame(encodeMember(1, 65_536, Uint8Array.of(1, 2)), 1 << 20), MalformedEnvelopeError, 'an index no batch can have')
  t.throws(() => decodeStreamFrame(Uint8Array.of(1, 5, 0, 0), 1 << 20), MalformedEnvelopeError, 'an unknown kind')
  t.throws(() => decodeStreamFrame(encodeMember(1, 0, new Uint8Array(100)), 50), EnvelopeTooLargeError, 'over the size bound')
})

t.test('a seal is the same signature signEnvelopeBatch makes for the same envelopes', async (t) => {
  for (const n of [1, 2, 3, 7, 64, 257]) {
    const batch = signEnvelopeBatch(alice, inits(n))
    const payloads = inits(n).map((i) => prepareEnvelope(alice, i).payload)
    t.equal(Buffer.from(signSeal(alice, payloads)).toString('hex'), Buffer.from(decodeWireHeader(batch[0]!.bytes).signature).toString('hex'), `${n} envelopes`)
  }
})

t.test('a member framed in place (prepareEnvelopeFrame + setMemberHeader) is byte for byte encodeMember of the payload', async (t) => {
  const bodies: JsonValue[] = [{ i: 1 }, 'x'.repeat(5000), { text: 'naïve – 日本語 🚀' }, null]
  for (const [k, body] of bodies.entries()) {
    const init = { ...inits(1)[0]!, body, id: `frame-${k}`, nonce: `nonce-frame-${k}` }
    const framed = prepareEnvelopeFrame(alice, init, MEMBER_HEADER)
    const reference = prepareEnvelope(alice, init)
    t.same(Buffer.from(framed.payload), Buffer.from(reference.payload), `payload ${k}`)
    const frame = setMemberHeader(framed.frame, 0xfedcba98, k)
    t.same(Buffer.from(frame), Buffer.from(encodeMember(0xfedcba98, k, reference.payload)), `frame ${k}`)
    const back = decodeStreamFrame(frame, 1 << 20)
    t.same([back.kind, back.kind === KIND_MEMBER ? back.index : -1], [KIND_MEMBER, k])
  }
  t.throws(() => prepareEnvelopeFrame(alice, { ...inits(1)[0]!, body: { n: Number.NaN } }, MEMBER_HEADER), InvalidEnvelopeInitError)
})

t.test('verifySeal holds for exactly the sealed payloads, in order, from the sealing key', async (t) => {
  const payloads = inits(9).map((i) => prepareEnvelope(alice, i).payload)
  const sig = signSeal(alice, payloads)
  t.ok(verifySeal(alice.did, payloads, sig))
  t.notOk(verifySeal(bob.did, payloads, sig), 'another DID')
  t.notOk(verifySeal(alice.did, payloads.slice(0, 8), sig), 'a member missing')
  t.notOk(verifySeal(alice.did, [...payloads, payloads[0]!], sig), 'a member added')
  t.notOk(verifySeal(alice.did, [payloads[1]!, payloads[0]!, ...payloads.slice(2)], sig), 'two members swapped')
  const tampered = payloads.map((p) => Uint8Array.from(p))
  tampered[4]![10]! ^= 1
  t.notOk(verifySeal(alice.did, tampered, sig), 'one byte of one member changed')
  t.notOk(verifySeal(alice.did, [], sig), 'no members')
  t.equal(sealRoot(payloads).length, 32)
})

t.test('sealRoot (folded in one buffer) equals the reference tree for every shape of 1..70 leaves and 256, 257', async (t) => {
  const { createHash } = await import('node:crypto')
  const sha = (...parts: Uint8Array[]) => { const h = createHash('sha256'); for (const p of parts) h.update(p); return new Uint8Array(h.digest()) }
  const reference = (payloads: Uint8Array[]): Uint8Array => {
    let level: Uint8Array[] = payloads.map((p) => sha(Uint8Array.of(0), p))
    while (level.length > 1) {
      const next: Uint8Array[] = []
      for (let j = 0; j < level.length; j += 2) next.push(j + 1 < level.length ? sha(Uint8Array.of(1), level[j]!, level[j + 1]!) : level[j]!)
      level = next
    }
    return level[0]!
  }
  const sizes = [...Array.from({ length: 70 }, (_, i) => i + 1), 256, 257]
  let mismatches = 0
  for (const n of sizes) {
    // payloads of varied length, one longer than the hashing scratch buffer's first size
    const payloads = Array.from({ length: n }, (_, i) => Uint8Array.from({ length: i === 3 ? 5000 : 1 + ((i * 37) % 300) }, (_, k) => (k * 31 + i) & 0xff))
    const got = sealRoot(payloads)
    if (Buffer.compare(Buffer.from(got), Buffer.from(reference(payloads))) !== 0) mismatches++
  }
  t.equal(mismatches, 0)
})

t.test('each sealed member rebuilt as a standalone envelope verifies with EnvelopeVerifier alone', async (t) => {
  const prepared = inits(13).map((i) => prepareEnvelope(alice, i))
  const payloads = prepared.map((p) => p.payload)
  const standalone = standaloneEnvelopes(prepared.map((p) => p.envelope), payloads, signSeal(alice, payloads))
  t.same(standalone.map((s) => s.bytes), signEnvelopeBatch(alice, inits(13)).map((s) => s.bytes), 'byte for byte what signEnvelopeBatch makes')
  const v = new EnvelopeVerifier({ now: () => T0 })
  for (const s of standalone) t.equal(v.verify(s.bytes).id, s.envelope.id)
  t.same(decodeEnvelope(standalone[5]!.bytes).envelope, prepared[5]!.envelope)
})

t.test('SealedStreamReader returns a batch once its seal verifies and refuses forged, short or disordered ones', async (t) => {
  const payloads = inits(5).map((i) => prepareEnvelope(alice, i).payload)
  const r = new SealedStreamReader()
  for (let i = 0; i < 5; i++) t.same(r.push(encodeMember(1, i, payloads[i]!), alice.did), [])
  t.equal(r.openBatches, 1)
  const out = r.push(encodeSeal(1, 5, signSeal(alice, payloads)), alice.did)
  t.same(out.map((s) => s.envelope.id), ['m-0', 'm-1', 'm-2', 'm-3', 'm-4'])
  t.equal(r.openBatches, 0)

  for (let i = 0; i < 5; i++) r.push(encodeMember(2, i, payloads[i]!), alice.did)
  t.throws(() => r.push(encodeSeal(2, 5, signSeal(bob, payloads)), alice.did), BadSignatureError, 'a seal by another key')
  for (let i = 0; i < 4; i++) r.push(encodeMember(3, i, payloads[i]!), alice.did)
  t.throws(() => r.push(encodeSeal(3, 5, signSeal(alice, payloads)), alice.did), UnsealedEnvelopeError, 'a member missing')
  r.push(encodeMember(4, 0, payloads[0]!), alice.did)
  t.throws(() => r.push(encodeMember(4, 2, payloads[2]!), alice.did), UnsealedEnvelopeError, 'a gap')
  t.equal(r.openBatches, 0, 'a refused batch is dropped')
})
