// Admission: what refusing a stranger's broadcast costs before any signature work (the neighbour's budget,
// the cheap checks, the strangers' shared budget), beside checking that message's signature, the step
// admission spares, in the same run on one core. The target: >= 50,000 refusals/s per core.
import { printSection, opsPerSecond } from './report.ts'
import { NodeKey } from '../identity/keys.ts'
import { BucketTable } from '../p2p/admission.ts'
import { checkBroadcastSignature, encodeBroadcast, parseBroadcast } from '../p2p/pubsub.ts'
import { signBidRequest } from '../actors/bidding/messages.ts'
import { validateWorkload } from '../actors/workload/workload.ts'
import { Topics } from '../actors/orchestrator/protocol.ts'

const MS = 1500
const workload = validateWorkload({ apiVersion: 'noir/v1', kind: 'job', name: 'flood', runtime: { type: 'container', image: 'noir/busybox:latest' }, resources: { cpu: 0.1, memory: '16Mi' } })
// A pool of bid requests, each from a fresh key (as a flood would send them).
const pool: Uint8Array[] = []
for (let i = 0; i < 512; i++) {
  const key = NodeKey.generate()
  pool.push(encodeBroadcast(key, Topics.bidRequests, signBidRequest(key, { deploymentId: `d-${i}`, workload, count: 1 }) as never, { ttlMs: 600_000 }))
}
const limits = { now: Date.now(), maxBytes: 64 * 1024, maxTtlMs: 10 * 60_000, clockSkewMs: 30_000 }
const neighbours = new BucketTable({ perSecond: 1e12, burst: 1e12 }, 4096) // the neighbour passes: the stranger budget refuses
const strangers = new BucketTable({ perSecond: 0, burst: 0 }, 1) // exhausted, as under a flood

let i = 0
const refuse = (): boolean => {
  const data = pool[i++ & 511]!
  if (!neighbours.take('peer', limits.now)) return false
  const v = parseBroadcast(data, Topics.bidRequests, limits)
  return v.from.length > 0 && strangers.take('*', limits.now) // false: refused before the signature
}
const refusals = await opsPerSecond(refuse, MS)
let j = 0
const verify = (): void => {
  const data = pool[j++ & 511]!
  const v = parseBroadcast(data, Topics.bidRequests, limits)
  checkBroadcastSignature(data, v.from)
}
const verifies = await opsPerSecond(verify, MS)
const junk = new Uint8Array(200).fill(7)
const refuseJunk = await opsPerSecond(() => {
  try {
    parseBroadcast(junk, Topics.bidRequests, limits)
  } catch {
    // malformed: refused
  }
}, MS)

printSection('admission: refusing a stranger\'s bid request before any signature work (one core)', [
  { name: 'stranger bid requests refused', value: refusals, unit: 'msg/s', baseline: { name: 'parse + Ed25519 check of the same', value: verifies }, better: 'higher', target: '>= 50,000 msg/s' },
  { name: 'junk (not a broadcast) refused', value: refuseJunk, unit: 'msg/s', baseline: { name: 'parse + Ed25519 check', value: verifies }, better: 'higher' },
])
