// Prints the test vectors of spec/identity.md, spec/envelope.md and spec/capabilities.md (run by hand:
// `node identity/test/gen-vectors.ts`). The tests read the vectors back from the spec files.
import { createJWT } from 'did-jwt'
import { canonicalJson, createRevocation, NodeKey, signEnvelope, signEnvelopeBatch, tokenHash } from '../index.ts'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const seedA = new Uint8Array(32).fill(0x11)
const seedB = new Uint8Array(32).fill(0x22)
const a = NodeKey.fromSeed(seedA)
const b = NodeKey.fromSeed(seedB)

const now = 1767225600000 // 2026-01-01T00:00:00Z
const single = signEnvelope(a, {
  from: `${a.did}/orchestrator`, to: `${b.did}/alloc/7f3a`, behavior: '/noir/alloc/status',
  body: { cpu: 2, note: 'héllo', tags: ['a', 'b'] }, id: 'msg-0001', nonce: 'AAAAAAAAAAAAAAAAAAAAAA', now, ttlMs: 30000,
  proofs: ['eyJ.example.jwt'], replyTo: `${a.did}/orchestrator`,
})
console.log('## envelope-single')
console.log(JSON.stringify({
  seed: hex(seedA), envelope: single.envelope,
  payload: Buffer.from(single.bytes.subarray(66)).toString('utf8'),
  signature: hex(single.bytes.subarray(2, 66)), wire: hex(single.bytes),
}, null, 2))

const batch = signEnvelopeBatch(a, [0, 1, 2].map((i) => ({
  from: a.did, to: b.did, behavior: '/noir/ping', body: { seq: i }, id: `b-${i}`, nonce: `BBBBBBBBBBBBBBB${i}`, now, ttlMs: 30000,
})))
console.log('## envelope-batch')
console.log(JSON.stringify({ seed: hex(seedA), wires: batch.map((s) => hex(s.bytes)) }, null, 2))

console.log('## canonical-json')
const inputs = ['{"b":2,"a":1}', '{"z":[3,{"y":null,"x":true}],"é":"\\u00e9","\\u20ac":1,"\\ud83d\\ude00":0,"\\u0080":2}', '[1e21,1.5e-7,-0,0.1,100]', '"tab\\tquote\\" ctrl\\u0001 slash/"']
console.log(JSON.stringify(inputs.map((i) => ({ input: i, canonical: canonicalJson(JSON.parse(i)) })), null, 2))

const token = await createJWT(
  { aud: b.did, iat: 1767225600, exp: 4102444800, att: [{ can: '/noir/deploy', limits: { cpu: 4 } }], nnc: 'vector' },
  { issuer: a.did, signer: async (d) => Buffer.from(a.sign(typeof d === 'string' ? Buffer.from(d) : d)).toString('base64url'), alg: 'EdDSA' },
  { alg: 'EdDSA', typ: 'JWT' },
)
console.log('## capability')
console.log(JSON.stringify({ issuerSeed: hex(seedA), issuer: a.did, audience: b.did, token, sha256: tokenHash(token) }, null, 2))
console.log('## revocation')
console.log(JSON.stringify({ seed: hex(seedA), revocation: createRevocation(a, token, now) }, null, 2))
