// The market's boundary with real daemons (separate processes, Docker): a third-party node fences someone
// else's slot, directly and over pubsub; and a deployment that no provider can start must end, with its
// reason, with every reservation made for it given back.
import t from 'tap'
import { eventually, startConnectedMesh, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../orchestrator/orchestrator.ts'
import { MARKET_ACTOR, MarketBehavior, Topics } from '../orchestrator/protocol.ts'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeKey } from '../../identity/keys.ts'
import { signBidRequest } from '../bidding/messages.ts'
import { validateWorkload, type Workload } from '../workload/workload.ts'
import { Catalog } from '../../appliance/catalog/catalog.ts'
import { demoServiceModule } from '../../appliance/executor/wasm/demo-modules.ts'
import { encodeBroadcast } from '../../p2p/pubsub.ts'
import { Probe } from '../../p2p/test/probe.ts'
import { randomUUID } from 'node:crypto'
import { workloadDigest } from '../contracts/contract.ts'
import { CONTRACT_TAG, signBody } from '../contracts/signed.ts'
import type { ApiCallError } from '../../appliance/daemon/errors.ts'

const IMAGE = 'noir/busybox:latest'

const service = (name: string, image = IMAGE) => ({
  apiVersion: 'noir/v1', kind: 'service', name,
  runtime: { type: 'container', image, command: ['sh', '-c', 'while true; do echo tick; sleep 1; done'] },
  resources: { cpu: 0.2, memory: '32Mi' },
})

const view = (d: DaemonHandle, id: string) => d.api.get<DeploymentView>(`/v1/deployments/${id}`)
const reservations = async (d: DaemonHandle) => (await d.api.get<{ reservations: { id: string; state: string }[] }>('/v1/reservations')).reservations

t.test('the market against a third party and against work that cannot start', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const { nodes } = await startConnectedMesh(t, 3, { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 600 } })
  const [a, b, c] = nodes as [DaemonHandle, DaemonHandle, DaemonHandle]

  await t.test('a bid request naming a path on the provider\'s disk is refused before anything is opened', async (t) => {
    // As a stranger would: its own fresh key signs a bid request whose workload skips validation.
    const stranger = NodeKey.generate()
    const good = validateWorkload({ ...service('path-attack'), runtime: { type: 'wasm', module: 'hello' } })
    const messages = new Set<string>()
    for (const path of [join(b.home, 'keystore.json'), '../keystore.json', '/etc/passwd', '/nonexistent/file']) {
      const req = signBidRequest(stranger, { deploymentId: `attack-${path.length}`, workload: { ...good, runtime: { type: 'wasm', module: path } } as Workload, count: 1 })
      const err = await a.api.post('/v1/actor/send', { to: `${b.did}/${MARKET_ACTOR}`, behavior: MarketBehavior.bid, body: req as never, ask: true })
        .then(() => undefined, (e: unknown) => e as Error)
      t.equal(err?.name, 'InvalidTermsError', `module ${path} is refused`)
      t.match(err?.message, /\$\.runtime\.module: .*never a path/, 'naming the field')
      messages.add(err?.message ?? '')
    }
    t.equal(messages.size, 1, 'the same answer whether the file exists or not (no existence oracle)')
  })

  await t.test('a proposal whose price is not whole µNLC (a float, a negative, an exponent, too long) is refused by field, and a v1 one as v1', async (t) => {
    // As a stranger would: its own key signs terms with a bad price; a's node carries them to b's market actor.
    const stranger = NodeKey.generate()
    const w = validateWorkload(service('price-attack'))
    const terms = (pricePerHour: unknown, v = 2) => ({
      v, id: randomUUID(), deploymentId: 'price-attack', workloadName: w.name, kind: w.kind, slot: 'price-attack/0', epoch: 1, consumer: stranger.did,
      provider: b.did, providerOwner: b.did, bidId: randomUUID(), resources: w.resources, pricePerHour, lane: w.lane, role: 'replica', durationSeconds: 60,
      startsAt: Date.now(), endsAt: Date.now() + 60_000, workloadDigest: workloadDigest(w),
    })
    const propose = (x: Record<string, unknown>) =>
      a.api.post('/v1/actor/send', { to: `${b.did}/${MARKET_ACTOR}`, behavior: MarketBehavior.propose, body: { contract: { terms: x, consumerSig: signBody(stranger, CONTRACT_TAG, x) }, workload: w } as never, ask: true })
        .then(() => undefined, (e: unknown) => e as ApiCallError)
    const before = (await b.api.get<{ contracts: unknown[] }>('/v1/contracts')).contracts.length
    for (const price of [0.5, '0.5', -1, '-1', '1e6', 1e21, '01', '9'.repeat(40), null]) {
      const err = await propose(terms(price))
      t.equal(err?.name, 'InvalidTermsError', `price ${JSON.stringify(price)} is refused`)
      t.match(err?.message, /'pricePerHour' must be a decimal string of whole µNLC/, 'naming the field')
      t.match(err?.data, { field: 'pricePerHour' }, 'and the field in the data')
    }
    const v1 = await propose(terms(0.5, 1))
    t.equal(v1?.name, 'UnsupportedTermsVersionError', 'terms v1 (a float price) are refused as such')
    t.match(v1?.message, /v2 is required/)
    t.equal((await b.api.get<{ contracts: unknown[] }>('/v1/contracts')).contracts.length, before, 'nothing stored')
    t.same(await reservations(b), [], 'nothing reserved')
  })

  await t.test('a broadcast bid request is answered only for an orchestrator the provider is connected to (a fresh key is refused before any work)', async (t) => {
    type Dropped = { services: { orchestration: { bidAnswers: { sent: number; dropped: Record<string, number> } } } }
    const answers = async (d: DaemonHandle) => (await d.api.get<Dropped>('/v1/status')).services.orchestration.bidAnswers
    const probe = await Probe.start({ bootstrap: a.multiaddrs })
    t.teardown(() => probe.stop())
    await eventually(() => probe.mesh.host.services.pubsub.getSubscribers(Topics.bidRequests).length > 0 || undefined, 20_000)
    await new Promise((r) => setTimeout(r, 1_500)) // grafted into a's mesh
    const workload = validateWorkload(service('who-is-answered'))
    const before = await answers(a)
    // signed by a key no node is connected to
    const stranger = NodeKey.generate()
    const fromStranger = encodeBroadcast(stranger, Topics.bidRequests, signBidRequest(stranger, { deploymentId: 'stranger', workload, count: 1 }) as never)
    await probe.mesh.host.services.pubsub.publish(Topics.bidRequests, fromStranger)
    const refused = await eventually(async () => {
      const x = await answers(a)
      return (x.dropped['orchestrator-not-connected'] ?? 0) > (before.dropped['orchestrator-not-connected'] ?? 0) && x
    }, 10_000)
    t.pass('the stranger\'s request was refused before any work')
    t.equal(refused.sent, before.sent, 'and nothing was sent to it')
    // signed by the probe itself, which holds a connection to a
    const own = encodeBroadcast(probe.key, Topics.bidRequests, signBidRequest(probe.key, { deploymentId: 'connected', workload, count: 1 }) as never)
    await probe.mesh.host.services.pubsub.publish(Topics.bidRequests, own)
    const tried = await eventually(async () => {
      const x = await answers(a)
      const attempts = x.sent + Object.entries(x.dropped).filter(([k]) => k.startsWith('failed:')).reduce((n, [, v]) => n + v, 0)
      const before2 = refused.sent + Object.entries(refused.dropped).filter(([k]) => k.startsWith('failed:')).reduce((n, [, v]) => n + v, 0)
      return attempts > before2 && x
    }, 15_000)
    t.equal(tried.dropped['orchestrator-not-connected'], refused.dropped['orchestrator-not-connected'], 'the connected orchestrator\'s request was answered (its answer went to the probe, which runs no orchestrator)')
  })

  await t.test('a module installed in one provider\'s catalog runs there by name; nodes without it decline', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'noir-catalog-daemons-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'svc.wasm'), demoServiceModule())
    new Catalog(c.home).add('wasm', 'hello-svc', join(dir, 'svc.wasm'))
    const w = { ...service('by-name'), runtime: { type: 'wasm', module: 'hello-svc' } }
    const d = await a.api.post<DeploymentView>('/v1/deployments', { workload: w })
    const v = await eventually(async () => {
      const x = await view(a, d.id)
      return (x.phase === 'running' || x.phase === 'failed') && x
    }, 60_000, 200)
    t.equal(v.phase, 'running', `${v.reason ?? ''} ${JSON.stringify(v.infeasible?.silent ?? [])}`)
    t.equal(v.replicas[0]!.node, c.did, 'placed on the only node whose owner installed it')
    t.ok(v.events.some((e) => /decline/.test(e.msg)), 'the others declined')
    const pathDeploy = await a.api.post('/v1/deployments', { workload: { ...service('by-path'), runtime: { type: 'wasm', module: join(dir, 'svc.wasm') } } })
      .then(() => undefined, (e: unknown) => e as Error)
    t.equal(pathDeploy?.name, 'InvalidWorkloadError', 'a deploy naming a path is refused at once')
    await a.api.post(`/v1/deployments/${d.id}/stop`)
  })

  await t.test('a deployment no provider can start fails with its reason, and no reservation is left', async (t) => {
    const d = await a.api.post<DeploymentView>('/v1/deployments', { workload: service('cannot-start', 'noir/not-on-any-node:1') })
    const started = Date.now()
    const v = await eventually(async () => {
      const x = await view(a, d.id)
      return (x.phase === 'failed' || x.phase === 'running') && x
    }, 120_000, 200)
    t.equal(v.phase, 'failed', 'it reached a terminal phase instead of provisioning forever')
    t.match(v.reason, /could not be placed|start/, `with its reason: ${v.reason}`)
    t.comment(`failed after ${Date.now() - started} ms: ${v.reason}`)
    t.ok(v.events.some((e) => /WorkloadStartError|ImageNotFoundError/.test(e.msg)), 'the events name why the starts failed')
    for (const n of nodes) t.same(await reservations(n), [], `node ${n.did.slice(-6)} holds no reservation`)
  })

  await t.test('a third party cannot fence another consumer\'s slot, directly or over pubsub', async (t) => {
    const d = await a.api.post<DeploymentView>('/v1/deployments', { workload: service('fence-target') })
    const v = await eventually(async () => {
      const x = await view(a, d.id)
      return x.phase === 'running' && x
    }, 60_000, 200)
    const rep = v.replicas[0]!
    const provider = nodes.find((n) => n.did === rep.node)!
    const attacker = nodes.find((n) => n !== provider && n !== a) ?? nodes.find((n) => n !== provider)!
    t.not(attacker.did, provider.did)

    // Directly: the attacker's node asks the provider's market actor, signed with its own key.
    for (const epoch of [rep.epoch + 1, 2 ** 31 - 1]) {
      const err = await attacker.api.post('/v1/actor/send', { to: `${provider.did}/${MARKET_ACTOR}`, behavior: MarketBehavior.fence, body: { slot: rep.slot, epoch }, ask: true })
        .then(() => undefined, (e: unknown) => e as Error)
      t.equal(err?.name, 'UnknownSlotError', `a direct fence to ${epoch} is answered with UnknownSlotError`)
    }
    const huge = await attacker.api.post('/v1/actor/send', { to: `${provider.did}/${MARKET_ACTOR}`, behavior: MarketBehavior.fence, body: { slot: rep.slot, epoch: 2 ** 53 - 1 }, ask: true })
      .then(() => undefined, (e: unknown) => e as Error)
    t.equal(huge?.name, 'InvalidTermsError', 'an epoch of 2^53-1 is refused as malformed')
    // Over pubsub, as the report did it: thousands of slots, the real one among them.
    const fences = Array.from({ length: 999 }, (_, i) => ({ slot: `${d.id}/${i + 7}`, epoch: 2 ** 31 - 1 }))
    await attacker.api.post('/v1/pubsub/publish', { topic: Topics.fences, body: { fences: [{ slot: rep.slot, epoch: 2 ** 31 - 1 }, ...fences] } })
    await new Promise((r) => setTimeout(r, 2500))
    const after = await view(a, d.id)
    t.equal(after.phase, 'running', 'the deployment still runs')
    t.equal(after.replicas[0]!.node, rep.node, 'on the same node')
    t.equal(after.replicas[0]!.epoch, rep.epoch, 'at the same epoch')
    const contracts = (await provider.api.get<{ contracts: { slot: string; status: string; epoch: number }[] }>('/v1/contracts')).contracts
    t.ok(contracts.some((k) => k.slot === rep.slot && k.status === 'active'), 'the provider\'s contract is still active')
    const priced = (await provider.api.get<{ contracts: { slot: string; pricePerHour: unknown }[] }>('/v1/contracts')).contracts.find((k) => k.slot === rep.slot)
    t.match(priced?.pricePerHour, /^[1-9][0-9]*$/, 'its price is whole µNLC, in digits')

    // The consumer itself still stops its deployment, and its slots could be placed again.
    const stopped = await a.api.post<DeploymentView>(`/v1/deployments/${d.id}/stop`)
    t.equal(stopped.phase, 'stopped')
  })
})
