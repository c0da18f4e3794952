// Credits a deposit only once it has `depth` confirmations (the tip block counts as one) and never one a
// reorganisation removed first. The tracker keeps one cursor: every block at or below `creditedThrough` has
// been handed out. Each poll reads the chain again above the cursor, so a deposit that a reorganisation
// dropped before reaching the depth is simply not there any more. A change below the cursor (deeper than the
// depth) stops the tracker with DeepReorgError instead of crediting on a chain it no longer recognises.
import { DeepReorgError } from './errors.ts'
import type { ExternalRef } from './external-ref.ts'
import type { BlockPoint, DepositPoll, ObservedDeposit, PendingDeposit } from './types.ts'

/** Where a tracker reads a chain. Heights are inclusive. */
export interface DepositSource {
  readonly chain: string
  tip(): Promise<BlockPoint>
  /** The hash of the canonical block at `height`, undefined above the tip. */
  blockHash(height: bigint): Promise<string | undefined>
  /** Deposits in canonical blocks `from..to`, in chain order. */
  deposits(from: bigint, to: bigint): Promise<ObservedDeposit[]>
}

export interface TrackerCursor {
  /** Every block at or below this height was handed out as confirmed. */
  creditedThrough: bigint
  /** Its hash when handed out (checked on every poll). Undefined before the first block. */
  hash: string | undefined
}

export interface ConfirmationTrackerInit {
  source: DepositSource
  /** Confirmations a deposit needs (>= 1). */
  depth: number
  /** Where to start: the first block that can hold a deposit (a contract's creation block). */
  startHeight?: bigint
  /** A cursor saved from an earlier run. */
  cursor?: TrackerCursor
}

export class ConfirmationTracker {
  readonly #source: DepositSource
  readonly #depth: bigint
  #cursor: TrackerCursor
  #pending = new Set<ExternalRef>()
  #stopped: DeepReorgError | undefined

  constructor(init: ConfirmationTrackerInit) {
    if (!Number.isSafeInteger(init.depth) || init.depth < 1) throw new RangeError(`confirmation depth must be an integer >= 1, not ${init.depth}`)
    this.#source = init.source
    this.#depth = BigInt(init.depth)
    this.#cursor = init.cursor ?? { creditedThrough: (init.startHeight ?? 0n) - 1n, hash: undefined }
  }

  get cursor(): TrackerCursor {
    return { ...this.#cursor }
  }

  get depth(): number {
    return Number(this.#depth)
  }

  /** Highest height with `depth` confirmations at `tip`. */
  safeHeight(tip: bigint): bigint {
    return tip - this.#depth + 1n
  }

  async poll(): Promise<DepositPoll> {
    if (this.#stopped) throw this.#stopped
    const tip = await this.#source.tip()
    await this.#checkCursor()
    const safe = this.safeHeight(tip.height)
    const from = this.#cursor.creditedThrough + 1n
    const pendingFrom = safe >= from ? safe + 1n : from
    let confirmed: ObservedDeposit[] = []
    if (safe >= from) {
      confirmed = await this.#source.deposits(from, safe)
      const hash = await this.#source.blockHash(safe)
      // a deposit read from a block that is no longer canonical (the chain moved between the reads, deeper
      // than the depth) is not credited: stop, as for a moved cursor
      for (const d of confirmed) {
        const canonical = d.block.height === safe ? hash : await this.#source.blockHash(d.block.height)
        if (canonical !== d.block.hash) {
          this.#stopped = new DeepReorgError(this.#source.chain, d.block.height, d.block.hash, canonical)
          throw this.#stopped
        }
      }
      if (hash === undefined) throw new DeepReorgError(this.#source.chain, safe, 'a block', undefined)
      this.#cursor = { creditedThrough: safe, hash }
    }
    const above = tip.height >= pendingFrom ? await this.#source.deposits(pendingFrom, tip.height) : []
    const pending = this.#withConfirmations(above, tip.height)
    const seen = new Set<ExternalRef>([...confirmed, ...pending].map((d) => d.ref))
    const dropped = [...this.#pending].filter((ref) => !seen.has(ref))
    this.#pending = new Set(pending.map((d) => d.ref))
    return { tip, confirmed, pending, dropped }
  }

  async #checkCursor(): Promise<void> {
    const { creditedThrough, hash } = this.#cursor
    if (hash === undefined) return
    const now = await this.#source.blockHash(creditedThrough)
    if (now !== hash) {
      this.#stopped = new DeepReorgError(this.#source.chain, creditedThrough, hash, now)
      throw this.#stopped
    }
  }

  #withConfirmations(deposits: readonly ObservedDeposit[], tip: bigint): PendingDeposit[] {
    return deposits.map((d) => ({ ...d, confirmations: tip - d.block.height + 1n }))
  }
}
