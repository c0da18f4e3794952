// Every failure the settlement layer reports, one class per failure, each with a stable `name` and `code`
// (the same shape as core's errors, so they cross the wire the same way).
import { NoirError } from '../core/errors.ts'

/** Base of the settlement layer's errors. */
export class SettlementError extends NoirError {
  constructor(message: string, code = 'ERR_SETTLEMENT', data?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, code, data, options)
    this.name = 'SettlementError'
  }
}

/** An external reference is not in its one canonical form `chain:txhash:index` (spec/settlement.md). */
export class InvalidExternalRefError extends SettlementError {
  constructor(ref: string, why: string) {
    super(`invalid external reference ${JSON.stringify(ref)}: ${why}`, 'ERR_INVALID_EXTERNAL_REF', { ref, why })
    this.name = 'InvalidExternalRefError'
  }
}

/** An amount is not a positive integer that fits the chain's word (amounts are bigint, never floats). */
export class InvalidAmountError extends SettlementError {
  constructor(what: string, amount: unknown) {
    super(`${what}: ${String(amount)} is not a positive integer amount`, 'ERR_INVALID_AMOUNT', { what, amount: String(amount) })
    this.name = 'InvalidAmountError'
  }
}

/**
 * The chain moved under an already credited block: a reorganisation deeper than the confirmation depth.
 * Crediting stops (nothing more is credited from this adapter) until an operator looks.
 */
export class DeepReorgError extends SettlementError {
  constructor(chain: string, height: bigint, expected: string, found: string | undefined) {
    super(`${chain}: block ${height} was ${expected} when credited and is now ${found ?? 'gone'}: a reorganisation deeper than the confirmation depth`, 'ERR_DEEP_REORG', {
      chain,
      height: height.toString(),
      expected,
      found: found ?? null,
    })
    this.name = 'DeepReorgError'
  }
}

/** The same external reference came back with another account or amount than the one credited. */
export class TopupConflictError extends SettlementError {
  constructor(ref: string, why: string) {
    super(`top-up ${ref} conflicts with the one already credited: ${why}`, 'ERR_TOPUP_CONFLICT', { ref, why })
    this.name = 'TopupConflictError'
  }
}

/** A payout batch is empty, too large, or one of its receipts cannot be paid on this chain. */
export class InvalidPayoutBatchError extends SettlementError {
  constructor(why: string, data?: Record<string, unknown>) {
    super(`invalid payout batch: ${why}`, 'ERR_INVALID_PAYOUT_BATCH', { why, ...data })
    this.name = 'InvalidPayoutBatchError'
  }
}

/** The chain refused or reverted a payout batch (nothing was paid). */
export class PayoutFailedError extends SettlementError {
  constructor(chain: string, root: string, why: string, options?: { cause?: unknown }) {
    super(`${chain}: payout batch ${root} was not paid: ${why}`, 'ERR_PAYOUT_FAILED', { chain, root, why }, options)
    this.name = 'PayoutFailedError'
  }
}
