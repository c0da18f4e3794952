// The metering ports (actors/usage/escrow.ts) over this node's Ledger (spec/ledger.md "Escrow", "Metering"):
//   consumer: hold      escrow:<contractId>:<window>       self:NLC -> payable:NLC, pending, timeout
//             settle    escrow:<contractId>:<window>:post  post_pending (in part: the rest is released), or void at 0
//                       escrow:<contractId>:<window>:late  a single-phase payment when the hold had expired
//             release   escrow:<contractId>:<window>:void  void_pending
//   provider: credit    usage:<contractId>:<seq>:{nlc,nlr,fee}  receivable:NLC -> treasury (ledger/conversion.ts)
// Every id is deterministic: a retry after a crash is a replay, not a second hold or payment.
import { InsufficientFundsError } from '../../actors/errors.ts'
import type { Earnings, Escrow } from '../../actors/usage/escrow.ts'
import { conversionTransfers, type ConversionPolicy } from '../../ledger/conversion.ts'
import { InvalidAmountError, TransferRefusedError } from '../../ledger/errors.ts'
import type { Ledger } from '../../ledger/ledger.ts'

export const PAYABLE = 'payable:NLC'
export const RECEIVABLE = 'receivable:NLC'

/** Defaults of config.json `ledger.conversion` (spec/ledger.md): 1 NLR per µNLC, 100 bps network fee. */
export const DEFAULT_CONVERSION: ConversionPolicy = { nlrPerNlc: 1n, feeBps: 100 }

const holdId = (contractId: string, window: number): string => `escrow:${contractId}:${window}`
/** A state in which the hold is not there to post from (the payment goes the late way). */
const GONE = new Set(['pending_transfer_expired', 'pending_transfer_not_found', 'pending_transfer_already_voided'])

export class LedgerEscrow implements Escrow {
  readonly #ledger: () => Ledger

  constructor(ledger: () => Ledger) {
    this.#ledger = ledger
  }

  available(): bigint {
    const b = this.#ledger().balance('self:NLC')
    return b ? BigInt(b.available) : 0n
  }

  async hold(contractId: string, window: number, amount: bigint, timeoutSeconds: number): Promise<void> {
    const [r] = await this.#ledger().createTransfers([{ id: holdId(contractId, window), debit: 'self:NLC', credit: PAYABLE, amount, currency: 'NLC', flags: ['pending'], timeout: timeoutSeconds }])
    if (r!.ok) return
    if (r!.result === 'exceeds_credits' || (r!.result === 'id_already_failed' && /exceeds_credits/.test(r!.message))) {
      throw new InsufficientFundsError(`the wallet cannot hold ${amount} µNLC for contract ${contractId} (available ${this.available()})`, { needed: String(amount), available: String(this.available()) })
    }
    throw new TransferRefusedError(r!.message, r!.result, r!.field)
  }

  async settle(contractId: string, window: number, amount: bigint): Promise<'paid' | 'unpaid' | 'nothing'> {
    const l = this.#ledger()
    const pendingId = holdId(contractId, window)
    const [r] = await l.createTransfers([amount === 0n
      ? { id: `${pendingId}:void`, pendingId, flags: ['void_pending'] }
      : { id: `${pendingId}:post`, pendingId, amount, flags: ['post_pending'] }])
    if (r!.ok) return amount === 0n ? 'nothing' : 'paid'
    if (amount === 0n) return 'nothing'
    if (!GONE.has(r!.result) && !(r!.result === 'id_already_failed' && [...GONE].some((g) => r!.message.includes(g)))) throw new TransferRefusedError(r!.message, r!.result, r!.field)
    // the hold is gone (it timed out before the record came): paid from the wallet if it can
    const [late] = await l.createTransfers([{ id: `${pendingId}:late`, debit: 'self:NLC', credit: PAYABLE, amount, currency: 'NLC' }])
    return late!.ok ? 'paid' : 'unpaid'
  }

  async release(contractId: string, window: number): Promise<void> {
    const pendingId = holdId(contractId, window)
    await this.#ledger().createTransfers([{ id: `${pendingId}:void`, pendingId, flags: ['void_pending'] }])
  }
}

export class LedgerEarnings implements Earnings {
  readonly #ledger: () => Ledger
  readonly #policy: ConversionPolicy

  constructor(ledger: () => Ledger, policy: ConversionPolicy) {
    this.#ledger = ledger
    this.#policy = policy
  }

  async credit(contractId: string, seq: number, amount: bigint): Promise<void> {
    const id = `usage:${contractId}:${seq}`
    let transfers
    try {
      transfers = conversionTransfers({ id, from: RECEIVABLE, to: 'self:NLR', nlc: amount, policy: this.#policy })
    } catch (err) {
      if (!(err instanceof InvalidAmountError)) throw err
      // so small the fee would take it all: converted without a fee (the network never takes a whole payment)
      transfers = conversionTransfers({ id, from: RECEIVABLE, to: 'self:NLR', nlc: amount, policy: { ...this.#policy, feeBps: 0 } })
    }
    const results = await this.#ledger().createTransfers(transfers)
    const bad = results.find((r) => !r.ok && r.result !== 'linked_event_failed')
    if (bad && !bad.ok) throw new TransferRefusedError(bad.message, bad.result, bad.field)
  }
}
