// The ledger's state machine: accounts, open pending transfers and the rules that decide a transfer, in
// TigerBeetle's manner (spec/ledger.md "Results" lists the codes in their order of precedence). Pure and
// in memory: the live ledger (ledger.ts) applies requests through it and persists its journal of effects;
// verification (verify.ts) replays the log through the same rules. A linked chain is applied between
// begin() and commit(), and rollback() undoes every change and journal line since begin().
import { U128_MAX } from './amount.ts'
import type { Account, AccountFlag, Currency, Entry, PendingTransfer, Resolution, TransferEntry, TransferFlag } from './types.ts'

/** A refusal: the result code and the field at fault. */
export interface Refusal {
  result: string
  field?: string
  message: string
}

/** What a committed change asks the store to write, in order. */
export type Effect =
  | { type: 'entry'; entry: Entry }
  | { type: 'account'; id: string }
  | { type: 'pending-open'; pending: PendingTransfer }
  | { type: 'pending-close'; id: string; resolution: Resolution }
  | { type: 'failed'; id: string; refusal: Refusal }

/** Facts outside the open state: how a closed pending transfer ended, whether an id names any transfer. */
export interface PastLookups {
  resolution(id: string): Resolution | undefined
  transferExists(id: string): boolean
}

const refuse = (result: string, message: string, field?: string): Refusal => ({ result, message, ...(field ? { field } : {}) })

export function sortFlags<F extends string>(flags: readonly F[] | undefined, order: readonly F[]): F[] {
  return [...new Set(flags ?? [])].sort((a, b) => order.indexOf(a) - order.indexOf(b))
}

/** A transfer with every field resolved, before it gets its place in the log. */
export type ResolvedTransfer = Omit<TransferEntry, 'kind' | 'seq' | 'ts'>

export class LedgerState {
  readonly accounts = new Map<string, Account>()
  readonly pending = new Map<string, PendingTransfer>()
  /** Transfers created and pending transfers closed since the journal was last taken (this group commit). */
  readonly recent = new Map<string, TransferEntry>()
  readonly recentResolutions = new Map<string, Resolution>()
  readonly recentFailed = new Map<string, Refusal>()
  /** The next entry's sequence number (= the log's size once the journal is written). */
  nextSeq: number
  #journal: Effect[] = []
  #undo: Array<() => void> | undefined
  #mark = 0

  constructor(nextSeq = 0) {
    this.nextSeq = nextSeq
  }

  /** The effects committed since the last call, and forgets the per-commit maps. */
  takeJournal(): Effect[] {
    const j = this.#journal
    this.#journal = []
    this.recent.clear()
    this.recentResolutions.clear()
    this.recentFailed.clear()
    return j
  }

  begin(): void {
    this.#undo = []
    this.#mark = this.#journal.length
  }

  commit(): void {
    this.#undo = undefined
  }

  rollback(): void {
    const u = this.#undo ?? []
    for (let i = u.length - 1; i >= 0; i--) u[i]!()
    this.#undo = undefined
    this.#journal.length = this.#mark
  }

  #remember(fn: () => void): void {
    this.#undo?.push(fn)
  }

  #setField(a: Account, field: 'debitsPending' | 'debitsPosted' | 'creditsPending' | 'creditsPosted', v: bigint): void {
    const old = a[field]
    this.#remember(() => {
      a[field] = old
    })
    a[field] = v
  }

  #touch(id: string): void {
    this.#journal.push({ type: 'account', id })
  }

  #nextEntrySeq(): number {
    const s = this.nextSeq
    this.#remember(() => {
      this.nextSeq = s
    })
    this.nextSeq = s + 1
    return s
  }

  /** Records a refused id so that it stays failed (only refusals that depend on the ledger's state). */
  recordFailure(id: string, refusal: Refusal): void {
    this.#journal.push({ type: 'failed', id, refusal })
    this.recentFailed.set(id, refusal)
    this.#remember(() => this.recentFailed.delete(id))
  }

  createAccount(id: string, currency: Currency, flags: AccountFlag[], ts: number): Entry {
    const seq = this.#nextEntrySeq()
    this.accounts.set(id, { id, seq, currency, flags, debitsPending: 0n, debitsPosted: 0n, creditsPending: 0n, creditsPosted: 0n })
    this.#remember(() => this.accounts.delete(id))
    const entry: Entry = { kind: 'account', seq, ts, id, currency, flags }
    this.#journal.push({ type: 'entry', entry })
    this.#touch(id)
    return entry
  }

  /**
   * Checks a transfer whose fields are resolved (a post or void carries its pending transfer's accounts,
   * currency and the amount posted) against the state, and applies it. Returns its entry, or a refusal.
   */
  applyTransfer(t: ResolvedTransfer, ts: number): TransferEntry | Refusal {
    const isPost = t.flags.includes('post_pending')
    const isVoid = t.flags.includes('void_pending')
    const dr = this.accounts.get(t.debit)
    const cr = this.accounts.get(t.credit)
    if (!dr) return refuse('debit_account_not_found', `no account ${t.debit}`, 'debit')
    if (!cr) return refuse('credit_account_not_found', `no account ${t.credit}`, 'credit')
    if (dr.currency !== cr.currency) return refuse('accounts_must_have_the_same_currency', `${t.debit} holds ${dr.currency}, ${t.credit} holds ${cr.currency}`, 'credit')
    if (t.currency !== dr.currency) return refuse('transfer_must_have_the_same_currency_as_accounts', `the transfer is in ${t.currency}, its accounts in ${dr.currency}`, 'currency')
    const a = t.amount
    if (isPost || isVoid) {
      const p = this.pending.get(t.pendingId ?? '')
      if (!p) return refuse('pending_transfer_not_found', `no open pending transfer ${t.pendingId}`, 'pendingId')
      if (isPost && a > p.amount) return refuse('exceeds_pending_transfer_amount', `posting ${a} of a pending ${p.amount}`, 'amount')
      if (isVoid && a !== p.amount) return refuse('pending_transfer_has_different_amount', `voiding ${a} of a pending ${p.amount}`, 'amount')
      if (p.expiresAt !== 0 && p.expiresAt <= ts) return refuse('pending_transfer_expired', `pending transfer ${p.id} expired`, 'pendingId')
      if (isPost) {
        if (dr.debitsPosted + a > U128_MAX) return refuse('overflows_debits_posted', `${t.debit}'s posted debits would overflow`, 'amount')
        if (cr.creditsPosted + a > U128_MAX) return refuse('overflows_credits_posted', `${t.credit}'s posted credits would overflow`, 'amount')
      }
      const seq = this.#nextEntrySeq()
      this.#setField(dr, 'debitsPending', dr.debitsPending - p.amount)
      this.#setField(cr, 'creditsPending', cr.creditsPending - p.amount)
      if (isPost) {
        this.#setField(dr, 'debitsPosted', dr.debitsPosted + a)
        this.#setField(cr, 'creditsPosted', cr.creditsPosted + a)
      }
      this.#closePending(p, isPost ? 'posted' : 'voided')
      return this.#logTransfer(t, seq, ts)
    }
    const pending = t.flags.includes('pending')
    if (pending) {
      if (dr.debitsPending + a > U128_MAX) return refuse('overflows_debits_pending', `${t.debit}'s pending debits would overflow`, 'amount')
      if (cr.creditsPending + a > U128_MAX) return refuse('overflows_credits_pending', `${t.credit}'s pending credits would overflow`, 'amount')
    } else {
      if (dr.debitsPosted + a > U128_MAX) return refuse('overflows_debits_posted', `${t.debit}'s posted debits would overflow`, 'amount')
      if (cr.creditsPosted + a > U128_MAX) return refuse('overflows_credits_posted', `${t.credit}'s posted credits would overflow`, 'amount')
    }
    if (dr.debitsPending + dr.debitsPosted + a > U128_MAX) return refuse('overflows_debits', `${t.debit}'s debits would overflow`, 'amount')
    if (cr.creditsPending + cr.creditsPosted + a > U128_MAX) return refuse('overflows_credits', `${t.credit}'s credits would overflow`, 'amount')
    const expiresAt = pending && t.timeout ? ts + t.timeout * 1000 : 0
    if (!Number.isSafeInteger(expiresAt)) return refuse('overflows_timeout', 'the timeout is too far away', 'timeout')
    if (dr.flags.includes('debits_must_not_exceed_credits') && dr.debitsPending + dr.debitsPosted + a > dr.creditsPosted) {
      return refuse('exceeds_credits', `${t.debit} holds ${dr.creditsPosted - dr.debitsPosted - dr.debitsPending} available, ${a} asked`, 'amount')
    }
    if (cr.flags.includes('credits_must_not_exceed_debits') && cr.creditsPending + cr.creditsPosted + a > cr.debitsPosted) {
      return refuse('exceeds_debits', `${t.credit} may take ${cr.debitsPosted - cr.creditsPosted - cr.creditsPending} more, ${a} sent`, 'amount')
    }
    const seq = this.#nextEntrySeq()
    if (pending) {
      this.#setField(dr, 'debitsPending', dr.debitsPending + a)
      this.#setField(cr, 'creditsPending', cr.creditsPending + a)
      const p: PendingTransfer = { id: t.id, debit: t.debit, credit: t.credit, amount: a, currency: t.currency, expiresAt, seq }
      this.pending.set(p.id, p)
      this.#remember(() => this.pending.delete(p.id))
      this.#journal.push({ type: 'pending-open', pending: p })
    } else {
      this.#setField(dr, 'debitsPosted', dr.debitsPosted + a)
      this.#setField(cr, 'creditsPosted', cr.creditsPosted + a)
    }
    return this.#logTransfer(t, seq, ts)
  }

  #logTransfer(t: ResolvedTransfer, seq: number, ts: number): TransferEntry {
    const entry: TransferEntry = { kind: 'transfer', seq, ts, ...t }
    this.#journal.push({ type: 'entry', entry })
    this.#touch(t.debit)
    this.#touch(t.credit)
    this.recent.set(t.id, entry)
    this.#remember(() => this.recent.delete(t.id))
    return entry
  }

  #closePending(p: PendingTransfer, resolution: Resolution): void {
    this.pending.delete(p.id)
    this.recentResolutions.set(p.id, resolution)
    this.#remember(() => {
      this.pending.set(p.id, p)
      this.recentResolutions.delete(p.id)
    })
    this.#journal.push({ type: 'pending-close', id: p.id, resolution })
  }

  /** Releases an open pending transfer whose time is up; its entry, or undefined if it is not open. */
  expire(id: string, ts: number): Entry | undefined {
    const p = this.pending.get(id)
    if (!p) return undefined
    const dr = this.accounts.get(p.debit)!
    const cr = this.accounts.get(p.credit)!
    const seq = this.#nextEntrySeq()
    this.#setField(dr, 'debitsPending', dr.debitsPending - p.amount)
    this.#setField(cr, 'creditsPending', cr.creditsPending - p.amount)
    this.#closePending(p, 'expired')
    const entry: Entry = { kind: 'expire', seq, ts, pendingId: id, debit: p.debit, credit: p.credit, amount: p.amount, currency: p.currency }
    this.#journal.push({ type: 'entry', entry })
    this.#touch(p.debit)
    this.#touch(p.credit)
    return entry
  }

  /**
   * Resolves a post or void against its pending transfer: fills the fields it left out, or refuses it
   * (not found, not pending, already posted/voided/expired, different accounts or currency).
   */
  resolvePostOrVoid(t: { id: string; pendingId: string; debit?: string; credit?: string; currency?: Currency; amount?: bigint; flags: TransferFlag[]; ref?: string }, past: PastLookups): ResolvedTransfer | Refusal {
    const p = this.pending.get(t.pendingId)
    if (!p) {
      const r = this.recentResolutions.get(t.pendingId) ?? past.resolution(t.pendingId)
      if (r === 'posted') return refuse('pending_transfer_already_posted', `${t.pendingId} was posted`, 'pendingId')
      if (r === 'voided') return refuse('pending_transfer_already_voided', `${t.pendingId} was voided`, 'pendingId')
      if (r === 'expired') return refuse('pending_transfer_expired', `${t.pendingId} expired`, 'pendingId')
      if (this.recent.has(t.pendingId) || past.transferExists(t.pendingId)) return refuse('pending_transfer_not_pending', `${t.pendingId} is not a pending transfer`, 'pendingId')
      return refuse('pending_transfer_not_found', `no transfer ${t.pendingId}`, 'pendingId')
    }
    if (t.debit !== undefined && t.debit !== p.debit) return refuse('pending_transfer_has_different_debit', `${t.pendingId} debits ${p.debit}`, 'debit')
    if (t.credit !== undefined && t.credit !== p.credit) return refuse('pending_transfer_has_different_credit', `${t.pendingId} credits ${p.credit}`, 'credit')
    if (t.currency !== undefined && t.currency !== p.currency) return refuse('pending_transfer_has_different_currency', `${t.pendingId} is in ${p.currency}`, 'currency')
    const amount = t.amount ?? p.amount
    return { id: t.id, debit: p.debit, credit: p.credit, amount, currency: p.currency, flags: t.flags, pendingId: t.pendingId, ...(t.ref !== undefined ? { ref: t.ref } : {}) }
  }

  /** Sums per currency of each balance field: debits equal credits, pending and posted alike (spec/ledger.md). */
  totals(): Record<Currency, { debitsPending: bigint; debitsPosted: bigint; creditsPending: bigint; creditsPosted: bigint }> {
    const z = () => ({ debitsPending: 0n, debitsPosted: 0n, creditsPending: 0n, creditsPosted: 0n })
    const out = { NLC: z(), NLR: z() }
    for (const a of this.accounts.values()) {
      const s = out[a.currency]
      s.debitsPending += a.debitsPending
      s.debitsPosted += a.debitsPosted
      s.creditsPending += a.creditsPending
      s.creditsPosted += a.creditsPosted
    }
    return out
  }
}

export function isRefusal(x: unknown): x is Refusal {
  return typeof x === 'object' && x !== null && 'result' in x && !('kind' in x)
}
