// The ledger's vocabulary, in TigerBeetle's manner (spec/ledger.md): accounts hold four balance fields per
// currency; a transfer moves an amount from one account (debit) to another (credit) of the same currency,
// either at once or in two phases (pending, then post in full or in part, void, or time out).

export const CURRENCIES = ['NLC', 'NLR'] as const
/** NLC pays for compute; NLR rewards workers. No transfer ever mixes them. */
export type Currency = (typeof CURRENCIES)[number]

export const ACCOUNT_FLAGS = ['debits_must_not_exceed_credits', 'credits_must_not_exceed_debits'] as const
export type AccountFlag = (typeof ACCOUNT_FLAGS)[number]

export const TRANSFER_FLAGS = ['linked', 'pending', 'post_pending', 'void_pending'] as const
export type TransferFlag = (typeof TRANSFER_FLAGS)[number]

/** Ids (accounts, transfers, references): 1-128 characters of [A-Za-z0-9._:-], chosen by the client. */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

export interface AccountInit {
  id: string
  currency: Currency
  flags?: readonly AccountFlag[]
}

export interface Account {
  readonly id: string
  /** The entry that created it. */
  readonly seq: number
  readonly currency: Currency
  readonly flags: readonly AccountFlag[]
  debitsPending: bigint
  debitsPosted: bigint
  creditsPending: bigint
  creditsPosted: bigint
}

/**
 * A transfer as a client submits it. `id` is the client's idempotency key. For a post or void
 * (`post_pending` / `void_pending`) `pendingId` names the pending transfer and debit, credit, currency and
 * amount may be left out (taken from it; a post without amount posts it in full).
 */
export interface TransferInit {
  id: string
  debit?: string
  credit?: string
  amount?: bigint
  currency?: Currency
  pendingId?: string
  /** Seconds after which a pending transfer expires (0 or absent: never). Only with `pending`. */
  timeout?: number
  flags?: readonly TransferFlag[]
  /** Client data kept with the transfer (e.g. an external reference), same alphabet as ids. */
  ref?: string
}

/** A transfer as the log records it: every field resolved. */
export interface TransferEntry {
  kind: 'transfer'
  seq: number
  ts: number
  id: string
  debit: string
  credit: string
  amount: bigint
  currency: Currency
  flags: TransferFlag[]
  pendingId?: string
  timeout?: number
  ref?: string
}

export interface AccountEntry {
  kind: 'account'
  seq: number
  ts: number
  id: string
  currency: Currency
  flags: AccountFlag[]
}

/** A pending transfer that timed out: its amounts are released. */
export interface ExpireEntry {
  kind: 'expire'
  seq: number
  ts: number
  pendingId: string
  debit: string
  credit: string
  amount: bigint
  currency: Currency
}

export type Entry = TransferEntry | AccountEntry | ExpireEntry

/** A pending transfer still open. */
export interface PendingTransfer {
  id: string
  debit: string
  credit: string
  amount: bigint
  currency: Currency
  /** ms since the epoch; 0 = never. */
  expiresAt: number
  seq: number
}

export type Resolution = 'posted' | 'voided' | 'expired'

/** The outcome of one transfer or account of a request. */
export type Result =
  | { id: string; ok: true; entry: number; ts: number; replay: boolean }
  | { id: string; ok: false; result: string; field?: string; message: string }
