// The ledger as an attacker would try it (spec/security.md "Ledger"): proofs for another DID's log, forged
// and truncated proofs, checkpoints and cosignatures signed by the wrong key, transfers mixing NLC and NLR,
// amounts that are negative, fractional, textual or beyond 128 bits, ids reused with other fields, and a
// store edited behind the ledger's back.
import t from 'tap'
import { Level } from 'level'
import { NodeKey } from '../../identity/keys.ts'
import { openTestLedger } from './helpers.ts'
import { checkInclusionProofDocument } from '../proof-document.ts'
import { cosignCheckpoint, signCheckpoint, verifyCheckpoint, verifyCosignature, CHECKPOINT_TAG, checkpointSigningBytes } from '../checkpoint.ts'
import { InvalidAmountError, InvalidCheckpointError, InvalidProofError, IdempotencyConflictError } from '../errors.ts'
import { parseAmount, U128_MAX } from '../amount.ts'
import { verifyConsistency } from '../merkle.ts'
import { Keys } from '../store.ts'
import { transferFromWire } from '../../appliance/node-services/ledger-routes.ts'
import type { Result } from '../types.ts'

const failed = (r: Result | undefined): string | undefined => (r && !r.ok ? r.result : undefined)
const hd = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

async function busyLedger(t: Parameters<typeof openTestLedger>[0], salt = 0) {
  const tl = await openTestLedger(t)
  for (let i = 0; i < 20; i++) await tl.ledger.topup(`r${i}`, BigInt(100 + i + salt))
  return tl
}

t.test('an inclusion proof verifies with the log\'s DID only; another DID, a changed entry, index or path is refused', async (t) => {
  const a = await busyLedger(t)
  const b = await busyLedger(t, 1)
  const doc = await a.ledger.proveEntry(13)
  t.equal(checkInclusionProofDocument(doc, a.key.did).index, 13)
  t.throws(() => checkInclusionProofDocument(doc, b.key.did), InvalidCheckpointError, 'a proof of A\'s log does not pass as B\'s')
  // B presents A's entry under B's own checkpoint: the path does not lead to B's root
  const bDoc = await b.ledger.proveEntry(13)
  t.throws(() => checkInclusionProofDocument({ ...bDoc, entry: doc.entry }, b.key.did), InvalidProofError)
  // an attacker's own log "proving" the entry, relabelled as A's: A's signature is missing
  const forgedCp = signCheckpoint(b.key, bDoc.checkpoint.body.size, hd(bDoc.checkpoint.body.root), bDoc.checkpoint.body.ts)
  t.throws(() => checkInclusionProofDocument({ ...bDoc, checkpoint: { ...forgedCp, body: { ...forgedCp.body, log: a.key.did } } }, a.key.did), InvalidCheckpointError)
  t.throws(() => checkInclusionProofDocument({ ...doc, entry: doc.entry.replace(/"amount":"(\d+)"/, '"amount":"999999"') }, a.key.did), InvalidProofError)
  t.throws(() => checkInclusionProofDocument({ ...doc, index: 12 }, a.key.did), InvalidProofError)
  const bent = [...doc.proof]
  bent[0] = bent[0]!.replace(/^./, (c) => (c === '0' ? '1' : '0'))
  t.throws(() => checkInclusionProofDocument({ ...doc, proof: bent }, a.key.did), InvalidProofError)
  t.throws(() => checkInclusionProofDocument({ ...doc, proof: doc.proof.slice(1) }, a.key.did), InvalidProofError)
  t.throws(() => checkInclusionProofDocument({ ...doc, entry: doc.entry.replace('{', '{ ') }, a.key.did), InvalidProofError, 'a non-canonical entry')
  t.throws(() => checkInclusionProofDocument({ ...doc, checkpoint: { ...doc.checkpoint, body: { ...doc.checkpoint.body, size: doc.checkpoint.body.size + 1 } } }, a.key.did), InvalidCheckpointError, 'a checkpoint whose size was changed')
})

t.test('consistency proofs link every checkpoint to the next; a forged one is refused', async (t) => {
  const a = await busyLedger(t)
  const cps = await a.ledger.checkpoints({ limit: 1000 })
  t.ok(cps.length >= 10)
  for (let i = 1; i < cps.length; i++) {
    const [x, y] = [cps[i - 1]!.body, cps[i]!.body]
    const proof = await a.ledger.consistencyProof(x.size, y.size)
    if (!verifyConsistency(x.size, y.size, hd(x.root), hd(y.root), proof)) t.fail(`consistency ${x.size} -> ${y.size}`)
    if (proof.length > 0) {
      const bad = proof.map((h) => Uint8Array.from(h))
      bad[bad.length - 1]![0]! ^= 1
      if (verifyConsistency(x.size, y.size, hd(x.root), hd(y.root), bad)) t.fail(`forged consistency ${x.size} -> ${y.size}`)
    }
  }
  const first = cps[0]!.body
  const last = cps[cps.length - 1]!.body
  t.ok(verifyConsistency(first.size, last.size, hd(first.root), hd(last.root), await a.ledger.consistencyProof(first.size, last.size)))
  // a log that rewrote an early entry cannot prove consistency with what it signed before
  const b = await busyLedger(t, 1)
  const other = (await b.ledger.checkpoints({ limit: 1000 })).at(-1)!.body
  const early = cps.find((c) => c.body.size >= 10)!.body
  t.notOk(verifyConsistency(early.size, other.size, hd(early.root), hd(other.root), await b.ledger.consistencyProof(early.size, other.size)))
})

t.test('checkpoints: a signature by another key, a cosignature forged or replayed as the log\'s own, are refused', async (t) => {
  const a = await busyLedger(t)
  const cp = a.ledger.latestCheckpoint!
  t.same(verifyCheckpoint(cp, a.key.did), cp.body)
  const mallory = NodeKey.generate()
  const byMallory = signCheckpoint(mallory, cp.body.size, hd(cp.body.root), cp.body.ts)
  t.throws(() => verifyCheckpoint({ ...byMallory, body: { ...byMallory.body, log: a.key.did } }, a.key.did), InvalidCheckpointError, 'signed by another key')
  t.throws(() => verifyCheckpoint(byMallory, a.key.did), InvalidCheckpointError, 'of another log')
  const counterparty = NodeKey.generate()
  const co = cosignCheckpoint(counterparty, cp.body)
  verifyCosignature(cp.body, co)
  const stored = await a.ledger.addCosignature(cp.body.size, co)
  t.same(stored.cosignatures, [co])
  t.same((await a.ledger.addCosignature(cp.body.size, co)).cosignatures, [co], 'cosigning twice keeps one')
  await t.rejects(a.ledger.addCosignature(cp.body.size, { did: mallory.did, signature: co.signature }), InvalidCheckpointError, 'a cosignature claimed by another DID')
  await t.rejects(a.ledger.addCosignature(cp.body.size, cosignCheckpoint(counterparty, { ...cp.body, size: cp.body.size - 1 })), InvalidCheckpointError, 'a cosignature of another body')
  // the log's own checkpoint signature is not a cosignature (distinct tags)
  t.throws(() => verifyCosignature(cp.body, { did: a.key.did, signature: cp.signature }), InvalidCheckpointError)
  const asCheckpoint = Buffer.from(mallory.sign(checkpointSigningBytes(CHECKPOINT_TAG, cp.body))).toString('base64url')
  t.throws(() => verifyCosignature(cp.body, { did: mallory.did, signature: asCheckpoint }), InvalidCheckpointError)
  const doc = await a.ledger.proveEntry(3)
  t.same(checkInclusionProofDocument(doc, a.key.did).cosigners.length >= 0, true)
  const proofAtCosigned = { ...doc, checkpoint: stored }
  if (stored.body.size > 3) t.same(checkInclusionProofDocument({ ...proofAtCosigned, proof: (await a.ledger.proveEntry(3)).proof }, a.key.did).cosigners, doc.checkpoint.body.size === stored.body.size ? [counterparty.did] : [counterparty.did])
  t.same((await a.ledger.verify()).problems, [])
})

t.test('no transfer mixes NLC and NLR, directly or through a post', async (t) => {
  const { ledger } = await openTestLedger(t)
  await ledger.topup('r', 100n)
  const [x] = await ledger.createTransfers([{ id: 'x', debit: 'self:NLC', credit: 'self:NLR', amount: 1n, currency: 'NLC' }])
  t.equal(failed(x), 'accounts_must_have_the_same_currency')
  const [y] = await ledger.createTransfers([{ id: 'y', debit: 'external:NLC', credit: 'self:NLC', amount: 1n, currency: 'NLR' }])
  t.equal(failed(y), 'transfer_must_have_the_same_currency_as_accounts')
  await ledger.transfer({ id: 'h', debit: 'self:NLC', credit: 'treasury:NLC', amount: 10n, currency: 'NLC', flags: ['pending'] })
  const [z] = await ledger.createTransfers([{ id: 'z', pendingId: 'h', currency: 'NLR', flags: ['post_pending'] }])
  t.equal(failed(z), 'pending_transfer_has_different_currency')
  const [w] = await ledger.createTransfers([{ id: 'w', pendingId: 'h', credit: 'self:NLR', flags: ['post_pending'] }])
  t.equal(failed(w), 'pending_transfer_has_different_credit')
  t.equal(ledger.balance('self:NLR')!.posted, '0')
})

t.test('negative, fractional, textual and beyond-128-bit amounts are refused naming the field; balances cannot overflow', async (t) => {
  for (const v of [-5, '-5', 1.5, '1.5', '1e3', ' 7', '07', '', 'ten', Number.MAX_SAFE_INTEGER + 2, '340282366920938463463374607431768211456', null, true, {}, 0, '0']) {
    t.throws(() => parseAmount(v), InvalidAmountError, `amount ${JSON.stringify(v)}`)
    if (v !== null) t.throws(() => transferFromWire({ id: 'x', debit: 'a', credit: 'b', currency: 'NLC', amount: v as never }), InvalidAmountError, `over the API: ${JSON.stringify(v)}`)
  }
  t.equal(parseAmount('340282366920938463463374607431768211455'), U128_MAX)
  const { ledger } = await openTestLedger(t)
  for (const amount of [0n, -1n, U128_MAX + 1n, 1.5 as unknown as bigint, '5' as unknown as bigint]) {
    const [r] = await ledger.createTransfers([{ id: 'x', debit: 'external:NLC', credit: 'self:NLC', amount, currency: 'NLC' }])
    t.equal(failed(r), 'amount_invalid')
    t.equal(r!.ok ? '' : r!.field, 'amount')
  }
  await ledger.transfer({ id: 'big', debit: 'external:NLC', credit: 'self:NLC', amount: U128_MAX, currency: 'NLC' })
  const [o] = await ledger.createTransfers([{ id: 'more', debit: 'external:NLC', credit: 'self:NLC', amount: 1n, currency: 'NLC' }])
  t.equal(failed(o), 'overflows_debits_posted')
  t.equal(ledger.balance('self:NLC')!.posted, String(U128_MAX))
  t.same((await ledger.verify()).problems, [])
})

t.test('an id reused with other fields is refused naming the field, also for a top-up reference', async (t) => {
  const { ledger } = await openTestLedger(t)
  await ledger.topup('pay-77', 10n)
  const err = await ledger.topup('pay-77', 10n, 'self:NLR').catch((e: unknown) => e)
  t.ok(err instanceof IdempotencyConflictError)
  t.equal((err as IdempotencyConflictError).field, 'credit')
  const [r] = await ledger.createTransfers([{ id: 'topup:pay-77', debit: 'external:NLC', credit: 'self:NLC', amount: 10n, currency: 'NLC', ref: 'other' }])
  t.equal(failed(r), 'exists_with_different_ref')
})

t.test('a store edited behind the ledger\'s back: verify names the entry, the range, the account or the checkpoint', async (t) => {
  const tl = await busyLedger(t)
  t.same((await tl.ledger.verify()).problems, [])
  const size = tl.ledger.size
  await tl.ledger.close()
  const db = new Level<string, Uint8Array>(tl.location, { keyEncoding: 'utf8', valueEncoding: 'view' })
  const edit = async (seq: number, rehash: boolean): Promise<void> => {
    const v = (await db.get(Keys.entry(seq)))!
    const text = Buffer.from(v.subarray(32)).toString('utf8').replace(/"amount":"(\d+)"/, (_m, a: string) => `"amount":"${BigInt(a) + 1n}"`)
    const { leafHash } = await import('../merkle.ts')
    const bytes = Buffer.from(text)
    await db.put(Keys.entry(seq), Buffer.concat([rehash ? leafHash(bytes) : v.subarray(0, 32), bytes]))
  }
  const { verifyLedgerDb } = await import('../verify.ts')
  await edit(17, false)
  let r = await verifyLedgerDb(db, tl.key.did)
  t.equal(r.firstBadEntry, 17, 'an entry edited in place is named')
  await edit(17, false) // (second edit: the amount is now +2, still detected)
  await edit(9, true) // an entry rewritten with its recorded hash: the stored tree and the checkpoints catch it
  r = await verifyLedgerDb(db, tl.key.did)
  t.equal(r.firstBadEntry, 8, 'the smallest subtree holding the rewritten entry 9 is named (8..9)')
  t.ok(r.problems.some((p) => p.checkpoint !== undefined && /does not match the log/.test(p.message)))
  t.notOk(r.ok)
  // a checkpoint re-signed by another key; a balance edited; the tail removed
  const mallory = NodeKey.generate()
  const cpKey = Keys.checkpoint(size)
  const cp = JSON.parse(Buffer.from((await db.get(cpKey))!).toString('utf8'))
  await db.put(cpKey, Buffer.from(JSON.stringify({ ...cp, signature: Buffer.from(mallory.sign(checkpointSigningBytes(CHECKPOINT_TAG, cp.body))).toString('base64url') })))
  const acc = JSON.parse(Buffer.from((await db.get(Keys.account('self:NLC')))!).toString('utf8'))
  await db.put(Keys.account('self:NLC'), Buffer.from(JSON.stringify({ ...acc, creditsPosted: String(BigInt(acc.creditsPosted) + 1000n) })))
  await db.del(Keys.entry(size - 1))
  await db.del(Keys.entry(size - 2))
  r = await verifyLedgerDb(db, tl.key.did)
  t.ok(r.problems.some((p) => p.checkpoint === size && /not signed by/.test(p.message)), 'the re-signed checkpoint')
  t.ok(r.problems.some((p) => /signs \d+ entries but the log holds/.test(p.message)), 'the removed tail')
  await db.close()
  // balances alone: a fresh ledger whose stored balance was edited
  const fresh = await busyLedger(t)
  await fresh.ledger.close()
  const db2 = new Level<string, Uint8Array>(fresh.location, { keyEncoding: 'utf8', valueEncoding: 'view' })
  const a2 = JSON.parse(Buffer.from((await db2.get(Keys.account('self:NLC')))!).toString('utf8'))
  await db2.put(Keys.account('self:NLC'), Buffer.from(JSON.stringify({ ...a2, creditsPosted: String(BigInt(a2.creditsPosted) + 1000n) })))
  r = await verifyLedgerDb(db2, fresh.key.did)
  t.same(r.problems.map((p) => p.account), ['self:NLC'], 'an edited balance is named by account')
  await db2.close()
})
