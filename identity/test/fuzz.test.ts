// Fuzzing the receive paths: random and mutated envelopes and capability tokens never crash the verifier and
// are each refused with a typed IdentityError (or, for a no-op mutation, accepted unchanged).
import t from 'tap'
import { createJWT, EdDSASigner } from 'did-jwt'
import {
  CapabilityVerifier,
  decodeEnvelope,
  delegateCapability,
  EnvelopeVerifier,
  IdentityError,
  issueCapability,
  NodeKey,
  parseAddress,
  publicKeyFromDid,
  signEnvelope,
  signEnvelopeBatch,
  type JsonValue,
} from '../index.ts'

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed)
/** mulberry32: a small deterministic PRNG, so a failure can be replayed with FUZZ_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
const rand = prng(SEED)
const int = (n: number): number => Math.floor(rand() * n)
const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256))

function mutate(src: Uint8Array): Uint8Array {
  const b = Array.from(src)
  const ops = 1 + int(3)
  for (let k = 0; k < ops; k++) {
    const at = int(b.length + 1)
    switch (int(6)) {
      case 0: if (b.length) b[at % b.length] = b[at % b.length]! ^ (1 << int(8)); break // bit flip
      case 1: if (b.length) b[at % b.length] = int(256); break // byte replace
      case 2: b.splice(at, 1 + int(8)); break // delete
      case 3: b.splice(at, 0, ...bytes(1 + int(8))); break // insert
      case 4: b.length = int(b.length + 1); break // truncate
      default: { // swap two bytes
        const j = int(b.length || 1)
        if (b.length) [b[at % b.length], b[j]] = [b[j]!, b[at % b.length]!]
      }
    }
  }
  return Uint8Array.from(b)
}

function randomJson(depth = 0): JsonValue {
  switch (int(depth > 3 ? 4 : 6)) {
    case 0: return null
    case 1: return rand() < 0.5
    case 2: return rand() < 0.5 ? int(1e6) - 5e5 : (rand() - 0.5) * 1e10
    case 3: return String.fromCharCode(...Array.from({ length: int(12) }, () => int(0xd7ff)))
    case 4: return Array.from({ length: int(4) }, () => randomJson(depth + 1))
    default: return Object.fromEntries(Array.from({ length: int(4) }, () => [String.fromCharCode(97 + int(26)), randomJson(depth + 1)]))
  }
}

const alice = NodeKey.generate()
const bob = NodeKey.generate()
const T0 = Date.now()

function expectTyped(t: { fail(m: string): void; pass(m: string): void }, fn: () => unknown, label: string, original?: Uint8Array, candidate?: Uint8Array): boolean {
  try {
    fn()
  } catch (err) {
    if (err instanceof IdentityError) return true
    t.fail(`${label}: untyped ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} (FUZZ_SEED=${SEED})`)
    return false
  }
  if (original && candidate && Buffer.from(original).equals(Buffer.from(candidate))) return true
  t.fail(`${label}: accepted a corrupted input (FUZZ_SEED=${SEED})`)
  return false
}

t.test('random bytes are refused with a typed error', async (t) => {
  let ok = 0
  const n = 3000
  for (let i = 0; i < n; i++) {
    const b = i % 3 === 0 ? Uint8Array.from([1, 1 + int(2), ...bytes(int(400))]) : bytes(int(600))
    if (expectTyped(t, () => new EnvelopeVerifier({ now: () => T0 }).verify(b), `random #${i}`)) ok++
  }
  t.equal(ok, n)
})

t.test('mutated single and batch envelopes are refused with a typed error', async (t) => {
  const singles = Array.from({ length: 20 }, () => signEnvelope(alice, { from: `${alice.did}/a`, to: `${bob.did}/b/c`, behavior: '/noir/x/y', body: randomJson(), now: T0, proofs: ['a.b.c'], inReplyTo: 'q' }).bytes)
  const batch = signEnvelopeBatch(alice, Array.from({ length: 20 }, () => ({ from: alice.did, to: bob.did, behavior: '/noir/batch', body: randomJson(), now: T0 }))).map((s) => s.bytes)
  let ok = 0
  const n = 4000
  for (let i = 0; i < n; i++) {
    const src = i % 2 === 0 ? singles[int(singles.length)]! : batch[int(batch.length)]!
    const m = mutate(src)
    if (expectTyped(t, () => new EnvelopeVerifier({ now: () => T0 }).verify(m), `mutated #${i}`, src, m)) ok++
  }
  t.equal(ok, n)
})

t.test('well-framed envelopes with random JSON payloads are refused with a typed error', async (t) => {
  let ok = 0
  const n = 2000
  const sig = new Uint8Array(64)
  for (let i = 0; i < n; i++) {
    const value = rand() < 0.5 ? randomJson() : { v: 1, id: 'x', from: alice.did, to: rand() < 0.5 ? bob.did : randomJson(), behavior: '/noir/a', body: randomJson(), iat: T0, exp: T0 + int(3) - 1, nonce: rand() < 0.5 ? 'abcdefgh' : randomJson() }
    const payload = Buffer.from(JSON.stringify(value) ?? 'null')
    const b = Uint8Array.from([1, 1, ...sig, ...payload])
    if (expectTyped(t, () => decodeEnvelope(b) && new EnvelopeVerifier({ now: () => T0 }).verify(b), `json #${i}`)) ok++
  }
  t.equal(ok, n)
})

t.test('random strings as DIDs and addresses only ever throw typed errors', async (t) => {
  const alphabet = 'did:key:z6Mk123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz/._~-0OIl '
  let ok = 0
  const n = 3000
  for (let i = 0; i < n; i++) {
    const s = (rand() < 0.5 ? alice.did.slice(0, int(alice.did.length + 1)) : '') + Array.from({ length: int(60) }, () => alphabet[int(alphabet.length)]).join('')
    try {
      parseAddress(s)
      publicKeyFromDid(s.split('/')[0]!)
      ok++
    } catch (err) {
      if (err instanceof IdentityError) ok++
      else t.fail(`untyped ${String(err)} for ${JSON.stringify(s)}`)
    }
  }
  t.equal(ok, n)
})

t.test('random and mutated capability tokens are refused with a typed error', async (t) => {
  const root = NodeKey.generate()
  const t1 = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir', limits: { cpu: 4 } }], ttlMs: 3_600_000 })
  const t2 = await delegateCapability(alice, t1, { audience: bob.did, abilities: [{ can: '/noir/deploy', limits: { cpu: 2 } }] })
  const weird = await createJWT({ aud: alice.did, exp: Math.floor(T0 / 1000) + 60, att: randomJson() as never, prf: randomJson() as never }, { issuer: root.did, signer: EdDSASigner(root.exportSeed()), alg: 'EdDSA' })
  const sources = [t1, t2, weird]
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.'
  let ok = 0
  const n = 1500
  for (let i = 0; i < n; i++) {
    const src = sources[int(sources.length)]!
    let tok: string
    if (i % 5 === 0) tok = Array.from({ length: int(300) }, () => chars[int(chars.length)]).join('')
    else {
      const a = src.split('')
      for (let k = 0; k < 1 + int(3); k++) a[int(a.length)] = chars[int(chars.length)]!
      tok = a.join('')
    }
    const v = new CapabilityVerifier({ trustedRoots: [root.did], now: () => T0 })
    try {
      await v.verify(tok)
      if (tok === src && src !== weird) ok++
      else t.fail(`accepted a corrupted token (FUZZ_SEED=${SEED}): ${tok}`)
    } catch (err) {
      if (err instanceof IdentityError) ok++
      else t.fail(`untyped ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} (FUZZ_SEED=${SEED})`)
    }
  }
  t.equal(ok, n)
})
