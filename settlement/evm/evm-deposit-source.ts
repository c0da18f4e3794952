// Reads Deposit events of one Settlement contract through viem. Only logs emitted by that contract's address
// count: a look-alike contract emitting the same event is another address and is never read.
import { getAbiItem, type Address, type PublicClient } from 'viem'
import type { DepositSource } from '../confirmation-tracker.ts'
import { externalRef } from '../external-ref.ts'
import type { BlockPoint, ObservedDeposit } from '../types.ts'
import { settlementAbi } from './artifacts.ts'

export const depositEvent = getAbiItem({ abi: settlementAbi, name: 'Deposit' })

/** Blocks per eth_getLogs request (public endpoints cap ranges; anvil does not). */
const LOG_RANGE = 5_000n

export class EvmDepositSource implements DepositSource {
  readonly chain: string
  readonly #client: PublicClient
  readonly #settlement: Address

  constructor(chain: string, client: PublicClient, settlement: Address) {
    this.chain = chain
    this.#client = client
    this.#settlement = settlement
  }

  async tip(): Promise<BlockPoint> {
    const b = await this.#client.getBlock({ blockTag: 'latest' })
    if (b.number === null || b.hash === null) throw new Error('latest block has no number')
    return { height: b.number, hash: b.hash }
  }

  async blockHash(height: bigint): Promise<string | undefined> {
    if (height < 0n) return undefined
    try {
      const b = await this.#client.getBlock({ blockNumber: height })
      return b.hash ?? undefined
    } catch {
      return undefined
    }
  }

  async deposits(from: bigint, to: bigint): Promise<ObservedDeposit[]> {
    const out: ObservedDeposit[] = []
    for (let lo = from < 0n ? 0n : from; lo <= to; lo += LOG_RANGE) {
      const hi = lo + LOG_RANGE - 1n < to ? lo + LOG_RANGE - 1n : to
      const logs = await this.#client.getLogs({ address: this.#settlement, event: depositEvent, fromBlock: lo, toBlock: hi, strict: true })
      for (const log of logs) {
        if (log.removed || log.blockNumber === null || log.blockHash === null || log.transactionHash === null || log.logIndex === null) continue
        if (log.address.toLowerCase() !== this.#settlement.toLowerCase()) continue
        out.push({
          ref: externalRef({ chain: this.chain, txHash: log.transactionHash.toLowerCase(), index: log.logIndex }),
          accountKey: log.args.account.slice(2).toLowerCase(),
          amount: log.args.amount,
          block: { height: log.blockNumber, hash: log.blockHash },
        })
      }
    }
    return out
  }
}
