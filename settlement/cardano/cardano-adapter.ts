// SettlementAdapter for Cardano through Lucid Evolution. A deposit is an output at the deposit address
// carrying the settlement unit (the NLC native asset) with an inline datum Constr 0 [account key (32
// bytes)]; a payout batch is one transaction signed by the operator that pays receipt i in output i and
// carries the root and the receipts' keys in metadata label 8746.
import { Constr, Data, getAddressDetails, type LucidEvolution } from '@lucid-evolution/lucid'
import type { SettlementAdapter } from '../adapter.ts'
import { ConfirmationTracker, type DepositSource, type TrackerCursor } from '../confirmation-tracker.ts'
import { PayoutFailedError } from '../errors.ts'
import { externalRef } from '../external-ref.ts'
import { merkleRoot } from '../merkle.ts'
import { buildPayoutBatch } from '../payout-batch.ts'
import type { BlockPoint, ChainView, DepositPoll, ObservedDeposit, PayoutAnchor, PayoutBatch, PayoutReceipt, SettlementStatus } from '../types.ts'
import type { CardanoChainIndex, IndexedTx } from './chain-index.ts'

/** Metadata label of payout batches (any unregistered label would do; CIP-10 lists the registered ones). */
export const PAYOUT_METADATA_LABEL = 8746

export interface CardanoAdapterInit {
  /** Chain name in references, e.g. `cardano-emulator`, `cardano-preprod`. */
  chain: string
  index: CardanoChainIndex
  /** The operator's Lucid instance, wallet selected (pays batches from its UTxOs). */
  lucid: LucidEvolution
  /** The operator's payment key hash: only batches it signed count as paid. */
  operatorKeyHash: string
  depositAddress: string
  /** The settlement unit: policy id + asset name hex. */
  unit: string
  depth: number
  startHeight?: bigint
  cursor?: TrackerCursor
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

export function encodeCardanoPayee(payee: string): Uint8Array {
  return new Uint8Array(Buffer.from(getAddressDetails(payee).address.hex, 'hex'))
}

/** The account key an inline datum names, or undefined when the datum is not Constr 0 [32 bytes]. */
export function depositDatumAccount(datum: string | undefined): string | undefined {
  if (datum === undefined) return undefined
  try {
    const d = Data.from(datum)
    if (!(d instanceof Constr) || d.index !== 0 || d.fields.length !== 1) return undefined
    const [key] = d.fields
    return typeof key === 'string' && /^[0-9a-f]{64}$/.test(key) ? key : undefined
  } catch {
    return undefined
  }
}

export function depositDatum(accountKey: string): string {
  return Data.to(new Constr(0, [accountKey]))
}

class CardanoDepositSource implements DepositSource {
  readonly chain: string
  readonly #init: CardanoAdapterInit

  constructor(init: CardanoAdapterInit) {
    this.chain = init.chain
    this.#init = init
  }

  tip(): Promise<BlockPoint> {
    return this.#init.index.tip()
  }

  blockHash(height: bigint): Promise<string | undefined> {
    return this.#init.index.blockHash(height)
  }

  async deposits(from: bigint, to: bigint): Promise<ObservedDeposit[]> {
    const out: ObservedDeposit[] = []
    for (const tx of await this.#init.index.txs(from, to)) {
      const hash = await this.#init.index.blockHash(tx.height)
      if (hash === undefined) continue
      for (const o of tx.outputs) {
        if (o.address !== this.#init.depositAddress) continue
        const amount = o.assets[this.#init.unit] ?? 0n
        const accountKey = depositDatumAccount(o.inlineDatum)
        if (amount <= 0n || accountKey === undefined) continue
        out.push({ ref: externalRef({ chain: this.chain, txHash: tx.hash, index: o.index }), accountKey, amount, block: { height: tx.height, hash } })
      }
    }
    return out
  }
}

interface PayoutMetadata {
  v: number
  root: string
  total: string
  receipts: [string, string][]
}

function asPayoutMetadata(v: unknown): PayoutMetadata | undefined {
  if (!v || typeof v !== 'object') return undefined
  const m = v as Record<string, unknown>
  if (m.v !== 1 || typeof m.root !== 'string' || typeof m.total !== 'string' || !Array.isArray(m.receipts)) return undefined
  const ok = m.receipts.every((r) => Array.isArray(r) && r.length === 2 && r.every((x) => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x)))
  return ok && /^[0-9a-f]{64}$/.test(m.root) && /^[1-9][0-9]*$/.test(m.total) ? (m as unknown as PayoutMetadata) : undefined
}

export class CardanoAdapter implements SettlementAdapter {
  readonly chain: string
  readonly depth: number
  readonly #init: CardanoAdapterInit
  readonly #source: CardanoDepositSource
  readonly #tracker: ConfirmationTracker

  constructor(init: CardanoAdapterInit) {
    this.chain = init.chain
    this.depth = init.depth
    this.#init = init
    this.#source = new CardanoDepositSource(init)
    this.#tracker = new ConfirmationTracker({ source: this.#source, depth: init.depth, startHeight: init.startHeight ?? 0n, ...(init.cursor ? { cursor: init.cursor } : {}) })
  }

  get cursor(): TrackerCursor {
    return this.#tracker.cursor
  }

  poll(): Promise<DepositPoll> {
    return this.#tracker.poll()
  }

  prepareBatch(receipts: readonly PayoutReceipt[]): PayoutBatch {
    return buildPayoutBatch(receipts, encodeCardanoPayee)
  }

  async payBatch(batch: PayoutBatch): Promise<PayoutAnchor> {
    const metadata: PayoutMetadata = {
      v: 1,
      root: batch.root,
      total: batch.total.toString(),
      receipts: batch.leaves.map((l) => [hex(l.subarray(0, 32)), hex(l.subarray(32, 64))]),
    }
    let txHash: string
    try {
      let tx = this.#init.lucid.newTx()
      // receipt i is paid in output i: the change output Lucid adds comes after them
      for (const r of batch.receipts) tx = tx.pay.ToAddress(r.payee, { [this.#init.unit]: r.amount })
      const unsigned = await tx.attachMetadata(PAYOUT_METADATA_LABEL, { ...metadata }).complete()
      const signed = await unsigned.sign.withWallet().complete()
      txHash = await signed.submit()
    } catch (err) {
      throw new PayoutFailedError(this.chain, batch.root, err instanceof Error ? err.message : String(err), { cause: err })
    }
    await this.#init.lucid.awaitTx(txHash)
    const paid = (await this.#paidBatches(0n, (await this.#init.index.tip()).height)).find((p) => p.ref.split(':')[1] === txHash)
    if (!paid) throw new PayoutFailedError(this.chain, batch.root, `transaction ${txHash} is not on chain`)
    return paid
  }

  async chainView(): Promise<ChainView> {
    const tip = await this.#init.index.tip()
    const safe = this.#tracker.safeHeight(tip.height)
    const all = await this.#source.deposits(this.#init.startHeight ?? 0n, tip.height)
    return {
      chain: this.chain,
      tip,
      deposits: all.filter((d) => d.block.height <= safe),
      pending: all.filter((d) => d.block.height > safe).map((d) => ({ ...d, confirmations: tip.height - d.block.height + 1n })),
      payouts: await this.#paidBatches(this.#init.startHeight ?? 0n, tip.height),
    }
  }

  async status(): Promise<SettlementStatus> {
    const view = await this.chainView()
    return { chain: this.chain, depth: this.depth, tip: view.tip, creditedThrough: this.#tracker.cursor.creditedThrough, pending: view.pending }
  }

  /** Batches the operator signed, each with its root recomputed from what its outputs paid. */
  async #paidBatches(from: bigint, to: bigint): Promise<PayoutAnchor[]> {
    const out: PayoutAnchor[] = []
    for (const tx of await this.#init.index.txs(from, to)) {
      const m = asPayoutMetadata(tx.metadata.get(PAYOUT_METADATA_LABEL))
      if (!m || !tx.signers.includes(this.#init.operatorKeyHash)) continue
      const hash = await this.#init.index.blockHash(tx.height)
      if (hash === undefined) continue
      const { matches, total } = this.#recompute(tx, m)
      out.push({
        chain: this.chain,
        root: m.root,
        total,
        count: m.receipts.length,
        ref: externalRef({ chain: this.chain, txHash: tx.hash, index: 0 }),
        block: { height: tx.height, hash },
        rootMatches: matches && total.toString() === m.total,
      })
    }
    return out
  }

  #recompute(tx: IndexedTx, m: PayoutMetadata): { matches: boolean; total: bigint } {
    let total = 0n
    const leaves: Uint8Array[] = []
    for (const [i, [receipt, account]] of m.receipts.entries()) {
      const o = tx.outputs[i]
      const amount = o?.assets[this.#init.unit] ?? 0n
      if (!o || amount <= 0n) return { matches: false, total }
      total += amount
      const payee = encodeCardanoPayee(o.address)
      const leaf = new Uint8Array(96 + payee.length)
      leaf.set(Buffer.from(receipt, 'hex'), 0)
      leaf.set(Buffer.from(account, 'hex'), 32)
      leaf.set(Buffer.from(amount.toString(16).padStart(64, '0'), 'hex'), 64)
      leaf.set(payee, 96)
      leaves.push(leaf)
    }
    return { matches: hex(merkleRoot(leaves)) === m.root, total }
  }
}
