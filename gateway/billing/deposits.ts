// Top-ups from a chain (spec/billing.md "Top-ups"): the gateway reads the Deposit events of a Settlement
// contract (settlement/evm, viem) and credits each confirmed deposit to the account whose deposit key it names
// (sha256 of the account's wallet DID, shown in GET /v1/wallet), once per chain reference, whatever gateway
// or restart sees it again. The cursor is saved after the credits, so a crash between them rescans and
// credits nothing twice. Amounts: the token's base units, 10^(decimals-6) to a µNLC; dust below one is not
// credited.
import { createPublicClient, http, type PublicClient } from 'viem'
import { creditConfirmedDeposits, type CreditReport } from '../../settlement/deposit-crediter.ts'
import { EvmAdapter } from '../../settlement/evm/evm-adapter.ts'
import type { ExternalRef } from '../../settlement/external-ref.ts'
import type { TopupResult } from '../../settlement/ledger-port.ts'
import type { BillingStore } from './billing-store.ts'

export interface ChainDeposits {
  rpcUrl: string
  /** The Settlement contract (0x + 40 hex). */
  contract: `0x${string}`
  /** The block it was created in. */
  startHeight: bigint
  /** Confirmations before a deposit is credited (default 12). */
  depth?: number
  /** The token's decimals, >= 6 (default 18). */
  decimals?: number
  /** How often the chain is read (ms, default 5000). */
  pollMs?: number
}

export class GatewayDeposits {
  readonly #store: BillingStore
  readonly #cfg: ChainDeposits
  readonly #unitsPerMicro: bigint
  readonly #client: PublicClient
  readonly #now: () => number
  #adapter: EvmAdapter | undefined
  #chain: string | undefined
  #timer: NodeJS.Timeout | undefined
  #polling: Promise<CreditReport | undefined> | undefined
  /** The last poll's error (status), undefined when it went through. */
  lastError: string | undefined

  constructor(o: { store: BillingStore; chain: ChainDeposits; now?: () => number }) {
    this.#store = o.store
    this.#cfg = o.chain
    const decimals = o.chain.decimals ?? 18
    if (!Number.isInteger(decimals) || decimals < 6 || decimals > 36) throw new RangeError('decimals is a whole number from 6 to 36')
    this.#unitsPerMicro = 10n ** BigInt(decimals - 6)
    this.#client = createPublicClient({ transport: http(o.chain.rpcUrl, { timeout: 10_000, retryCount: 0 }), pollingInterval: 1000 }) as PublicClient
    this.#now = o.now ?? Date.now
  }

  /** The chain's name (evm-<chain id>), once connected. */
  async chain(): Promise<string> {
    return (await this.#ready()).chain
  }

  get contract(): string {
    return this.#cfg.contract
  }

  async #ready(): Promise<EvmAdapter> {
    if (this.#adapter) return this.#adapter
    this.#chain ??= `evm-${await this.#client.getChainId()}`
    const cursor = await this.#store.cursor(this.#chain)
    this.#adapter = await EvmAdapter.connect({
      client: this.#client, settlement: this.#cfg.contract, depth: this.#cfg.depth ?? 12, startHeight: this.#cfg.startHeight,
      ...(cursor ? { cursor: { creditedThrough: cursor.creditedThrough, hash: cursor.hash } } : {}),
    })
    return this.#adapter
  }

  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => void this.poll().catch(() => undefined), this.#cfg.pollMs ?? 5000)
    this.#timer.unref()
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#polling?.catch(() => undefined)
  }

  /** One poll: credit what reached the depth, then save the cursor. One at a time. */
  poll(): Promise<CreditReport | undefined> {
    this.#polling ??= this.#pollOnce().finally(() => (this.#polling = undefined))
    return this.#polling
  }

  async #pollOnce(): Promise<CreditReport | undefined> {
    let adapter: EvmAdapter
    try {
      adapter = await this.#ready()
    } catch (err) {
      this.lastError = `chain endpoint: ${(err as Error).message.split('\n')[0]}`
      return undefined
    }
    const keys = await this.#store.depositKeys()
    const store = this.#store
    const unitsPerMicro = this.#unitsPerMicro
    const now = this.#now
    const report = await creditConfirmedDeposits(adapter, {
      async topup(ref: ExternalRef, account: string, amount: bigint): Promise<TopupResult> {
        const micro = amount / unitsPerMicro
        const r = await store.topUp(ref, account, micro, now())
        if (r === 'credited' || r === 'duplicate') return { status: r, ref }
        return { status: 'conflict', ref, account: r.conflict.account, amount: r.conflict.amount }
      },
    }, { lookup: (key) => keys.get(key.toLowerCase().replace(/^0x/, '')) })
    const c = adapter.cursor
    await this.#store.saveCursor(adapter.chain, c.creditedThrough, c.hash)
    this.lastError = undefined
    return report
  }
}
