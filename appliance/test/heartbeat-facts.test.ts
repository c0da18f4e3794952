import t from 'tap'
import { HeartbeatPublisher, parseHeartbeat, type HeartbeatBody } from '../heartbeat/heartbeat.ts'
import { machineArch, placementFacts, runtimesOf } from '../node-services/placement-facts.ts'
import { CapacityIndex } from '../../actors/placement/capacity-index.ts'
import { defaultPricePolicy } from '../../actors/placement/price.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'

const GiB = 2 ** 30
const did = 'did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH'
const resources = (cpu: number) => ({ cpu, memoryBytes: 4 * GiB, diskBytes: 20 * GiB, gpu: 0 })

function publisher(facts: ReturnType<typeof placementFacts> | undefined): HeartbeatPublisher {
  return new HeartbeatPublisher({
    node: did, intervalMs: 1000, publish: async () => undefined,
    source: async () => ({
      capacity: { share: resources(2), used: resources(0.5), free: resources(1.5), ports: { range: [20000, 20999], used: 0, free: 1000 } },
      allocations: { total: 0, byState: {}, running: [] },
      load: { cpuNanos: 0, memoryBytes: 0 },
      ...(facts ? { facts } : {}),
    }),
  })
}

t.test('the facts come from the orchestration config, with the same defaults as the bids', async (t) => {
  const f = placementFacts({ orchestration: { region: 'eu-west', labels: { ssd: 'yes', bad: 3 }, owner: 'did:key:alice', price: { cpuPerHour: 2_000_000 } } }, did, ['container'])
  t.same(f, { owner: 'did:key:alice', arch: machineArch(), region: 'eu-west', labels: { ssd: 'yes' }, runtimes: ['container'], price: { ...defaultPricePolicy, cpuPerHour: 2_000_000 } })
  const d = placementFacts({}, did, [])
  t.equal(d.owner, did, 'no owner configured: the node is its own owner')
  t.equal(d.region, 'local')
  t.same(d.price, defaultPricePolicy)
  t.notOk('price' in placementFacts({ orchestration: { price: { cpuPerHour: -1 } } }, did, []), 'a bad price policy is left out, not sent')
  t.notOk('price' in placementFacts({ orchestration: { price: { cpuPerHour: 0.5 } } }, did, []), 'so is one with a fraction of a µNLC')
  t.same(runtimesOf({ docker: { ok: true }, wasm: { ok: true }, microvm: { ok: false }, actor: { ok: true } }), ['container', 'wasm', 'actor'])
})

t.test('a heartbeat with facts is indexed, and one of an older node (no facts) is still a heartbeat', async (t) => {
  const body = await publisher(placementFacts({ orchestration: { region: 'eu' } }, did, ['container', 'wasm'])).build()
  t.ok(parseHeartbeat(body), 'a heartbeat as before')
  const index = new CapacityIndex()
  index.observe(did, JSON.parse(JSON.stringify(body)) as HeartbeatBody) // as it crosses the wire
  const w = validateWorkload({ apiVersion: 'noir/v1', kind: 'service', name: 'web', runtime: { type: 'container', image: 'x' }, resources: { cpu: 1, memory: '1Gi' }, constraints: { region: ['eu'] } })
  t.same(index.sample({ workload: w, want: 2 }).dids, [did], 'a candidate for a workload it fits')
  t.equal(index.get(did)!.free.cpu, 1.5)

  const old = await publisher(undefined).build()
  t.notOk('facts' in old)
  t.ok(parseHeartbeat(old))
  const other = new CapacityIndex()
  other.observe(did, old)
  t.equal(other.stats().withoutFacts, 1, 'held, but no candidate')
})
