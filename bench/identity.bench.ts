// Identity benchmarks: envelope sign+verify beside raw node:crypto Ed25519 on the same bytes, batch-signed
// envelopes, @noble/ed25519, capability verification cold vs cached, and the Ed25519 this process uses
// (identity/ed25519.ts: libsodium where it loads) against node:crypto's, sign and verify apart. One core,
// same run, as ratios.
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto'
import * as ed from '@noble/ed25519'
import { printSection, opsPerSecond } from './report.ts'
import {
  CapabilityVerifier,
  delegateCapability,
  EnvelopeVerifier,
  issueCapability,
  NodeKey,
  signEnvelope,
  signEnvelopeBatch,
  type EnvelopeInit,
} from '../identity/index.ts'
import { ed25519, nodeCryptoEd25519 } from '../identity/ed25519.ts'

ed.hashes.sha512 = (m) => new Uint8Array(createHash('sha512').update(m).digest())

const MS = 1500
const alice = NodeKey.generate()
const bob = NodeKey.generate()
const init: EnvelopeInit = {
  from: `${alice.did}/orchestrator`,
  to: `${bob.did}/alloc/7f3a`,
  behavior: '/noir/alloc/status',
  body: { cpu: 2, memoryMiB: 512, state: 'running', note: 'a typical small actor message' },
}

// ---- envelope sign+verify vs raw node:crypto on the same bytes ------------------------------------------------
const sample = signEnvelope(alice, init).bytes
const signed = Buffer.concat([Buffer.from('noir:msg:v1\0'), sample.subarray(66)]) // exactly what the envelope signs
const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const verifier = new EnvelopeVerifier()
const rawPair = (): void => {
  const s = sign(null, signed, privateKey)
  if (!verify(null, signed, publicKey, s)) throw new Error('raw verify failed')
}
const envelopePair = (): void => {
  verifier.verify(signEnvelope(alice, init).bytes)
}
/** Alternates short slices of both so machine noise hits them alike; returns ops/s of each. */
async function interleaved(a: () => void, b: () => void, slices = 10): Promise<[number, number]> {
  let ra = 0
  let rb = 0
  for (let i = 0; i < slices; i++) {
    ra += await opsPerSecond(a, MS / slices)
    rb += await opsPerSecond(b, MS / slices)
  }
  return [ra / slices, rb / slices]
}
const [raw, envelope] = await interleaved(rawPair, envelopePair)
const rawVerify = await opsPerSecond(() => {
  verify(null, signed, publicKey, sample.subarray(2, 66))
}, MS)

// ---- batch-signed envelopes ------------------------------------------------------------------------------------
const BATCH = 64
function timeBatchVerify(rounds: number): number {
  const batches = Array.from({ length: rounds }, () => signEnvelopeBatch(alice, Array.from({ length: BATCH }, () => init)))
  const v = new EnvelopeVerifier()
  const start = process.hrtime.bigint()
  for (const b of batches) for (const s of b) v.verify(s.bytes)
  return (rounds * BATCH) / (Number(process.hrtime.bigint() - start) / 1e9)
}
timeBatchVerify(20) // warm-up
const batchVerify = timeBatchVerify(400)
const batchBoth = await opsPerSecond(() => {
  const v = new EnvelopeVerifier()
  for (const s of signEnvelopeBatch(alice, Array.from({ length: BATCH }, () => init))) v.verify(s.bytes)
}, MS, 5) * BATCH

// ---- @noble/ed25519 ---------------------------------------------------------------------------------------------
const seed = alice.exportSeed()
const noblePub = ed.getPublicKey(seed)
const noble = await opsPerSecond(() => {
  const s = ed.sign(signed, seed)
  if (!ed.verify(s, signed, noblePub)) throw new Error('noble verify failed')
}, MS, 10)
seed.fill(0)

// ---- the chosen Ed25519 against node:crypto's, sign and verify apart --------------------------------------------
const edSeed = alice.exportSeed()
const chosenSign = ed25519.signer(edSeed, alice.publicKey)
const nodeSign = nodeCryptoEd25519.signer(edSeed, alice.publicKey)
edSeed.fill(0)
const edSig = chosenSign(signed)
const chosenKey = ed25519.prepare(alice.publicKey)
const nodeKey = nodeCryptoEd25519.prepare(alice.publicKey)
const [chosenSigns, nodeSigns] = await interleaved(() => void chosenSign(signed), () => void nodeSign(signed))
const [chosenVerifies, nodeVerifies] = await interleaved(
  () => {
    if (!ed25519.verify(chosenKey, signed, edSig)) throw new Error('verify failed')
  },
  () => {
    if (!nodeCryptoEd25519.verify(nodeKey, signed, edSig)) throw new Error('verify failed')
  },
)

// ---- capabilities -------------------------------------------------------------------------------------------------
const root = NodeKey.generate()
const parent = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: 3_600_000 })
const token = await delegateCapability(alice, parent, { audience: bob.did, abilities: [{ can: '/noir/deploy' }] })
const capCold = await opsPerSecond(() => new CapabilityVerifier({ trustedRoots: [root.did] }).verify(token), MS, 5)
const capVerifier = new CapabilityVerifier({ trustedRoots: [root.did] })
const capCached = await opsPerSecond(() => capVerifier.verify(token, { audience: bob.did, ability: '/noir/deploy/status' }), MS)

printSection('identity: envelopes (one core)', [
  { name: 'envelope sign+verify', value: envelope, unit: 'ops/s', better: 'higher', baseline: { name: 'raw node:crypto sign+verify', value: raw }, target: '>= 0.8' },
  { name: 'batch-signed envelopes verified (64/batch)', value: batchVerify, unit: 'msg/s', better: 'higher', baseline: { name: 'raw node:crypto verify', value: rawVerify } },
  { name: 'batch sign+verify per message (64/batch)', value: batchBoth, unit: 'msg/s', better: 'higher', baseline: { name: 'raw node:crypto sign+verify', value: raw } },
  { name: '@noble/ed25519 sign+verify', value: noble, unit: 'ops/s', better: 'higher', baseline: { name: 'raw node:crypto sign+verify', value: raw } },
])
printSection(`identity: Ed25519 in use (${ed25519.name}) against node:crypto's, same key and bytes (one core)`, [
  { name: `${ed25519.name} sign`, value: chosenSigns, unit: 'ops/s', better: 'higher', baseline: { name: 'node:crypto sign', value: nodeSigns } },
  { name: `${ed25519.name} verify`, value: chosenVerifies, unit: 'ops/s', better: 'higher', baseline: { name: 'node:crypto verify', value: nodeVerifies } },
])
printSection('identity: capabilities (2-link chain)', [
  { name: 'capability verify, cached chain', value: capCached, unit: 'ops/s', better: 'higher', baseline: { name: 'cold (did-jwt verifyJWT x2)', value: capCold } },
])
