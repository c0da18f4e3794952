// Owner certification and the core pool with real daemons (spec/trust.md "Owner certification", "The core
// pool"): three daemons on 127.0.0.1, WASI jobs through the market. A orchestrates (it does not run the module)
// and trusts the operator's root R (config.json trustedRoots). B carries an owner certificate from Alice made
// with `noir owner certify` (Alice's own key home) and a core-membership certificate R made with `noir core
// certify`. C merely claims Alice as its owner (orchestration.owner, no certificate), carries a core
// certificate it signed itself, and undercuts B's price, so any placement that believed its claims would
// choose it. Shown: `owners.allow: [Alice]` lands on B only; `core: true` lands on B only; a plain job goes to
// the cheaper C (so C is a real candidate); `owners.deny: [Alice]` never lands on B (C declines it on its own
// claim); a node given another node's certificate does not start. Then `owners.distinct: true` with two more
// nodes, D (certified by Alice, cheap) and E (certified by Bob, by far the dearest), which run only a WASI
// service: two replicas among Alice's and Bob's nodes land on one of each (the score alone would put both on
// Alice's); three are infeasible with `distinct-owners`; and when the node of the replica that is not on
// Alice's is killed, the replacement does not go to a node of Alice's (the score alone would pick her other
// node when C is the one killed).
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { spawnSync } from 'node:child_process'
import { DaemonCluster, NOIR_BIN, TEST_PASSPHRASE, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'
import { Catalog } from '../../appliance/catalog/catalog.ts'
import { knownAnswerModule } from '../../appliance/executor/wasm/known-answer-module.ts'
import { demoServiceModule } from '../../appliance/executor/wasm/demo-modules.ts'
import { NodeKey } from '../../identity/keys.ts'
import { Keystore } from '../../identity/keystore.ts'
import { CORE_ABILITY, OWNER_ABILITY, signNodeCertificate, type NodeCertificate } from '../../actors/placement/node-certificate.ts'

const MODULE = 'noir-kat'
const SERVICE = 'noir-svc'
let jobs = 0
let services = 0
const service = (replicas: number, constraints: Record<string, unknown>) => ({
  apiVersion: 'noir/v1', kind: 'service', name: `spread-${++services}`,
  runtime: { type: 'wasm', module: SERVICE }, resources: { cpu: 0.1, memory: '32Mi' }, service: { replicas }, constraints,
})
const job = (constraints: Record<string, unknown> = {}) => ({
  apiVersion: 'noir/v1', kind: 'job', name: `owned-${++jobs}`,
  runtime: { type: 'wasm', module: MODULE }, env: { SEED: `owned-${jobs}` },
  resources: { cpu: 0.1, memory: '32Mi' }, job: { retries: 0, deadlineSeconds: 60 }, constraints,
})
const price = (cpuPerHour: number) => ({ cpuPerHour, memoryGiBPerHour: 250_000, minimumPerHour: 10_000 })

async function completed(a: DaemonHandle, w: Record<string, unknown>): Promise<DeploymentView> {
  return settled(a, w, ['completed', 'failed'])
}

/** Deploys `w` and waits (the status long poll) until its phase is one of `phases`. */
async function settled(a: DaemonHandle, w: Record<string, unknown>, phases: string[]): Promise<DeploymentView> {
  const d = await a.api.post<DeploymentView>('/v1/deployments', { workload: w })
  return eventually(async () => {
    const v = await a.api.get<DeploymentView>(`/v1/deployments/${d.id}?until=${phases.join(',')}&waitMs=20000`)
    return phases.includes(v.phase) && v
  }, 60_000, 100)
}

/** `noir <section> certify NODE` run with `home`'s key: the config.json section it prints. */
function certify(home: string, section: 'owner' | 'core', node: string): NodeCertificate {
  const r = spawnSync(process.execPath, [NOIR_BIN, '--home', home, section, 'certify', node, '--ttl', '30d'], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, NOIR_PASSPHRASE: TEST_PASSPHRASE },
  })
  if (r.status !== 0) throw new Error(`noir ${section} certify: ${r.stderr}`)
  return (JSON.parse(r.stdout) as Record<string, { certificate: NodeCertificate }>)[section]!.certificate
}

t.test('owners constraints and core: only on nodes with valid certificates', async (t) => {
  const cluster = new DaemonCluster()
  const dir = mkdtempSync(join(tmpdir(), 'noir-owners-'))
  t.teardown(async () => {
    await cluster.cleanup()
    rmSync(dir, { recursive: true, force: true })
  })
  const moduleFile = join(dir, 'kat.wasm')
  writeFileSync(moduleFile, knownAnswerModule())
  const serviceFile = join(dir, 'svc.wasm')
  writeFileSync(serviceFile, demoServiceModule())
  // Alice's and the operator root's key homes (as their owners keep them)
  const alice = NodeKey.generate()
  const bob = NodeKey.generate()
  const root = NodeKey.generate()
  const aliceHome = join(dir, 'alice')
  const rootHome = join(dir, 'root')
  await Keystore.create(aliceHome, TEST_PASSPHRASE, alice, { kdf: { N: 2 ** 14, r: 8, p: 1 } })
  await Keystore.create(rootHome, TEST_PASSPHRASE, root, { kdf: { N: 2 ** 14, r: 8, p: 1 } })

  const bKey = NodeKey.generate()
  const cKey = NodeKey.generate()
  const bOwner = certify(aliceHome, 'owner', bKey.did)
  t.equal(bOwner.body.issuer, alice.did, 'noir owner certify signs with the home\'s key')
  t.equal(bOwner.body.ability, OWNER_ABILITY)
  t.equal(bOwner.body.node, bKey.did)
  const bCore = certify(rootHome, 'core', bKey.did)
  t.equal(bCore.body.ability, CORE_ABILITY)

  const trust = { checks: false }
  const a = await cluster.start({ config: { trustedRoots: [root.did], orchestration: { price: price(5_000_000) }, trust } as never })
  const selfMadeCore = signNodeCertificate(cKey, { ability: CORE_ABILITY, node: cKey.did, ttlMs: 86_400_000 })
  // D and E: certified by Alice and by Bob (signed here: B's certificate is the one made with the CLI), the
  // cheapest and the dearest of all; they run only the service
  const dKey = NodeKey.generate()
  const eKey = NodeKey.generate()
  const ownedBy = (owner: NodeKey, node: NodeKey) => ({ certificate: signNodeCertificate(owner, { ability: OWNER_ABILITY, node: node.did, ttlMs: 86_400_000 }) })
  const [b, c, d, e] = await Promise.all([
    cluster.start({
      key: bKey, bootstrap: a.multiaddrs, emptyWallet: true,
      config: { owner: { certificate: bOwner }, core: { certificate: bCore }, orchestration: { price: price(5_000_000) }, trust } as never,
    }),
    cluster.start({
      key: cKey, bootstrap: a.multiaddrs, emptyWallet: true,
      config: { core: { certificate: selfMadeCore }, orchestration: { owner: alice.did, price: price(100_000) }, trust } as never,
    }),
    cluster.start({ key: dKey, bootstrap: a.multiaddrs, emptyWallet: true, config: { owner: ownedBy(alice, dKey), orchestration: { price: price(100_000) }, trust } as never }),
    cluster.start({ key: eKey, bootstrap: a.multiaddrs, emptyWallet: true, config: { owner: ownedBy(bob, eKey), orchestration: { price: price(50_000_000) }, trust } as never }),
  ]) as [DaemonHandle, DaemonHandle, DaemonHandle, DaemonHandle]
  for (const n of [b, c]) new Catalog(n.home).add('wasm', MODULE, moduleFile)
  for (const n of [b, c, d, e]) new Catalog(n.home).add('wasm', SERVICE, serviceFile)
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 4, 20_000)
  // connected is not yet a candidate: placement samples A's capacity index, fed by each node's heartbeats (CI once
  // placed the plain job on B because C's first beat had not reached A yet)
  const indexed = async (): Promise<number> =>
    (await a.api.get<{ services: { orchestration?: { capacityIndex?: { nodes: number } } } }>('/v1/status')).services.orchestration?.capacityIndex?.nodes ?? 0
  await eventually(async () => (await indexed()) >= 4, 30_000, 100)

  await t.test('a plain job goes to the cheaper C: it is a real candidate', async (t) => {
    const v = await completed(a, job())
    t.equal(v.phase, 'completed')
    t.equal(v.replicas[0]!.node, c.did)
  })

  await t.test('owners.allow [Alice] lands on the node Alice certified, never on the one that claims her', async (t) => {
    for (let i = 0; i < 2; i++) {
      const v = await completed(a, job({ owners: { allow: [alice.did] } }))
      t.equal(v.phase, 'completed')
      t.equal(v.replicas[0]!.node, b.did, `run ${i + 1} on B`)
    }
  })

  await t.test('owners.deny [Alice] excludes B; C declines on its own claim (a false claim hurts only the claimer)', async (t) => {
    const v = await completed(a, job({ owners: { deny: [alice.did] } }))
    t.equal(v.phase, 'failed', 'no node takes it')
    t.notOk(v.replicas.some((r) => r.node === b.did), 'never on the node Alice certified')
  })

  await t.test('core: true lands only on the root-certified core node, never on a self-made member', async (t) => {
    for (let i = 0; i < 2; i++) {
      const v = await completed(a, job({ core: true }))
      t.equal(v.phase, 'completed')
      t.equal(v.replicas[0]!.node, b.did, `run ${i + 1} on B`)
    }
  })

  await t.test('owners.distinct: two replicas among the nodes of Alice and Bob land on one of each', async (t) => {
    // Alice's D and B would both score far above Bob's E (the dearest) without it
    const v = await settled(a, service(2, { owners: { allow: [alice.did, bob.did], distinct: true } }), ['running', 'failed'])
    t.equal(v.phase, 'running', v.reason ?? '')
    t.same(v.replicas.map((r) => r.owner).sort(), [alice.did, bob.did].sort(), 'one replica on a node of each owner')
    t.ok(v.replicas.some((r) => r.node === e.did) && v.replicas.some((r) => r.node === d.did || r.node === b.did), 'Bob\'s E and one of Alice\'s')
    await a.api.post(`/v1/deployments/${v.id}/stop`)
  })

  await t.test('owners.distinct: three replicas among two owners\' nodes are infeasible with distinct-owners', async (t) => {
    const v = await settled(a, service(3, { owners: { allow: [alice.did, bob.did], distinct: true } }), ['running', 'failed'])
    t.equal(v.phase, 'failed', 'nothing is placed')
    t.equal(v.infeasible?.constraint, 'distinct-owners')
    t.match(v.infeasible?.reason, /owners\.distinct: 3 replica\(s\) need as many owners; the eligible nodes belong to 2 owner\(s\)/, v.infeasible?.reason ?? '')
    t.ok(v.events.some((x) => /infeasible: owners\.distinct/.test(x.msg)), 'said in its events too')
    t.notOk(v.replicas.some((r) => r.state === 'running'), 'no replica runs')
  })

  await t.test('owners.distinct: a killed replica\'s replacement avoids the owner of the one still running', async (t) => {
    // the cheapest of distinct owners: C (its own owner: its claim of Alice is not believed) and one of Alice's
    const v = await settled(a, service(2, { owners: { distinct: true } }), ['running', 'failed'])
    t.equal(v.phase, 'running', v.reason ?? '')
    const survivor = v.replicas.find((r) => r.owner === alice.did)
    const victim = [c, e].find((n) => v.replicas.some((r) => r.node === n.did))
    t.ok(survivor && victim, `a replica on one of Alice's nodes, the other on C or E (${v.replicas.map((r) => r.node).join(', ')})`)
    if (!survivor || !victim) return
    await victim.kill()
    // without distinct, Alice's other node would take it when C is the one killed (its score is far above E's)
    let seen = 0
    const after = await eventually(async () => {
      const x = await a.api.get<DeploymentView>(`/v1/deployments/${v.id}?until=failed&events=${seen}&waitMs=20000`)
      seen = x.eventsDropped + x.events.length
      return (x.failovers.some((f) => f.from === victim.did && f.runningAt !== null) || x.phase === 'failed') && x
    }, 60_000, 100)
    const f = after.failovers.find((x) => x.from === victim.did)
    const to = after.replicas.find((r) => r.node === f?.to)
    t.ok(to !== undefined && to.owner !== alice.did, `replaced on ${f?.to === e.did ? 'Bob\'s E' : f?.to === c.did ? 'C' : f?.to} (${f?.ms} ms after ${victim === c ? 'C' : 'E'} was found lost), not on a node of Alice, who owns the survivor`)
    t.same(after.replicas.filter((r) => r.state === 'running').map((r) => r.owner).sort(), [alice.did, to?.owner].sort(), 'two owners again')
    await a.api.post(`/v1/deployments/${v.id}/stop`)
  })

  await t.test('Alice revokes B\'s certificate: handed to D, it reaches the orchestrator over pubsub, and owners.allow [Alice] no longer lands on B', async (t) => {
    const r = spawnSync(process.execPath, [NOIR_BIN, '--home', aliceHome, 'owner', 'revoke', b.did, '--reason', 'sold', '--publish', d.home], {
      encoding: 'utf8', timeout: 60_000, env: { ...process.env, NOIR_PASSPHRASE: TEST_PASSPHRASE },
    })
    t.equal(r.status, 0, `noir owner revoke --publish: ${r.stderr}`)
    t.match(r.stdout, /handed to the node/, r.stdout)
    const heard = await eventually(async () => {
      const held = (await a.api.get<{ revocations: { body: { issuer: string; node: string; reason?: string } }[] }>('/v1/certificates/revocations')).revocations
      return held.length > 0 && held
    }, 30_000, 200)
    t.same(heard.map((x) => [x.body.issuer, x.body.node, x.body.reason]), [[alice.did, b.did, 'sold']], 'the orchestrator heard Alice\'s revocation on the mesh')
    const forged = await a.api.post('/v1/certificates/revocations', { revocation: { ...heard[0], body: { ...heard[0]!.body, node: c.did } } }).then(() => null, (e: unknown) => e as { name?: string; status?: number })
    t.equal(forged?.name, 'InvalidCertRevocationError', 'an altered copy handed to the API is refused with a typed error')
    const v = await completed(a, job({ owners: { allow: [alice.did] } }))
    t.equal(v.phase, 'failed', 'no node certified by Alice that runs the job is left (D runs only the service), so nothing takes it')
    t.notOk(v.replicas.some((x) => x.node === b.did), 'never on B')
    const core = await completed(a, job({ core: true }))
    t.equal(core.replicas[0]?.node, b.did, 'B\'s core certificate (another issuer, another ability) still counts')
  })

  await t.test('a node given another node\'s certificate does not start', async (t) => {
    const stolen = NodeKey.generate()
    const err = await cluster.start({ key: stolen, bootstrap: a.multiaddrs, emptyWallet: true, readyTimeoutMs: 60_000, config: { owner: { certificate: bOwner } } as never }).then(() => null, (e: unknown) => e as Error)
    t.ok(err, 'refused')
    t.match(String(err?.message), /owner\.certificate' names did:key:\w+, presented by/, `says why: ${String(err?.message).slice(0, 300)}`)
  })
})
