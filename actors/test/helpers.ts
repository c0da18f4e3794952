// Test helpers for actors/ unit tests: offers and workloads built in one line.
import type { NodeOffer } from '../placement/offer.ts'
import { validateWorkload, type Workload } from '../workload/workload.ts'

const GiB = 2 ** 30

export function offer(i: number, over: Partial<NodeOffer> = {}): NodeOffer {
  return {
    nodeDid: `did:key:node${String(i).padStart(5, '0')}`,
    ownerDid: `did:key:owner${i}`,
    arch: 'amd64',
    region: 'eu',
    labels: {},
    runtimes: ['container', 'wasm'],
    free: { cpu: 4, memoryBytes: 8 * GiB, gpu: 0, vramBytes: 0, diskBytes: 100 * GiB },
    pricePerHour: '1000000',
    latencyMs: 1,
    trust: 0.5,
    ...over,
  }
}

export function workload(over: Record<string, unknown> = {}): Workload {
  return validateWorkload({
    apiVersion: 'noir/v1', kind: 'service', name: 'web',
    runtime: { type: 'container', image: 'noir/busybox:latest' },
    resources: { cpu: 1, memory: '1Gi' },
    ...over,
  })
}
