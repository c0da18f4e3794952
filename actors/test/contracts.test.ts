import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeKey } from '../../identity/keys.ts'
import { checkBid, signBid, signBidRequest, verifyBid, verifyBidRequest, verifyBidSignature } from '../bidding/messages.ts'
import { countersign, proposeContract, verifyContract, verifyProposal, workloadDigest } from '../contracts/contract.ts'
import { signingBytes } from '../contracts/signed.ts'
import { KvContractStore, type StoredContract } from '../contracts/store.ts'
import { KvDeploymentStore } from '../orchestrator/deployment-store.ts'
import type { DeploymentRecord } from '../orchestrator/orchestrator.ts'
import { LevelKvStore } from '../../core/index.ts'
import { Level } from 'level'
import { InvalidSignatureError, InvalidTermsError } from '../errors.ts'
import { workload } from './helpers.ts'

const orch = NodeKey.generate()
const node = NodeKey.generate()
const other = NodeKey.generate()
const w = workload()

const terms = () => ({
  deploymentId: 'd1', workloadName: w.name, kind: w.kind, slot: 'd1/0', epoch: 1, provider: node.did, providerOwner: node.did, bidId: 'b1',
  resources: w.resources, pricePerHour: 1.5, lane: w.lane, role: 'replica' as const, durationSeconds: 60, workloadDigest: workloadDigest(w),
})

t.test('the signing bytes are the domain tag, a zero byte, then canonical JSON', async (t) => {
  const b = signingBytes('noir:contract:v1', { b: 1, a: [true, null] })
  t.equal(Buffer.from(b).toString('utf8'), 'noir:contract:v1\u0000{"a":[true,null],"b":1}')
})

t.test('a contract signed by both sides verifies; each side signs the same terms', async (t) => {
  const p = proposeContract(orch, terms())
  t.equal(verifyProposal(p).consumer, orch.did)
  const c = countersign(node, p)
  const v = verifyContract(c)
  t.equal(v.provider, node.did)
  t.equal(v.pricePerHour, 1.5)
})

t.test('changing any term breaks both signatures', async (t) => {
  const c = countersign(node, proposeContract(orch, terms()))
  const tampered = { ...c, terms: { ...c.terms, pricePerHour: 0.01 } }
  t.throws(() => verifyContract(tampered), InvalidSignatureError)
  const epoch = { ...c, terms: { ...c.terms, epoch: 9 } }
  t.throws(() => verifyContract(epoch), InvalidSignatureError)
})

t.test('a node cannot countersign a contract naming another provider', async (t) => {
  t.throws(() => countersign(other, proposeContract(orch, terms())), InvalidSignatureError)
})

t.test('a contract without the provider signature is not a contract', async (t) => {
  t.throws(() => verifyContract(proposeContract(orch, terms())), InvalidSignatureError)
})

t.test('a signature made under another domain tag does not verify as a contract', async (t) => {
  const p = proposeContract(orch, terms())
  const bidSig = signBid(orch, { requestId: 'r', deploymentId: 'd', owner: orch.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free: { cpu: 1, memoryBytes: 1, gpu: 0, vramBytes: 0, diskBytes: 0 }, pricePerHour: 1 }).sig
  t.throws(() => verifyProposal({ ...p, consumerSig: bidSig }), InvalidSignatureError)
})

t.test('bid requests and bids verify, and expired or foreign ones are refused', async (t) => {
  const req = signBidRequest(orch, { deploymentId: 'd1', workload: w, count: 2 })
  t.equal(verifyBidRequest(req).orchestrator, orch.did)
  t.throws(() => verifyBidRequest(req, Date.now() + 60_000), InvalidTermsError, 'expired')
  t.throws(() => verifyBidRequest({ ...req, body: { ...req.body, count: 3 } }), InvalidSignatureError)
  const bid = signBid(node, { requestId: req.body.id, deploymentId: 'd1', owner: node.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free: { cpu: 1, memoryBytes: 1, gpu: 0, vramBytes: 0, diskBytes: 0 }, pricePerHour: 2 })
  t.equal(verifyBid(bid, { requestId: req.body.id }).node, node.did)
  t.throws(() => verifyBid(bid, { requestId: 'another' }), InvalidTermsError)
  t.throws(() => verifyBid({ ...bid, body: { ...bid.body, node: other.did } }), InvalidSignatureError, 'claims another node')
  t.throws(() => verifyBid({ body: { v: 1 } }), InvalidTermsError)
})

t.test('a bid\'s cheap checks and its signature are separate steps, and verifyBid is both', async (t) => {
  const req = signBidRequest(orch, { deploymentId: 'd1', workload: w, count: 1 })
  const bid = signBid(node, { requestId: req.body.id, deploymentId: 'd1', owner: node.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free: { cpu: 1, memoryBytes: 1, gpu: 0, vramBytes: 0, diskBytes: 0 }, pricePerHour: 2 })
  const forged = { ...bid, body: { ...bid.body, pricePerHour: 0 } }
  t.equal(checkBid(forged, { requestId: req.body.id }).pricePerHour, 0, 'checkBid does not look at the signature')
  t.throws(() => verifyBidSignature(forged.body, forged.sig), InvalidSignatureError)
  t.throws(() => verifyBid(forged), InvalidSignatureError)
  t.doesNotThrow(() => verifyBidSignature(bid.body, bid.sig))
  t.throws(() => checkBid({ body: bid.body }), InvalidSignatureError, 'no signature at all is refused at once')
  t.throws(() => checkBid(bid, { now: Date.now() + 60_000 }), InvalidTermsError, 'expired')
  t.throws(() => checkBid({ ...bid, body: { ...bid.body, pricePerHour: -1 } }), InvalidTermsError, 'negative price')
})

t.test('the level store keeps contracts across a reopen and fences epochs per slot', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-contracts-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = countersign(node, proposeContract(orch, terms()))
  let kv = await LevelKvStore.open(dir)
  let s = new KvContractStore(kv)
  await s.put({ contract: c, side: 'provider', status: 'active', updatedAt: 1 })
  t.equal(await s.raiseEpoch('d1/0', 2), 2)
  t.equal(await s.raiseEpoch('d1/0', 1), 2, 'a lower epoch does not lower the fence')
  const both = await Promise.all([s.raiseEpoch('d1/1', 5), s.raiseEpoch('d1/1', 4)])
  t.same(both, [5, 5])
  t.same(await kv.get(`c/${c.terms.id}/provider`), { contract: c, side: 'provider', status: 'active', updatedAt: 1 }, 'the record, JSON-encoded once')
  t.equal(await kv.get('e/d1/0'), 2)
  await kv.close()
  kv = await LevelKvStore.open(dir)
  s = new KvContractStore(kv)
  const list = await s.list()
  t.equal(list.length, 1)
  t.same(verifyContract(list[0]!.contract).id, c.terms.id)
  t.equal(await s.epoch('d1/0'), 2)
  await kv.close()
})

t.test('contracts, epochs and deployments written before (JSON text inside the JSON store) still load, and are rewritten once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-contracts-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = countersign(node, proposeContract(orch, terms()))
  const stored: StoredContract = { contract: c, side: 'consumer', status: 'active', updatedAt: 1, note: 'from before' }
  const deployment = { v: 1, id: 'd1', workload: w, replicas: [], standby: null, createdAt: 1, events: [{ at: 1, msg: 'placed' }], infeasible: null, failovers: [], nextRun: 1, machine: { value: 'running' } } as unknown as DeploymentRecord
  // what the orchestration service wrote into its sublevel before: JSON.stringify'd values, the epoch as text
  const db = new Level<string, unknown>(dir, { valueEncoding: 'json' })
  const svc = db.sublevel<string, unknown>('svc:orchestration', { valueEncoding: 'json' })
  await svc.put(`c/${c.terms.id}/consumer`, JSON.stringify(stored))
  await svc.put('e/d1/0', String(3))
  await svc.put('d/d1', JSON.stringify(deployment))
  const kv = new LevelKvStore(svc)
  t.teardown(() => db.close())
  const contracts = new KvContractStore(kv)
  t.same(await contracts.get(c.terms.id, 'consumer'), stored)
  t.same(await contracts.list(), [stored])
  t.equal(await contracts.epoch('d1/0'), 3)
  t.equal(await contracts.raiseEpoch('d1/0', 2), 3, 'an epoch kept as text still fences')
  const deployments = new KvDeploymentStore(kv)
  t.same(await deployments.loadAll(), [deployment])

  await contracts.put({ ...stored, status: 'ended' })
  await deployments.save(deployment)
  t.match(await kv.get(`c/${c.terms.id}/consumer`), { status: 'ended', side: 'consumer' }, 'written again: an object, encoded once')
  t.same(await kv.get('d/d1'), deployment)
  t.same((await contracts.list()).map((s) => s.status), ['ended'])
})
