// Signed envelopes: what is accepted, and every way one is refused (each with its own typed error).
import t from 'tap'
import {
  BadSignatureError,
  canonicalJson,
  decodeEnvelope,
  EnvelopeTooLargeError,
  EnvelopeVerifier,
  ExpiredEnvelopeError,
  IdentityError,
  InvalidEnvelopeInitError,
  MalformedEnvelopeError,
  NodeKey,
  NotYetValidEnvelopeError,
  ReplayedEnvelopeError,
  ReplayCache,
  randomEnvelopeId,
  signEnvelope,
  signEnvelopeBatch,
  UnknownKeyError,
  type EnvelopeInit,
} from '../index.ts'
import { throwsA } from './helpers.ts'

const alice = NodeKey.generate()
const bob = NodeKey.generate()
const T0 = 1_800_000_000_000

function init(over: Partial<EnvelopeInit> = {}): EnvelopeInit {
  return { from: `${alice.did}/orchestrator`, to: `${bob.did}/alloc/1`, behavior: '/noir/alloc/status', body: { n: 1 }, now: T0, ...over }
}

/** Rebuilds a single-signature wire from a payload text and a signature. */
function wire(payload: string, sig: Uint8Array): Uint8Array {
  const p = Buffer.from(payload, 'utf8')
  const b = new Uint8Array(66 + p.length)
  b[0] = 1
  b[1] = 1
  b.set(sig, 2)
  b.set(p, 66)
  return b
}

const signWith = (key: NodeKey, payload: string): Uint8Array =>
  key.sign(Buffer.concat([Buffer.from('noir:msg:v1\0'), Buffer.from(payload)]))

t.test('a signed envelope verifies and returns its fields', async (t) => {
  const s = signEnvelope(alice, init({ replyTo: alice.did, inReplyTo: 'abc', proofs: ['x.y.z'] }))
  const env = new EnvelopeVerifier({ now: () => T0 }).verify(s.bytes)
  t.same(env, s.envelope)
  t.equal(env.exp, T0 + 30_000, 'default lifetime is 30 s')
  t.match(env.nonce, /^[A-Za-z0-9_-]{22}$/)
  t.same(decodeEnvelope(s.bytes).envelope, s.envelope)
})

t.test('an envelope with a tampered body is refused with BadSignatureError', async (t) => {
  const s = signEnvelope(alice, init({ body: { amount: 10 } }))
  const text = Buffer.from(s.bytes.subarray(66)).toString().replace('"amount":10', '"amount":99')
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(wire(text, s.bytes.subarray(2, 66))), BadSignatureError)
})

t.test('an envelope signed by another key than its sender is refused with BadSignatureError', async (t) => {
  const s = signEnvelope(alice, init())
  const text = Buffer.from(s.bytes.subarray(66)).toString()
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(wire(text, signWith(bob, text))), BadSignatureError)
  // the same bytes signed under another domain tag do not verify either
  const other = bob.sign(Buffer.concat([Buffer.from('noir:bid:v1\0'), Buffer.from(text)]))
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(wire(text, other)), BadSignatureError)
})

t.test('signing refuses a from address of another key with InvalidEnvelopeInitError', async (t) => {
  t.throws(() => signEnvelope(alice, init({ from: bob.did })), InvalidEnvelopeInitError)
  t.throws(() => signEnvelope(alice, init({ behavior: 'no-slash' })), InvalidEnvelopeInitError)
  t.throws(() => signEnvelope(alice, init({ body: { x: Number.NaN } })), InvalidEnvelopeInitError)
  t.throws(() => signEnvelope(alice, init({ body: { x: undefined as unknown as null } })), InvalidEnvelopeInitError)
  t.throws(() => signEnvelope(alice, init({ ttlMs: 0 })), InvalidEnvelopeInitError)
})

t.test('an expired envelope is refused with ExpiredEnvelopeError, within the clock-skew allowance it passes', async (t) => {
  const s = signEnvelope(alice, init({ ttlMs: 1000 }))
  t.doesNotThrow(() => new EnvelopeVerifier({ now: () => T0 + 1000 + 29_000 }).verify(s.bytes))
  t.throws(() => new EnvelopeVerifier({ now: () => T0 + 1000 + 30_001 }).verify(s.bytes), ExpiredEnvelopeError)
  t.throws(() => new EnvelopeVerifier({ now: () => T0 + 2000, clockSkewMs: 0 }).verify(s.bytes), ExpiredEnvelopeError)
})

t.test('an envelope issued in the future beyond the skew is refused with NotYetValidEnvelopeError', async (t) => {
  const s = signEnvelope(alice, init({ now: T0 + 60_000 }))
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(s.bytes), NotYetValidEnvelopeError)
  t.doesNotThrow(() => new EnvelopeVerifier({ now: () => T0 + 40_000 }).verify(s.bytes))
})

t.test('an envelope living longer than maxTtlMs is refused with MalformedEnvelopeError', async (t) => {
  const s = signEnvelope(alice, init({ ttlMs: 3_600_000 }))
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(s.bytes), MalformedEnvelopeError)
  t.doesNotThrow(() => new EnvelopeVerifier({ now: () => T0, maxTtlMs: 3_600_000 }).verify(s.bytes))
})

t.test('a replayed envelope is refused with ReplayedEnvelopeError', async (t) => {
  const v = new EnvelopeVerifier({ now: () => T0 })
  const s = signEnvelope(alice, init())
  v.verify(s.bytes)
  t.throws(() => v.verify(s.bytes), ReplayedEnvelopeError)
  // the same id with another nonce is a different message
  t.doesNotThrow(() => v.verify(signEnvelope(alice, init({ id: s.envelope.id })).bytes))
})

t.test('the replay cache stays bounded and refuses what it can no longer rule out', async (t) => {
  let now = T0
  const v = new EnvelopeVerifier({ now: () => now, replayCacheSize: 3 })
  const sent = [0, 1, 2, 3].map((i) => signEnvelope(alice, init({ now: T0 + i })))
  for (const s of sent) v.verify(s.bytes) // the 4th evicts the 1st
  t.throws(() => v.verify(sent[0]!.bytes), ReplayedEnvelopeError, 'evicted entry is not accepted again')
  t.throws(() => v.verify(sent[3]!.bytes), ReplayedEnvelopeError)
  t.doesNotThrow(() => v.verify(signEnvelope(alice, init({ now: T0 + 10 })).bytes), 'a fresher envelope still passes')
  // once everything has expired, entries are dropped
  now = T0 + 120_000
  t.doesNotThrow(() => v.verify(signEnvelope(alice, init({ now })).bytes))
})

t.test('an oversize envelope is refused with EnvelopeTooLargeError before it is parsed', async (t) => {
  const s = signEnvelope(alice, init({ body: 'x'.repeat(5000) }))
  t.throws(() => new EnvelopeVerifier({ now: () => T0, maxBytes: 4096 }).verify(s.bytes), EnvelopeTooLargeError)
  t.throws(() => decodeEnvelope(new Uint8Array(2 * 1024 * 1024)), EnvelopeTooLargeError)
})

t.test('malformed bytes are refused with MalformedEnvelopeError', async (t) => {
  const s = signEnvelope(alice, init())
  const sig = s.bytes.subarray(2, 66)
  const text = Buffer.from(s.bytes.subarray(66)).toString()
  const obj = JSON.parse(text) as Record<string, unknown>
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['header only', s.bytes.subarray(0, 66)],
    ['unknown version', Uint8Array.from([2, ...s.bytes.subarray(1)])],
    ['unknown kind', Uint8Array.from([1, 9, ...s.bytes.subarray(2)])],
    ['not JSON', wire('{"v":1', sig)],
    ['not UTF-8', Uint8Array.from([...wire('"', sig), 0xff, 0xfe, 0x22])],
    ['whitespace (not canonical)', wire(JSON.stringify(obj, null, 1), sig)],
    ['unsorted keys (not canonical)', wire(JSON.stringify({ v: 1, ...obj }), sig)],
    ['duplicate key', wire(text.replace('"v":1}', '"v":1,"v":1}'), sig)],
    ['unknown field', wire(canonicalJson({ ...obj, extra: 1 }), sig)],
    ['missing nonce', wire(canonicalJson(Object.fromEntries(Object.entries(obj).filter(([k]) => k !== 'nonce'))), sig)],
    ['bad to', wire(canonicalJson({ ...obj, to: 'nobody' }), sig)],
    ['bad behavior', wire(canonicalJson({ ...obj, behavior: 'noir' }), sig)],
    ['exp before iat', wire(canonicalJson({ ...obj, exp: obj.iat }), sig)],
    ['fractional iat', wire(canonicalJson({ ...obj, iat: 1.5 }), sig)],
    ['array payload', wire('[1,2]', sig)],
    ['lone surrogate', wire(canonicalJson({ ...obj, body: 'x' }).replace('"body":"x"', '"body":"\\ud800"'), sig)],
    ['BOM', wire('\ufeff' + text, sig)],
    ['batch index outside count', Uint8Array.from([1, 2, ...sig, 0, 0, 0, 2, 0, 0, 0, 2, ...Buffer.from(text)])],
    ['batch count zero', Uint8Array.from([1, 2, ...sig, 0, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from(text)])],
    ['batch path cut short', Uint8Array.from([1, 2, ...sig, 0, 1, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d])],
  ]
  for (const [name, bytes] of cases) {
    t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(bytes), MalformedEnvelopeError, name)
  }
})

t.test('a sender that is not a did:key is refused with UnknownKeyError', async (t) => {
  const s = signEnvelope(alice, init())
  const obj = JSON.parse(Buffer.from(s.bytes.subarray(66)).toString()) as Record<string, unknown>
  for (const from of ['did:web:example.com', 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme', 42]) {
    const bytes = wire(canonicalJson({ ...obj, from }), s.bytes.subarray(2, 66))
    t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(bytes), from === 42 ? MalformedEnvelopeError : UnknownKeyError, String(from))
  }
})

t.test('batch-signed envelopes each verify on their own, in any order, on separate verifiers', async (t) => {
  for (const n of [1, 2, 3, 5, 8, 13, 64]) {
    const batch = signEnvelopeBatch(alice, Array.from({ length: n }, (_, i) => init({ body: { i } })))
    t.equal(new Set(batch.map((s) => Buffer.from(s.bytes.subarray(2, 66)).toString('hex'))).size, 1, `one signature for ${n}`)
    const shared = new EnvelopeVerifier({ now: () => T0 })
    for (const s of [...batch].reverse()) {
      t.same(new EnvelopeVerifier({ now: () => T0 }).verify(s.bytes), s.envelope)
      t.same(shared.verify(s.bytes), s.envelope)
    }
  }
})

t.test('a whole batch costs one Ed25519 verification on a verifier; singles cost one each', async (t) => {
  const v = new EnvelopeVerifier({ now: () => T0 })
  for (const s of signEnvelopeBatch(alice, Array.from({ length: 64 }, (_, i) => init({ body: i })))) v.verify(s.bytes)
  t.equal(v.signatureChecks, 1)
  v.verify(signEnvelope(alice, init()).bytes)
  v.verify(signEnvelope(alice, init()).bytes)
  t.equal(v.signatureChecks, 3)
})

t.test('a tampered envelope in a batch fails alone; the others still verify', async (t) => {
  const batch = signEnvelopeBatch(alice, Array.from({ length: 7 }, (_, i) => init({ body: { amount: i } })))
  const v = new EnvelopeVerifier({ now: () => T0 })
  const bad = Uint8Array.from(batch[3]!.bytes)
  const text = Buffer.from(bad).toString('latin1').replace('"amount":3', '"amount":9')
  const tampered = Uint8Array.from(Buffer.from(text, 'latin1'))
  t.throws(() => v.verify(tampered), BadSignatureError)
  // a wrong Merkle sibling is refused too
  const badPath = Uint8Array.from(batch[4]!.bytes)
  badPath[80]! ^= 1
  t.throws(() => v.verify(badPath), BadSignatureError)
  // an index moved to another leaf position no longer leads to the signed root
  const moved = Uint8Array.from(batch[6]!.bytes)
  moved[73] = 5
  throwsA(t, () => v.verify(moved), IdentityError)
  for (const [i, s] of batch.entries()) if (i !== 3) t.same(v.verify(s.bytes), s.envelope)
  t.throws(() => v.verify(batch[2]!.bytes), ReplayedEnvelopeError, 'batch members are replay-checked too')
})

t.test('a batch root signature cannot be reused as a single signature', async (t) => {
  const [s] = signEnvelopeBatch(alice, [init()])
  const single = Uint8Array.from(s!.bytes)
  single[1] = 1
  const asSingle = Uint8Array.from([...single.subarray(0, 66), ...single.subarray(74)])
  t.throws(() => new EnvelopeVerifier({ now: () => T0 }).verify(asSingle), BadSignatureError)
})

t.test('after members of a batch verified (their Merkle path remembered), tampered or grafted members are still refused', async (t) => {
  const batch = signEnvelopeBatch(alice, Array.from({ length: 13 }, (_, i) => init({ body: { amount: i } })))
  const other = signEnvelopeBatch(alice, Array.from({ length: 13 }, (_, i) => init({ body: { amount: 100 + i } })))
  const v = new EnvelopeVerifier({ now: () => T0 })
  // out of order: remembered paths must not be needed, only help
  const order = [5, 0, 12, 3, 8, 1]
  for (const i of order) t.same(v.verify(batch[i]!.bytes), batch[i]!.envelope)
  t.equal(v.signatureChecks, 1, 'one Ed25519 check for the whole batch')
  // a member whose body was changed: its leaf no longer meets the remembered path, and the root it leads to is not signed
  const text = Buffer.from(batch[4]!.bytes).toString('latin1').replace('"amount":4', '"amount":9')
  t.throws(() => v.verify(Uint8Array.from(Buffer.from(text, 'latin1'))), BadSignatureError)
  // a sibling hash flipped
  const badPath = Uint8Array.from(batch[2]!.bytes)
  badPath[80]! ^= 1
  t.throws(() => v.verify(badPath), BadSignatureError)
  // a member of another batch carrying this batch's signature
  const grafted = Uint8Array.from(other[6]!.bytes)
  grafted.set(batch[6]!.bytes.subarray(2, 66), 2)
  t.throws(() => v.verify(grafted), BadSignatureError)
  for (const i of [2, 4, 6, 7, 9, 10, 11]) t.same(v.verify(batch[i]!.bytes), batch[i]!.envelope)
  t.equal(v.signatureChecks, 4, 'the three refused envelopes each cost a check; the batch itself only one')
})

t.test('the replay cache drops expired entries once their deadline passed and admits them again later', async (t) => {
  const c = new ReplayCache(10)
  c.admit('a', 100, 0)
  c.admit('b', 200, 0)
  t.throws(() => c.admit('a', 100, 50), ReplayedEnvelopeError)
  c.admit('c', 300, 150) // 'a' expired and is dropped
  t.equal(c.size, 2)
  c.admit('a', 400, 150)
  t.throws(() => c.admit('b', 200, 199), ReplayedEnvelopeError)
  c.admit('d', 500, 1000) // everything before expired
  t.equal(c.size, 1)
})

t.test('a full replay cache evicts oldest first through many compactions, and still refuses every remembered key', async (t) => {
  const max = 5000
  const c = new ReplayCache(max)
  const n = 60_000
  for (let i = 0; i < n; i++) c.admit(`k${i}`, 1_000_000 + i, 0)
  t.equal(c.size, max, 'bounded')
  let refusedRecent = 0
  for (let i = n - max; i < n; i++) {
    try {
      c.admit(`k${i}`, 1_000_000 + i, 0)
    } catch (err) {
      if (err instanceof ReplayedEnvelopeError) refusedRecent++
    }
  }
  t.equal(refusedRecent, max, 'each of the last max keys is still remembered')
  t.throws(() => c.admit('k0', 1_000_000, 0), /saturated/, 'an evicted key whose deadline is below the floor cannot be proven fresh')
  t.doesNotThrow(() => c.admit('fresh', 1_000_000 + n, 0), 'a key expiring after the floor is admitted')
  c.admit('late', 3_000_000, 2_000_000) // every earlier deadline has passed: all expire at once
  t.equal(c.size, 1)
})

t.test('the replay cache agrees with a plain model through random admits, expiries, evictions and growth', async (t) => {
  // the model: the same rules over a Map in arrival order (what the digest table must behave as)
  class Model {
    readonly seen = new Map<string, number>()
    floor = -Infinity
    readonly max: number
    constructor(max: number) {
      this.max = max
    }
    admit(key: string, deadline: number, now: number): void {
      for (const [k, d] of this.seen) {
        if (d >= now) break
        this.seen.delete(k)
      }
      if (this.seen.has(key)) throw new ReplayedEnvelopeError('seen')
      if (deadline <= this.floor) throw new ReplayedEnvelopeError('saturated')
      if (this.seen.size >= this.max) {
        const [k, d] = this.seen.entries().next().value as [string, number]
        this.seen.delete(k)
        if (d > this.floor) this.floor = d
      }
      this.seen.set(key, deadline)
    }
  }
  let seed = 99
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  }
  for (const max of [1, 7, 600, 5000]) {
    const c = new ReplayCache(max)
    const m = new Model(max)
    let now = 0
    let disagreements = 0
    let refused = 0
    for (let i = 0; i < 40_000; i++) {
      now += rand(3)
      // keys drawn from a small space, so the same key comes back often; deadlines ahead of now, mostly in order
      const key = `did:key:z6Mk${rand(3000)}\nid-${rand(7)}\nnonce`
      const deadline = now + 200 + rand(50)
      let a = 'ok'
      let b = 'ok'
      try {
        c.admit(key, deadline, now)
      } catch (err) {
        a = err instanceof ReplayedEnvelopeError ? (/saturated/.test(err.message) ? 'saturated' : 'seen') : 'other'
      }
      try {
        m.admit(key, deadline, now)
      } catch (err) {
        b = (err as Error).message
      }
      if (a !== b) disagreements++
      if (a !== 'ok') refused++
      if (c.size !== m.seen.size) disagreements++
    }
    t.equal(disagreements, 0, `max ${max}: same answer and size as the model at every step`)
    t.ok(refused > 1000, `max ${max}: the run exercised refusals (${refused})`)
  }
})

t.test('every member of batches of 1 to 33 verifies in any order with one Ed25519 check per batch', async (t) => {
  let seed = 7
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  }
  for (let n = 1; n <= 33; n++) {
    const batch = signEnvelopeBatch(alice, Array.from({ length: n }, (_, i) => init({ body: { i } })))
    const order = batch.map((_, i) => i)
    for (let i = n - 1; i > 0; i--) {
      const j = rand(i + 1)
      ;[order[i], order[j]] = [order[j]!, order[i]!]
    }
    const v = new EnvelopeVerifier({ now: () => T0 })
    let ok = 0
    for (const i of order) if (v.verify(batch[i]!.bytes).id === batch[i]!.envelope.id) ok++
    t.equal(ok, n, `all ${n} verify`)
    t.equal(v.signatureChecks, 1, `one check for ${n}`)
    // a forged body in any position is still refused once the others are known
    const forged = Buffer.from(batch[rand(n)]!.bytes).toString('latin1').replace('"i":', '"i":1')
    t.throws(() => v.verify(Uint8Array.from(Buffer.from(forged, 'latin1'))), BadSignatureError)
  }
})

t.test('default envelope ids are random version-4 UUIDs, flat strings that pass the id rule', async (t) => {
  const seen = new Set<string>()
  // over several refills of the random pool (256 ids each)
  for (let k = 0; k < 2000; k++) {
    const id = randomEnvelopeId()
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)) t.fail(`not a v4 UUID: ${id}`)
    seen.add(id)
  }
  t.equal(seen.size, 2000, 'no id repeats')
  const env = signEnvelope(alice, init()).envelope
  t.match(env.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'an envelope without an id gets one')
  // the bytes behind one id are not reused for the next: two consecutive ids share no 16-hex run
  const x = randomEnvelopeId().replace(/-/g, '')
  const y = randomEnvelopeId().replace(/-/g, '')
  t.not(x.slice(0, 16), y.slice(0, 16))
})
