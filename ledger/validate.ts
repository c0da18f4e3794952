// Checks of a request's own fields, before the ledger's state is consulted (spec/ledger.md "Results"):
// refusals here are not recorded (the same request fails the same way again), unlike those that depend on
// the state, which make the id fail for good. Also the comparison of a retried id with its first transfer.
import { isValidAmount } from './amount.ts'
import { sortFlags, type Refusal } from './state.ts'
import { ACCOUNT_FLAGS, CURRENCIES, ID_PATTERN, TRANSFER_FLAGS, type AccountFlag, type AccountInit, type Currency, type TransferEntry, type TransferFlag, type TransferInit } from './types.ts'

const refuse = (result: string, message: string, field?: string): Refusal => ({ result, message, ...(field ? { field } : {}) })

/** A transfer request whose own fields are valid, flags in canonical order, timeout 0 dropped. */
export interface CheckedTransfer {
  id: string
  debit?: string
  credit?: string
  amount?: bigint
  currency?: Currency
  pendingId?: string
  timeout?: number
  flags: TransferFlag[]
  ref?: string
}

const isId = (v: unknown): v is string => typeof v === 'string' && ID_PATTERN.test(v)

export function checkTransfer(t: TransferInit): CheckedTransfer | Refusal {
  if (typeof t !== 'object' || t === null) return refuse('transfer_invalid', 'a transfer is an object')
  if (!isId(t.id)) return refuse('id_invalid', 'an id is 1-128 characters of [A-Za-z0-9._:-]', 'id')
  if (t.flags !== undefined && (!Array.isArray(t.flags) || !t.flags.every((f) => TRANSFER_FLAGS.includes(f)))) return refuse('flags_invalid', `flags are among ${TRANSFER_FLAGS.join(', ')}`, 'flags')
  const flags = sortFlags(t.flags, TRANSFER_FLAGS)
  const phase = ['pending', 'post_pending', 'void_pending'].filter((f) => flags.includes(f as TransferFlag))
  if (phase.length > 1) return refuse('flags_are_mutually_exclusive', `${phase.join(' and ')} exclude each other`, 'flags')
  const postOrVoid = flags.includes('post_pending') || flags.includes('void_pending')
  if (postOrVoid) {
    if (t.pendingId === undefined) return refuse('pending_id_must_not_be_empty', 'a post or void names its pending transfer', 'pendingId')
    if (!isId(t.pendingId)) return refuse('pending_id_invalid', 'pendingId is not an id', 'pendingId')
    if (t.pendingId === t.id) return refuse('pending_id_must_be_different', 'a transfer cannot post or void itself', 'pendingId')
  } else if (t.pendingId !== undefined) return refuse('pending_id_must_be_empty', 'only a post or void names a pending transfer', 'pendingId')
  if (t.timeout !== undefined) {
    if (!flags.includes('pending')) return refuse('timeout_reserved_for_pending_transfer', 'only a pending transfer has a timeout', 'timeout')
    if (typeof t.timeout !== 'number' || !Number.isInteger(t.timeout) || t.timeout < 0 || t.timeout > 0xffffffff) return refuse('timeout_invalid', 'timeout is whole seconds in [0, 2^32 - 1]', 'timeout')
  }
  for (const f of ['debit', 'credit'] as const) {
    const v = t[f]
    if (v === undefined) {
      if (!postOrVoid) return refuse(`${f}_account_id_must_not_be_empty`, `'${f}' is required`, f)
    } else if (!isId(v)) return refuse(`${f}_account_id_invalid`, `'${f}' is not an id`, f)
  }
  if (t.debit !== undefined && t.debit === t.credit) return refuse('accounts_must_be_different', 'debit and credit are the same account', 'credit')
  if (t.amount === undefined) {
    if (!postOrVoid) return refuse('amount_must_not_be_empty', "'amount' is required", 'amount')
  } else if (!isValidAmount(t.amount)) return refuse('amount_invalid', "'amount' is a whole number in [1, 2^128 - 1]", 'amount')
  if (t.currency === undefined) {
    if (!postOrVoid) return refuse('currency_must_not_be_empty', "'currency' is required", 'currency')
  } else if (!CURRENCIES.includes(t.currency)) return refuse('currency_invalid', "'currency' is NLC or NLR", 'currency')
  if (t.ref !== undefined && !isId(t.ref)) return refuse('ref_invalid', "'ref' is 1-128 characters of [A-Za-z0-9._:-]", 'ref')
  const out: CheckedTransfer = { id: t.id, flags }
  if (t.debit !== undefined) out.debit = t.debit
  if (t.credit !== undefined) out.credit = t.credit
  if (t.amount !== undefined) out.amount = t.amount
  if (t.currency !== undefined) out.currency = t.currency
  if (t.pendingId !== undefined) out.pendingId = t.pendingId
  if (t.timeout) out.timeout = t.timeout
  if (t.ref !== undefined) out.ref = t.ref
  return out
}

/** Compares a retried transfer with the one its id created: undefined when the same, else names the field. */
export function compareWithExisting(t: CheckedTransfer, e: TransferEntry): Refusal | undefined {
  const diff = (field: string): Refusal => refuse(`exists_with_different_${field === 'pendingId' ? 'pending_id' : field}`, `transfer ${t.id} exists with another ${field}`, field)
  if (t.flags.join() !== e.flags.join()) return diff('flags')
  if (t.pendingId !== e.pendingId) return diff('pendingId')
  if (t.timeout !== e.timeout) return diff('timeout')
  if (t.debit !== undefined && t.debit !== e.debit) return diff('debit')
  if (t.credit !== undefined && t.credit !== e.credit) return diff('credit')
  if (t.amount !== undefined && t.amount !== e.amount) return diff('amount')
  if (t.currency !== undefined && t.currency !== e.currency) return diff('currency')
  if (t.ref !== e.ref) return diff('ref')
  return undefined
}

export interface CheckedAccount {
  id: string
  currency: Currency
  flags: AccountFlag[]
}

export function checkAccount(a: AccountInit): CheckedAccount | Refusal {
  if (typeof a !== 'object' || a === null) return refuse('account_invalid', 'an account is an object')
  if (!isId(a.id)) return refuse('id_invalid', 'an id is 1-128 characters of [A-Za-z0-9._:-]', 'id')
  if (!CURRENCIES.includes(a.currency)) return refuse('currency_invalid', "'currency' is NLC or NLR", 'currency')
  if (a.flags !== undefined && (!Array.isArray(a.flags) || !a.flags.every((f) => ACCOUNT_FLAGS.includes(f)))) return refuse('flags_invalid', `flags are among ${ACCOUNT_FLAGS.join(', ')}`, 'flags')
  const flags = sortFlags(a.flags, ACCOUNT_FLAGS)
  if (flags.length === 2) return refuse('flags_are_mutually_exclusive', 'an account cannot limit both its debits and its credits', 'flags')
  return { id: a.id, currency: a.currency, flags }
}
