// A payout batch: one leaf per receipt in the documented layout, refused when empty, too large, or when a
// receipt appears twice or its amount is not a positive integer.
import t from 'tap'
import { accountKey } from '../accounts.ts'
import { InvalidAmountError, InvalidPayoutBatchError } from '../errors.ts'
import { merkleRoot } from '../merkle.ts'
import { buildPayoutBatch, MAX_BATCH_RECEIPTS, receiptKey } from '../payout-batch.ts'

const payee = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const r = (id: string, amount: bigint) => ({ id, account: 'did:key:z6MkW', payee: '0a0b', amount })

t.test('a leaf is receiptKey || accountKey || amount (32 bytes, big-endian) || payee', async (t) => {
  const b = buildPayoutBatch([r('x', 258n)], payee)
  const leaf = b.leaves[0]!
  t.equal(leaf.length, 98)
  t.same(leaf.subarray(0, 32), receiptKey('x'))
  t.equal(Buffer.from(leaf.subarray(32, 64)).toString('hex'), accountKey('did:key:z6MkW'))
  t.equal(Buffer.from(leaf.subarray(64, 96)).toString('hex'), '0102'.padStart(64, '0'))
  t.equal(Buffer.from(leaf.subarray(96)).toString('hex'), '0a0b')
  t.equal(b.root, Buffer.from(merkleRoot(b.leaves)).toString('hex'))
  t.equal(b.total, 258n)
})

t.test('bad batches are refused', async (t) => {
  t.throws(() => buildPayoutBatch([], payee), InvalidPayoutBatchError)
  t.throws(() => buildPayoutBatch([r('x', 1n), r('x', 2n)], payee), InvalidPayoutBatchError)
  t.throws(() => buildPayoutBatch(Array.from({ length: MAX_BATCH_RECEIPTS + 1 }, (_, i) => r(`${i}`, 1n)), payee), InvalidPayoutBatchError)
  t.throws(() => buildPayoutBatch([r('x', 0n)], payee), InvalidAmountError)
  t.throws(() => buildPayoutBatch([{ ...r('x', 1n), amount: 1.5 as unknown as bigint }], payee), InvalidAmountError)
  t.throws(() => buildPayoutBatch([r('x', 1n)], () => { throw new Error('bad address') }), InvalidPayoutBatchError)
})
