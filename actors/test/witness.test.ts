// Cosigned checkpoints (spec/ledger.md "Cosigned checkpoints"): a provider's real ledger (level on disk) and
// its CheckpointCosigner ask a consumer's CheckpointWitness to cosign; the witness is tried as an attacking
// provider would: a checkpoint signed by another key, an inflated receipt, a receipt of a record never
// answered, a rewritten (forked) log, an older checkpoint, a request without a consistency proof. Only the
// transport is in-process here; actors/test/metering-daemons.test.ts proves it between real daemons.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryKvStore } from '../../core/kv-store.ts'
import { NodeKey } from '../../identity/keys.ts'
import { Ledger, STANDARD_ACCOUNTS } from '../../ledger/ledger.ts'
import { verifyCosignature, signCheckpoint, type SignedCheckpoint } from '../../ledger/checkpoint.ts'
import { CheckpointCosigner } from '../../appliance/node-services/ledger-cosigner.ts'
import { LedgerEarnings } from '../../appliance/node-services/ledger-escrow.ts'
import { answerUsage, signUsage, type UsageBody } from '../usage/record.ts'
import { KvUsageStore } from '../usage/store.ts'
import { CheckpointWitness, type CosignRequest } from '../usage/witness.ts'

const provider = NodeKey.generate()
const consumer = NodeKey.generate()
const policy = { nlrPerNlc: 1n, feeBps: 0 }

async function openLedger(t: { teardown(fn: () => Promise<void>): void }, key: NodeKey): Promise<Ledger> {
  const dir = mkdtempSync(join(tmpdir(), 'noir-witness-'))
  const l = await Ledger.open({ location: dir, key, checkpointIntervalMs: 0 })
  await l.createAccounts(STANDARD_ACCOUNTS)
  t.teardown(async () => {
    await l.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return l
}

function body(contractId: string, seq: number, amount: string): UsageBody {
  return { v: 1, contractId, deploymentId: 'd1', slot: 's0', consumer: consumer.did, provider: provider.did, seq, from: seq * 1000, to: seq * 1000 + 1000, replicaMs: 1000, pricePerHour: '3600000', amount }
}

/** The consumer's side: it answered (contract, seq) accepting `accepted` µNLC. */
async function answered(usage: KvUsageStore, contractId: string, seq: number, accepted: string): Promise<void> {
  const rec = answerUsage(consumer, signUsage(provider, body(contractId, seq, '1000')), { verdict: accepted === '1000' ? 'accepted' : 'disputed', acceptedAmount: accepted, acceptedReplicaMs: 1000, at: 1 })
  await usage.put({ side: 'consumer', record: rec, status: rec.answer!.verdict, updatedAt: 1 })
}

function rig() {
  const usage = new KvUsageStore(new MemoryKvStore())
  const witness = new CheckpointWitness({ key: consumer, usage, witnessed: usage.witnessed })
  return { usage, witness }
}

t.test('the provider asks, the consumer checks and cosigns; the ledger keeps the cosignature', async (t) => {
  const { usage, witness } = rig()
  const ledger = await openLedger(t, provider)
  const earnings = new LedgerEarnings(() => ledger, policy)
  await answered(usage, 'c1', 0, '1000')
  await answered(usage, 'c1', 1, '600') // disputed down to 600: the receipt must say 600
  await earnings.credit('c1', 0, 1000n)
  await earnings.credit('c1', 1, 600n)
  const asked: CosignRequest[] = []
  const store = new MemoryKvStore()
  const cosigner = new CheckpointCosigner({ ledger: () => ledger, store, ask: async (_c, req) => (asked.push(req), witness.cosign(req, provider.did)), log: () => undefined })
  cosigner.credited(consumer.did, 'c1', 0)
  cosigner.credited(consumer.did, 'c1', 1)
  await new Promise((r) => setTimeout(r, 20))
  const cos = await cosigner.flush(consumer.did)
  t.ok(cos, 'cosigned')
  t.equal(asked[0]!.receipts.length, 2, 'both receipts in one request')
  const size = (await cosigner.lastCosigned(consumer.did))!
  const cp = await ledger.checkpointAt(size)
  t.same(cp.cosignatures.map((c) => c.did), [consumer.did], 'the checkpoint carries the consumer\'s cosignature')
  t.doesNotThrow(() => verifyCosignature(cp.body, cp.cosignatures[0]!))
  t.same(await witness.last(provider.did), { size, root: cp.body.root }, 'the witness remembers what it cosigned')
  t.equal((await ledger.verify()).cosignatures, 1)

  // later receipts: the next request proves consistency from the last cosigned checkpoint
  await answered(usage, 'c1', 2, '1000')
  await earnings.credit('c1', 2, 1000n)
  cosigner.credited(consumer.did, 'c1', 2)
  await new Promise((r) => setTimeout(r, 20))
  await cosigner.flush(consumer.did)
  t.equal(asked[1]!.prior?.size, size, 'the second request proves consistency from the first cosigned size')
  t.ok((await cosigner.lastCosigned(consumer.did))! > size)

  // the provider forgot what the consumer cosigned last: the consumer names it, the provider proves from there
  await store.del(`last/${consumer.did}`)
  await answered(usage, 'c1', 3, '1000')
  await earnings.credit('c1', 3, 1000n)
  cosigner.credited(consumer.did, 'c1', 3)
  await new Promise((r) => setTimeout(r, 20))
  t.ok(await cosigner.flush(consumer.did), 'cosigned after proving from the consumer\'s last size')
  t.equal(asked.at(-2)!.prior, undefined, 'first asked without a proof (it forgot)')
  t.ok(asked.at(-1)!.prior, 'then with one from the size the consumer named')
})

t.test('attacks on the witness: nothing is cosigned, each answered with a typed error', async (t) => {
  const { usage, witness } = rig()
  const ledger = await openLedger(t, provider)
  const earnings = new LedgerEarnings(() => ledger, policy)
  await answered(usage, 'c1', 0, '1000')
  await answered(usage, 'c1', 1, '600')
  await earnings.credit('c1', 0, 1000n)
  await earnings.credit('c1', 1, 900n) // inflated: the consumer accepted 600
  await earnings.credit('c9', 0, 50n) // a record the consumer never answered
  const cp = (await ledger.checkpoint())!
  const seqOf = async (id: string): Promise<number> => (await ledger.transfersWithIdPrefix(id, 1))[0]!.seq
  const receipt = async (contractId: string, seq: number, at = cp) => ({ contractId, seq, proof: await ledger.proveEntry(await seqOf(`usage:${contractId}:${seq}:nlc`), at.body.size) })
  const req = (receipts: CosignRequest['receipts'], checkpoint: SignedCheckpoint = cp, prior?: CosignRequest['prior']): CosignRequest => ({ v: 1, checkpoint, receipts, ...(prior ? { prior } : {}) })

  const stranger = NodeKey.generate()
  const forged = signCheckpoint(stranger, cp.body.size, Buffer.from(cp.body.root, 'hex'), cp.body.ts)
  await t.rejects(witness.cosign(req([await receipt('c1', 0)], forged), provider.did), { name: 'InvalidCheckpointError' }, 'a checkpoint of another log')
  await t.rejects(witness.cosign(req([await receipt('c1', 0)]), stranger.did), { name: 'InvalidCheckpointError' }, 'a checkpoint sent by someone else than its log\'s owner')
  await t.rejects(witness.cosign(req([await receipt('c1', 1)]), provider.did), { name: 'ReceiptMismatchError', message: /credits 900 µNLC; this node accepted 600/ }, 'an inflated receipt')
  await t.rejects(witness.cosign(req([await receipt('c9', 0)]), provider.did), { name: 'ReceiptMismatchError', message: /no usage record c9#0/ }, 'a receipt of a record never answered')
  const wrongEntry = { contractId: 'c1', seq: 0, proof: await ledger.proveEntry(await seqOf('usage:c1:1:nlc'), cp.body.size) }
  await t.rejects(witness.cosign(req([wrongEntry]), provider.did), { name: 'ReceiptMismatchError', message: /is not the receipt usage:c1:0:nlc/ }, 'a proof of another entry')
  const tampered = await receipt('c1', 0)
  ;(tampered.proof as { entry: string }).entry = (tampered.proof as { entry: string }).entry.replace(/"amount":"1000"/, '"amount":"1001"')
  await t.rejects(witness.cosign(req([tampered]), provider.did), { name: 'InvalidProofError' }, 'an entry changed after it was proven')
  await t.rejects(witness.cosign({ v: 1, checkpoint: cp, receipts: [] }, provider.did), { name: 'InvalidUsageError' }, 'no receipts')
  await t.rejects(witness.cosign('hello', provider.did), { name: 'InvalidUsageError' }, 'not a request')
  t.equal(await witness.last(provider.did), undefined, 'nothing was cosigned')

  // cosigned once, honestly
  await witness.cosign(req([await receipt('c1', 0)]), provider.did)
  const last = (await witness.last(provider.did))!

  // the provider rewrites its log: same key, other history, larger size
  const fork = await openLedger(t, provider)
  const forkEarnings = new LedgerEarnings(() => fork, policy)
  await forkEarnings.credit('c1', 0, 1000n)
  await fork.createTransfers(Array.from({ length: 12 }, (_, i) => ({ id: `pad-${i}`, debit: 'treasury:NLR', credit: 'self:NLR', amount: 1n, currency: 'NLR' as const })))
  const forkCp = (await fork.checkpoint())!
  t.ok(forkCp.body.size > last.size)
  const forkReceipt = { contractId: 'c1', seq: 0, proof: await fork.proveEntry((await fork.transfersWithIdPrefix('usage:c1:0:nlc', 1))[0]!.seq, forkCp.body.size) }
  const forkProof = (await fork.consistencyProof(last.size, forkCp.body.size)).map((h) => Buffer.from(h).toString('hex'))
  await t.rejects(witness.cosign(req([forkReceipt], forkCp, { size: last.size, proof: forkProof }), provider.did), { name: 'LogConsistencyError', message: /does not extend/ }, 'a forked log is refused')
  await t.rejects(witness.cosign(req([forkReceipt], forkCp), provider.did), { name: 'LogConsistencyError', data: { size: last.size } }, 'no consistency proof: refused, naming the size to prove from')

  // an older checkpoint than the one cosigned
  await ledger.createTransfers([{ id: 'pad-x', debit: 'treasury:NLR', credit: 'self:NLR', amount: 1n, currency: 'NLR' }])
  const newer = (await ledger.checkpoint())!
  const newerProof = (await ledger.consistencyProof(last.size, newer.body.size)).map((h) => Buffer.from(h).toString('hex'))
  await witness.cosign(req([await receipt('c1', 0, newer)], newer, { size: last.size, proof: newerProof }), provider.did)
  await t.rejects(witness.cosign(req([await receipt('c1', 0)]), provider.did), { name: 'LogConsistencyError', message: /older than/ }, 'an older checkpoint than the last cosigned')
  t.same(await witness.last(provider.did), { size: newer.body.size, root: newer.body.root }, 'the last cosigned is the newer one, unchanged by the refusals')
})
