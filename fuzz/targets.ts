// Every function that takes another party's bytes, as a fuzz target (spec/security.md): a generator of hostile
// inputs (random values and mutations of a valid sample) and the call. The property, checked by
// fuzz/test/targets.test.ts (a few thousand inputs each) and `npm run fuzz` (long runs): every input is
// accepted or refused with one of the project's own typed errors; never a TypeError, RangeError or the like.
import * as fc from 'fast-check'
import { IdentityError } from '../identity/errors.ts'
import { P2PError } from '../p2p/errors.ts'
import { OrchestrationError } from '../actors/errors.ts'
import { ApplianceError } from '../appliance/errors.ts'
import { DaemonError } from '../appliance/daemon/errors.ts'
import { NoirError } from '../core/errors.ts'
import { NodeKey } from '../identity/keys.ts'
import { decodeEnvelope, signEnvelope } from '../identity/envelope.ts'
import { decodeStreamFrame, encodeMember, encodeSeal, signSeal } from '../identity/sealed-stream.ts'
import { verifyRevocation, issueCapability, CapabilityVerifier, createRevocation } from '../identity/capabilities.ts'
import { encodeFrames, FrameDecoder } from '../p2p/framing.ts'
import { encodeBroadcast, verifyBroadcast } from '../p2p/pubsub.ts'
import { signBid, signBidRequest, verifyBid, verifyBidRequest } from '../actors/bidding/messages.ts'
import { proposeContract, verifyProposal, workloadDigest } from '../actors/contracts/contract.ts'
import { parseWorkload, validateWorkload, workloadFromWire, type Workload } from '../actors/workload/workload.ts'
import { parseAllocationRequest, parseReservationRequest } from '../appliance/allocation/request.ts'
import { Catalog } from '../appliance/catalog/catalog.ts'

/** The project's own error families: a refusal must be one of these. */
export const TYPED_ERRORS = [IdentityError, P2PError, OrchestrationError, ApplianceError, DaemonError, NoirError] as const
export const isTypedError = (e: unknown): boolean => TYPED_ERRORS.some((C) => e instanceof C)

export interface FuzzTarget {
  name: string
  input: fc.Arbitrary<unknown>
  run: (x: unknown) => unknown | Promise<unknown>
}

const key = NodeKey.generate()
const now = Date.now()
const workload: Workload = validateWorkload({ apiVersion: 'noir/v1', kind: 'service', name: 'fuzz', runtime: { type: 'wasm', module: 'hello' }, resources: { cpu: 0.5, memory: '64Mi' }, ports: [{ port: 80 }], env: { A: 'b' } })
const bidRequest = signBidRequest(key, { deploymentId: 'd1', workload, count: 1, now })
const bid = signBid(key, { requestId: bidRequest.body.id, deploymentId: 'd1', owner: key.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['wasm'], free: { cpu: 1, memoryBytes: 2 ** 30, gpu: 0, vramBytes: 0, diskBytes: 0 }, pricePerHour: '1000000', now })
const proposal = proposeContract(key, {
  deploymentId: 'd1', workloadName: 'fuzz', kind: 'service', slot: 'd1/0', epoch: 1, provider: NodeKey.generate().did, providerOwner: key.did, bidId: bid.body.id,
  resources: workload.resources, pricePerHour: '1000000', lane: 'best-effort', role: 'replica', durationSeconds: 3600, workloadDigest: workloadDigest(workload), now,
})
const envelope = signEnvelope(key, { from: `${key.did}/a`, to: `${NodeKey.generate().did}/b`, behavior: '/x/y', body: { n: 1 } }).bytes
const broadcast = encodeBroadcast(key, 'noir/bids/v1', bidRequest as never, { now })
const member = encodeMember(1, 0, envelope)
const seal = encodeSeal(1, 1, signSeal(key, [envelope]))
const token = await issueCapability(key, { audience: NodeKey.generate().did, abilities: [{ can: '/x' }], ttlMs: 3_600_000 })
const revocation = createRevocation(key, token, now)
const verifier = new CapabilityVerifier({ trustedRoots: [key.did] })

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T

/** A valid JSON sample with one value somewhere inside replaced by a random one (or a key removed). */
function mutated(sample: unknown): fc.Arbitrary<unknown> {
  const paths: (string | number)[][] = []
  const walk = (v: unknown, path: (string | number)[]): void => {
    paths.push(path)
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]))
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k])
  }
  walk(sample, [])
  const odd = fc.oneof(fc.jsonValue(), fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 2 ** 60, undefined, '../../etc/passwd', '', '\u0000', 'x'.repeat(70_000)))
  return fc.tuple(fc.nat(paths.length - 1), odd, fc.boolean()).map(([i, value, remove]) => {
    const out = clone(sample) as Record<string | number, unknown>
    const path = paths[i]!
    if (path.length === 0) return value
    let parent: Record<string | number, unknown> = out
    for (const p of path.slice(0, -1)) parent = parent[p] as Record<string | number, unknown>
    const last = path.at(-1)!
    if (remove && !Array.isArray(parent)) delete parent[last]
    else parent[last] = value
    return out
  })
}

/** A valid byte string with bytes flipped, cut or extended. */
function mutatedBytes(sample: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.tuple(fc.nat(sample.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => { const b = Uint8Array.from(sample); b[i] = b[i]! ^ x; return b }),
    fc.nat(sample.length).map((n) => sample.subarray(0, n)),
    fc.uint8Array({ maxLength: 64 }).map((extra) => Uint8Array.from([...sample, ...extra])),
  )
}

const bytesOr = (sample: Uint8Array): fc.Arbitrary<unknown> => fc.oneof(fc.uint8Array({ maxLength: 2048 }), mutatedBytes(sample))
const jsonOr = (sample: unknown): fc.Arbitrary<unknown> => fc.oneof(fc.jsonValue(), mutated(sample))
const asBytes = (x: unknown): Uint8Array => x as Uint8Array

export const targets: FuzzTarget[] = [
  { name: 'envelope decoder', input: bytesOr(envelope), run: (x) => decodeEnvelope(asBytes(x)) },
  { name: 'actor wire frame decoder', input: bytesOr(encodeFrames([envelope, envelope])), run: (x) => { const d = new FrameDecoder(1 << 20); d.push(asBytes(x)); d.end() } },
  { name: 'sealed-stream member', input: bytesOr(member), run: (x) => decodeStreamFrame(asBytes(x), 1 << 20) },
  { name: 'sealed-stream seal', input: bytesOr(seal), run: (x) => decodeStreamFrame(asBytes(x), 1 << 20) },
  { name: 'pubsub message', input: bytesOr(broadcast), run: (x) => verifyBroadcast(asBytes(x), 'noir/bids/v1', { now, maxBytes: 64 * 1024, maxTtlMs: 600_000, clockSkewMs: 30_000 }) },
  { name: 'bid request', input: jsonOr(bidRequest), run: (x) => verifyBidRequest(x, now) },
  { name: 'bid', input: jsonOr(bid), run: (x) => verifyBid(x, { now }) },
  { name: 'contract proposal', input: jsonOr(proposal), run: (x) => verifyProposal(x) },
  { name: 'capability token', input: fc.oneof(fc.string(), fc.nat(token.length - 1).map((i) => token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1))), run: (x) => verifier.verify(x as string) },
  { name: 'revocation record', input: jsonOr(revocation), run: (x) => verifyRevocation(x as never) },
  { name: 'workload from the wire', input: jsonOr(workload), run: (x) => workloadFromWire(x) },
  { name: 'workload from YAML', input: fc.oneof(fc.string(), mutated({ apiVersion: 'noir/v1', kind: 'job', name: 'j', runtime: { type: 'container', image: 'x' }, resources: { cpu: 1, memory: '1Gi' } }).map((v) => JSON.stringify(v) ?? '')), run: (x) => parseWorkload(x as string) },
  { name: 'local API: allocation request', input: jsonOr({ id: 'a', runtime: { kind: 'docker', image: 'x', command: ['sh'] }, resources: { cpu: 1, memory: '64MiB' }, env: { A: 'b' }, ports: [{ containerPort: 80 }] }), run: (x) => parseAllocationRequest(x) },
  { name: 'local API: reservation request', input: jsonOr({ resources: { cpu: 1, memory: '64MiB' }, ttlMs: 1000 }), run: (x) => parseReservationRequest(x) },
  { name: 'catalog name', input: fc.string(), run: (x) => new Catalog('/nonexistent-fuzz-home').resolve('wasm', x as string) },
]
