// SettlementAdapter for EVM chains through viem: deposits are Deposit events of the Settlement contract,
// credited after `depth` confirmations; payouts call Settlement.payBatch, which recomputes the batch's root.
import {
  decodeFunctionData,
  getAbiItem,
  isAddress,
  parseEventLogs,
  type Account,
  type Address,
  type Hex,
  type PublicClient,
  type WalletClient,
} from 'viem'
import type { SettlementAdapter } from '../adapter.ts'
import { ConfirmationTracker, type TrackerCursor } from '../confirmation-tracker.ts'
import { PayoutFailedError } from '../errors.ts'
import { externalRef } from '../external-ref.ts'
import { merkleRoot } from '../merkle.ts'
import { buildPayoutBatch } from '../payout-batch.ts'
import type { ChainView, DepositPoll, PayoutAnchor, PayoutBatch, PayoutReceipt, SettlementStatus } from '../types.ts'
import { settlementAbi } from './artifacts.ts'
import { EvmDepositSource } from './evm-deposit-source.ts'

const payoutEvent = getAbiItem({ abi: settlementAbi, name: 'PayoutBatch' })

export interface EvmAdapterInit {
  client: PublicClient
  /** The operator's wallet (pays batches); without it the adapter only observes. */
  wallet?: WalletClient
  /** The operator account (local signer or an address the node unlocks). */
  operator?: Account
  settlement: Address
  /** Confirmations before a deposit is credited. */
  depth: number
  /** The block the Settlement contract was created in. */
  startHeight: bigint
  cursor?: TrackerCursor
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

export function encodeEvmPayee(payee: string): Uint8Array {
  if (!isAddress(payee, { strict: false })) throw new Error('not a 20-byte hex address')
  return new Uint8Array(Buffer.from(payee.slice(2), 'hex'))
}

export class EvmAdapter implements SettlementAdapter {
  readonly chain: string
  readonly depth: number
  readonly #init: EvmAdapterInit
  readonly #source: EvmDepositSource
  readonly #tracker: ConfirmationTracker

  /** Reads the chain id to name the chain `evm-<chainId>`. */
  static async connect(init: EvmAdapterInit): Promise<EvmAdapter> {
    const chainId = await init.client.getChainId()
    return new EvmAdapter(`evm-${chainId}`, init)
  }

  constructor(chain: string, init: EvmAdapterInit) {
    this.chain = chain
    this.depth = init.depth
    this.#init = init
    this.#source = new EvmDepositSource(chain, init.client, init.settlement)
    this.#tracker = new ConfirmationTracker({ source: this.#source, depth: init.depth, startHeight: init.startHeight, ...(init.cursor ? { cursor: init.cursor } : {}) })
  }

  get cursor(): TrackerCursor {
    return this.#tracker.cursor
  }

  poll(): Promise<DepositPoll> {
    return this.#tracker.poll()
  }

  prepareBatch(receipts: readonly PayoutReceipt[]): PayoutBatch {
    return buildPayoutBatch(receipts, encodeEvmPayee)
  }

  async payBatch(batch: PayoutBatch): Promise<PayoutAnchor> {
    const { wallet, operator, client, settlement } = this.#init
    if (!wallet || !operator) throw new PayoutFailedError(this.chain, batch.root, 'this adapter has no operator wallet')
    const args = [
      `0x${batch.root}`,
      batch.leaves.map((l) => `0x${hex(l.subarray(0, 32))}` as Hex),
      batch.leaves.map((l) => `0x${hex(l.subarray(32, 64))}` as Hex),
      batch.receipts.map((r) => r.amount),
      batch.receipts.map((r) => r.payee as Address),
    ] as const
    let hash: Hex
    try {
      // simulate first: a refusal (root mismatch, a receipt already paid) comes back as its named error
      const { request } = await client.simulateContract({ address: settlement, abi: settlementAbi, functionName: 'payBatch', args: [...args], account: operator })
      hash = await wallet.writeContract({ ...request, chain: null, account: operator })
    } catch (err) {
      throw new PayoutFailedError(this.chain, batch.root, shortMessage(err), { cause: err })
    }
    const receipt = await client.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success') throw new PayoutFailedError(this.chain, batch.root, `transaction ${hash} reverted`)
    const [log] = parseEventLogs({ abi: settlementAbi, eventName: 'PayoutBatch', logs: receipt.logs }).filter((l) => l.address.toLowerCase() === settlement.toLowerCase())
    if (!log) throw new PayoutFailedError(this.chain, batch.root, `transaction ${hash} emitted no PayoutBatch`)
    return {
      chain: this.chain,
      root: log.args.root.slice(2),
      total: log.args.total,
      count: Number(log.args.count),
      ref: externalRef({ chain: this.chain, txHash: hash.toLowerCase(), index: log.logIndex }),
      block: { height: receipt.blockNumber, hash: receipt.blockHash },
      rootMatches: log.args.root.slice(2) === batch.root,
    }
  }

  async chainView(): Promise<ChainView> {
    const tip = await this.#source.tip()
    const safe = this.#tracker.safeHeight(tip.height)
    const all = await this.#source.deposits(this.#init.startHeight, tip.height)
    const deposits = all.filter((d) => d.block.height <= safe)
    const pending = all.filter((d) => d.block.height > safe).map((d) => ({ ...d, confirmations: tip.height - d.block.height + 1n }))
    const logs = await this.#init.client.getLogs({ address: this.#init.settlement, event: payoutEvent, fromBlock: this.#init.startHeight, toBlock: tip.height, strict: true })
    const payouts: PayoutAnchor[] = []
    for (const log of logs) {
      if (log.blockNumber === null || log.blockHash === null || log.transactionHash === null || log.logIndex === null) continue
      payouts.push({
        chain: this.chain,
        root: log.args.root.slice(2),
        total: log.args.total,
        count: Number(log.args.count),
        ref: externalRef({ chain: this.chain, txHash: log.transactionHash.toLowerCase(), index: log.logIndex }),
        block: { height: log.blockNumber, hash: log.blockHash },
        rootMatches: await this.#rootOfPaidBatch(log.transactionHash, log.args.root),
      })
    }
    return { chain: this.chain, tip, deposits, pending, payouts }
  }

  async status(): Promise<SettlementStatus> {
    const tip = await this.#source.tip()
    const safe = this.#tracker.safeHeight(tip.height)
    const from = safe + 1n > this.#init.startHeight ? safe + 1n : this.#init.startHeight
    const above = tip.height >= from ? await this.#source.deposits(from, tip.height) : []
    return {
      chain: this.chain,
      depth: this.depth,
      tip,
      creditedThrough: this.#tracker.cursor.creditedThrough,
      pending: above.map((d) => ({ ...d, confirmations: tip.height - d.block.height + 1n })),
    }
  }

  /** Recomputes the root from the transaction's own call data: what the chain paid, not what it logged. */
  async #rootOfPaidBatch(txHash: Hex, root: Hex): Promise<boolean> {
    const tx = await this.#init.client.getTransaction({ hash: txHash })
    let decoded
    try {
      decoded = decodeFunctionData({ abi: settlementAbi, data: tx.input })
    } catch {
      return false // paid through another contract: the root cannot be checked from this call
    }
    if (decoded.functionName !== 'payBatch') return false
    const [, receipts, accounts, amounts, payees] = decoded.args
    const leaves = receipts.map((r, i) => {
      const leaf = new Uint8Array(116)
      leaf.set(Buffer.from(r.slice(2), 'hex'), 0)
      leaf.set(Buffer.from((accounts[i] ?? '0x').slice(2), 'hex'), 32)
      leaf.set(Buffer.from((amounts[i] ?? 0n).toString(16).padStart(64, '0'), 'hex'), 64)
      leaf.set(Buffer.from((payees[i] ?? '0x').slice(2), 'hex'), 96)
      return leaf
    })
    return `0x${hex(merkleRoot(leaves))}` === root.toLowerCase()
  }
}

function shortMessage(err: unknown): string {
  if (err && typeof err === 'object' && 'shortMessage' in err && typeof err.shortMessage === 'string') {
    const name = 'cause' in err && err.cause && typeof err.cause === 'object' && 'data' in err.cause && err.cause.data && typeof err.cause.data === 'object' && 'errorName' in err.cause.data ? String(err.cause.data.errorName) : undefined
    return name ? `${name}: ${err.shortMessage}` : err.shortMessage
  }
  return err instanceof Error ? err.message : String(err)
}
