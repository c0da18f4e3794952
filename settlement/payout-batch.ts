// Builds a payout batch: one leaf per receipt, the RFC 6962 root over them, the total. The leaf layout is
// the same on every chain (spec/settlement.md "Payout leaves"); only the payee's bytes differ.
import { createHash } from 'node:crypto'
import { accountKey } from './accounts.ts'
import { positiveAmount } from './amount.ts'
import { InvalidPayoutBatchError } from './errors.ts'
import { merkleRoot } from './merkle.ts'
import type { PayoutBatch, PayoutReceipt } from './types.ts'

/** At most this many receipts per batch (one transaction must carry them: gas on EVM, size on Cardano). */
export const MAX_BATCH_RECEIPTS = 64

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

/** sha256 of the receipt id (UTF-8): the receipt's 32-byte key on chain. */
export function receiptKey(id: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(id, 'utf8').digest())
}

function uint256(amount: bigint): Uint8Array {
  const out = new Uint8Array(32)
  let v = amount
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return out
}

/** receiptKey(32) || accountKey(32) || amount (32, big-endian) || payee bytes. */
export function payoutLeaf(receipt: PayoutReceipt, payee: Uint8Array): Uint8Array {
  const amount = positiveAmount(`receipt ${receipt.id}`, receipt.amount)
  const out = new Uint8Array(96 + payee.length)
  out.set(receiptKey(receipt.id), 0)
  out.set(Buffer.from(accountKey(receipt.account), 'hex'), 32)
  out.set(uint256(amount), 64)
  out.set(payee, 96)
  return out
}

/** `encodePayee` turns a chain address into its bytes and throws on an address the chain cannot pay. */
export function buildPayoutBatch(receipts: readonly PayoutReceipt[], encodePayee: (payee: string) => Uint8Array): PayoutBatch {
  if (receipts.length === 0) throw new InvalidPayoutBatchError('no receipts')
  if (receipts.length > MAX_BATCH_RECEIPTS) throw new InvalidPayoutBatchError(`${receipts.length} receipts, at most ${MAX_BATCH_RECEIPTS}`)
  const ids = new Set<string>()
  let total = 0n
  const leaves: Uint8Array[] = []
  for (const r of receipts) {
    if (ids.has(r.id)) throw new InvalidPayoutBatchError(`receipt ${r.id} appears twice`, { receipt: r.id })
    ids.add(r.id)
    let payee: Uint8Array
    try {
      payee = encodePayee(r.payee)
    } catch (err) {
      throw new InvalidPayoutBatchError(`receipt ${r.id}: payee ${r.payee} is not an address on this chain (${err instanceof Error ? err.message : String(err)})`, { receipt: r.id })
    }
    leaves.push(payoutLeaf(r, payee))
    total += r.amount
  }
  return { receipts: [...receipts], leaves, root: hex(merkleRoot(leaves)), total }
}
