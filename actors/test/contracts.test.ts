import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeKey } from '../../identity/keys.ts'
import { bidPricePerHour, checkBid, signBid, signBidRequest, verifyBid, verifyBidRequest, verifyBidSignature } from '../bidding/messages.ts'
import { checkTerms, contractPricePerHour, countersign, proposeContract, verifyContract, verifyProposal, workloadDigest, type ContractTermsV1 } from '../contracts/contract.ts'
import { signingBytes } from '../contracts/signed.ts'
import { KvContractStore, type StoredContract } from '../contracts/store.ts'
import { KvDeploymentStore } from '../orchestrator/deployment-store.ts'
import type { DeploymentRecord } from '../orchestrator/orchestrator.ts'
import { LevelKvStore } from '../../core/index.ts'
import { Level } from 'level'
import { InvalidSignatureError, InvalidTermsError, UnsupportedTermsVersionError } from '../errors.ts'
import { signBody, verifyBody, CONTRACT_TAG, BID_TAG } from '../contracts/signed.ts'
import { workload } from './helpers.ts'

const orch = NodeKey.generate()
const node = NodeKey.generate()
const other = NodeKey.generate()
const w = workload()

const terms = () => ({
  deploymentId: 'd1', workloadName: w.name, kind: w.kind, slot: 'd1/0', epoch: 1, provider: node.did, providerOwner: node.did, bidId: 'b1',
  resources: w.resources, pricePerHour: '1500000', lane: w.lane, role: 'replica' as const, durationSeconds: 60, workloadDigest: workloadDigest(w),
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
  t.equal(v.pricePerHour, '1500000')
  t.equal(contractPricePerHour(v), 1_500_000n, 'the accessor reads whole µNLC as a bigint')
})

t.test('changing any term breaks both signatures', async (t) => {
  const c = countersign(node, proposeContract(orch, terms()))
  const tampered = { ...c, terms: { ...c.terms, pricePerHour: '10000' } }
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
  const bidSig = signBid(orch, { requestId: 'r', deploymentId: 'd', owner: orch.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free: { cpu: 1, memoryBytes: 1, gpu: 0, vramBytes: 0, diskBytes: 0 }, pricePerHour: '1000000' }).sig
  t.throws(() => verifyProposal({ ...p, consumerSig: bidSig }), InvalidSignatureError)
})

t.test('bid requests and bids verify, and expired or foreign ones are refused', async (t) => {
  const req = signBidRequest(orch, { deploymentId: 'd1', workload: w, count: 2 })
  t.equal(verifyBidRequest(req).orchestrator, orch.did)
  t.throws(() => verifyBidRequest(req, Date.now() + 60_000), InvalidTermsError, 'expired')
  t.throws(() => verifyBidRequest({ ...req, body: { ...req.body, count: 3 } }), InvalidSignatureError)
  const bid = signBid(node, { requestId: req.body.id, deploymentId: 'd1', owner: node.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free: { cpu: 1, memoryBytes: 1, gpu: 0, vramBytes: 0, diskBytes: 0 }, pricePerHour: '2000000' })
  t.equal(verifyBid(bid, { requestId: req.body.id }).node, node.did)
  t.throws(() => verifyBid(bid, { requestId: 'another' }), InvalidTermsError)
  t.throws(() => verifyBid({ ...bid, body: { ...bid.body, node: other.did } }), InvalidSignatureError, 'claims another node')
  t.throws(() => verifyBid({ body: { v: 1 } }), UnsupportedTermsVersionError, 'a v1 bid (float prices) is refused: v2 required')
})

t.test('a bid\'s cheap checks and its signature are separate steps, and verifyBid is both', async (t) => {
  const req = signBidRequest(orch, { deploymentId: 'd1', workload: w, count: 1 })
  const bid = signBid(node, { requestId: req.body.id, deploymentId: 'd1', owner: node.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free: { cpu: 1, memoryBytes: 1, gpu: 0, vramBytes: 0, diskBytes: 0 }, pricePerHour: '2000000' })
  const forged = { ...bid, body: { ...bid.body, pricePerHour: '0' } }
  t.equal(checkBid(forged, { requestId: req.body.id }).pricePerHour, '0', 'checkBid does not look at the signature')
  t.throws(() => verifyBidSignature(forged.body, forged.sig), InvalidSignatureError)
  t.throws(() => verifyBid(forged), InvalidSignatureError)
  t.doesNotThrow(() => verifyBidSignature(bid.body, bid.sig))
  t.throws(() => checkBid({ body: bid.body }), InvalidSignatureError, 'no signature at all is refused at once')
  t.throws(() => checkBid(bid, { now: Date.now() + 60_000 }), InvalidTermsError, 'expired')
  t.throws(() => checkBid({ ...bid, body: { ...bid.body, pricePerHour: '-1' } }), InvalidTermsError, 'negative price')
  t.equal(bidPricePerHour(bid.body), 2_000_000n)
})

// Prices as an attacker would write them: each is what JSON can carry and a float-minded or hostile peer sends.
const badPrices: [string, unknown][] = [
  ['a float', 1.5], ['a float as text', '1.5'], ['a negative', '-1'], ['a negative number', -1], ['an exponent', '1e6'], ['an exponent number', 1e6],
  ['a leading zero', '01'], ['a plus sign', '+1'], ['a space', ' 1'], ['hex', '0x10'], ['empty', ''], ['too long (more than 2^128 - 1)', '9'.repeat(40)],
  ['2^128 exactly', (1n << 128n).toString()], ['null', null], ['an object', { n: 1 }], ['NaN as text', 'NaN'], ['Infinity as text', 'Infinity'],
]

t.test('a contract whose price is not whole µNLC in digits is refused with InvalidTermsError naming pricePerHour, signed or not', async (t) => {
  const base = proposeContract(orch, terms())
  for (const [what, price] of badPrices) {
    // signed by the consumer over the bad terms, as an attacker would: the shape check comes first
    const badTerms = { ...base.terms, pricePerHour: price }
    const signed = { terms: badTerms, consumerSig: signBody(orch, CONTRACT_TAG, badTerms) }
    const err = t.throws(() => verifyProposal(signed), InvalidTermsError, what) as InvalidTermsError | undefined
    t.equal(err?.data?.field, 'pricePerHour', `${what}: names the field`)
    t.match(err?.message, /'pricePerHour' must be a decimal string of whole µNLC/, `${what}: says what it must be`)
  }
  t.equal(checkTerms({ ...base.terms, pricePerHour: '0' }).pricePerHour, '0', '"0" is a price')
  t.equal(contractPricePerHour(checkTerms({ ...base.terms, pricePerHour: ((1n << 128n) - 1n).toString() })), (1n << 128n) - 1n, '2^128 - 1 is the most, exact')
})

t.test('a v1 contract (a float price) arriving over the wire is refused with UnsupportedTermsVersionError saying v2 is required', async (t) => {
  const v1: ContractTermsV1 = { ...proposeContract(orch, terms()).terms, v: 1, pricePerHour: 1.5 }
  const signed = { terms: v1, consumerSig: signBody(orch, CONTRACT_TAG, v1) }
  const err = t.throws(() => verifyProposal(signed), UnsupportedTermsVersionError) as UnsupportedTermsVersionError | undefined
  t.match(err?.message, /v2 is required/)
  t.same(err?.data, { field: 'v', got: 1, required: 2 })
  t.throws(() => countersign(node, signed as never), UnsupportedTermsVersionError, 'and never countersigned')
})

t.test('a bid whose price is not whole µNLC in digits is refused with InvalidTermsError naming pricePerHour', async (t) => {
  const req = signBidRequest(orch, { deploymentId: 'd1', workload: w, count: 1 })
  const bid = signBid(node, { requestId: req.body.id, deploymentId: 'd1', owner: node.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free: { cpu: 1, memoryBytes: 1, gpu: 0, vramBytes: 0, diskBytes: 0 }, pricePerHour: '2000000' })
  for (const [what, price] of badPrices) {
    // re-signed by the bidding node itself: the price, not the signature, is what is refused
    const body = { ...bid.body, pricePerHour: price }
    const err = t.throws(() => verifyBid({ body, sig: signBody(node, BID_TAG, body) }, { requestId: req.body.id }), InvalidTermsError, what) as InvalidTermsError | undefined
    t.equal(err?.data?.field, 'pricePerHour', `${what}: names the field`)
  }
  const v1 = { ...bid.body, v: 1, pricePerHour: 2 }
  t.throws(() => verifyBid({ body: v1, sig: signBody(node, BID_TAG, v1) }), UnsupportedTermsVersionError, 'a v1 bid is refused: v2 required')
  const v1req = { ...req.body, v: 1 }
  t.throws(() => verifyBidRequest({ body: v1req, sig: signBody(orch, 'noir:bid-request:v1', v1req) }), UnsupportedTermsVersionError, 'so is a v1 bid request (its maxPrice was NLC)')
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

t.test('a contract record written before terms v2 is read with its price in whole µNLC, and its signed v1 terms kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-contracts-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const v1: ContractTermsV1 = { ...proposeContract(orch, terms()).terms, v: 1, pricePerHour: 0.386719 }
  const contract = { terms: v1, consumerSig: signBody(orch, CONTRACT_TAG, v1), providerSig: signBody(node, CONTRACT_TAG, v1) }
  const kv = await LevelKvStore.open(dir)
  t.teardown(() => kv.close())
  // as the store held it before this change: the v1 record, untouched
  await kv.put(`c/${v1.id}/provider`, { contract, side: 'provider', status: 'active', updatedAt: 1 })
  const s = new KvContractStore(kv)
  const read = (await s.get(v1.id, 'provider'))!
  t.equal(read.contract.terms.v, 2)
  t.equal(read.contract.terms.pricePerHour, '386719', 'Math.round(0.386719 * 1e6), at the one migration boundary')
  t.equal(contractPricePerHour(read.contract.terms), 386_719n)
  t.same(read.signedV1Terms, v1, 'the terms both sides signed are kept')
  t.doesNotThrow(() => verifyBody(orch.did, CONTRACT_TAG, read.signedV1Terms, read.contract.consumerSig, 'consumer'), 'the consumer signature verifies over them')
  t.doesNotThrow(() => verifyBody(node.did, CONTRACT_TAG, read.signedV1Terms, read.contract.providerSig, 'provider'), 'so does the provider\'s')
  t.same((await s.list()).map((x) => x.contract.terms.pricePerHour), ['386719'])
  t.throws(() => verifyContract(contract), UnsupportedTermsVersionError, 'the v1 contract itself is still refused on the wire')
})

t.test('a deployment snapshot written before terms v2 is read with its prices in whole µNLC', async (t) => {
  const { upgradeDeploymentSnapshot } = await import('../deployment/upgrade.ts')
  const v1: ContractTermsV1 = { ...proposeContract(orch, terms()).terms, v: 1, pricePerHour: 1.25 }
  const snapshot = {
    value: 'running',
    context: {
      workload: { ...w, constraints: { maxPrice: 2.5 } },
      replicas: [{ slot: 'd1/0', pricePerHour: 1.25, contract: { terms: v1, consumerSig: 'x', providerSig: 'y' } }, { slot: 'd1/1', pricePerHour: null, contract: null }],
      round: null,
    },
  }
  const up = upgradeDeploymentSnapshot(snapshot) as typeof snapshot & { context: { replicas: { pricePerHour: unknown; contract: { terms: { v: number; pricePerHour: unknown } } | null }[]; workload: { constraints: { maxPrice: unknown } } } }
  t.equal(up.context.replicas[0]!.pricePerHour, '1250000')
  t.same(up.context.replicas[0]!.contract!.terms.pricePerHour, '1250000')
  t.equal(up.context.replicas[0]!.contract!.terms.v, 2)
  t.equal(up.context.replicas[1]!.pricePerHour, null)
  t.equal(up.context.workload.constraints.maxPrice, '2500000')
  t.equal(upgradeDeploymentSnapshot(up), up, 'a snapshot already in µNLC passes unchanged')
})
