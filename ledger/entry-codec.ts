// A log entry's bytes: RFC 8785 canonical JSON (keys sorted, no whitespace, amounts as decimal strings),
// so any language can re-derive them. The encoder writes the keys in their canonical order directly (the
// append hot path: no generic canonicalizer); the decoder refuses anything that does not re-encode to the
// same bytes, so one entry has exactly one byte form. spec/ledger.md "Entries" lists the fields.
import { MalformedEntryError } from './errors.ts'
import { ACCOUNT_FLAGS, CURRENCIES, ID_PATTERN, TRANSFER_FLAGS, type AccountFlag, type Currency, type Entry, type TransferFlag } from './types.ts'
import { U128_MAX } from './amount.ts'

export const ENTRY_VERSION = 1
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

const list = (xs: readonly string[]): string => (xs.length === 0 ? '[]' : '["' + xs.join('","') + '"]')

/** The canonical JSON text of an entry (ids are validated elsewhere to need no escaping). */
export function entryText(e: Entry): string {
  switch (e.kind) {
    case 'account':
      return `{"currency":"${e.currency}","flags":${list(e.flags)},"id":"${e.id}","kind":"account","seq":${e.seq},"ts":${e.ts},"v":${ENTRY_VERSION}}`
    case 'transfer':
      return (
        `{"amount":"${e.amount}","credit":"${e.credit}","currency":"${e.currency}","debit":"${e.debit}","flags":${list(e.flags)},"id":"${e.id}","kind":"transfer"` +
        (e.pendingId !== undefined ? `,"pendingId":"${e.pendingId}"` : '') +
        (e.ref !== undefined ? `,"ref":"${e.ref}"` : '') +
        `,"seq":${e.seq}` +
        (e.timeout !== undefined ? `,"timeout":${e.timeout}` : '') +
        `,"ts":${e.ts},"v":${ENTRY_VERSION}}`
      )
    case 'expire':
      return `{"amount":"${e.amount}","credit":"${e.credit}","currency":"${e.currency}","debit":"${e.debit}","kind":"expire","pendingId":"${e.pendingId}","seq":${e.seq},"ts":${e.ts},"v":${ENTRY_VERSION}}`
  }
}

export function encodeEntry(e: Entry): Uint8Array {
  return encoder.encode(entryText(e))
}

type Obj = Record<string, unknown>

function fail(why: string): never {
  throw new MalformedEntryError(`malformed entry: ${why}`)
}
function id(o: Obj, k: string): string {
  const v = o[k]
  if (typeof v !== 'string' || !ID_PATTERN.test(v)) fail(`'${k}' is not an id`)
  return v
}
function int(o: Obj, k: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[k]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) fail(`'${k}' is not a whole number`)
  return v
}
function currency(o: Obj): Currency {
  const v = o.currency
  if (!CURRENCIES.includes(v as Currency)) fail(`'currency' is not NLC or NLR`)
  return v as Currency
}
function amount(o: Obj): bigint {
  const v = o.amount
  if (typeof v !== 'string' || !/^[1-9][0-9]{0,38}$/.test(v)) fail(`'amount' is not a positive decimal string`)
  const n = BigInt(v)
  if (n > U128_MAX) fail(`'amount' exceeds 2^128 - 1`)
  return n
}
function flags<F extends string>(o: Obj, known: readonly F[]): F[] {
  const v = o.flags
  if (!Array.isArray(v) || !v.every((f) => known.includes(f as F))) fail(`'flags' holds an unknown flag`)
  for (let i = 1; i < v.length; i++) if (known.indexOf(v[i] as F) <= known.indexOf(v[i - 1] as F)) fail(`'flags' are repeated or out of their canonical order`)
  return v as F[]
}

/** Parses entry bytes; MalformedEntryError unless they are exactly the canonical form of a valid entry. */
export function decodeEntry(bytes: Uint8Array): Entry {
  let text: string
  let o: unknown
  try {
    text = decoder.decode(bytes)
    o = JSON.parse(text)
  } catch {
    fail('not UTF-8 JSON')
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) fail('not an object')
  const r = o as Obj
  if (r.v !== ENTRY_VERSION) fail(`unknown version ${String(r.v)}`)
  const seq = int(r, 'seq')
  const ts = int(r, 'ts')
  let e: Entry
  if (r.kind === 'account') e = { kind: 'account', seq, ts, id: id(r, 'id'), currency: currency(r), flags: flags<AccountFlag>(r, ACCOUNT_FLAGS) }
  else if (r.kind === 'transfer') {
    e = { kind: 'transfer', seq, ts, id: id(r, 'id'), debit: id(r, 'debit'), credit: id(r, 'credit'), amount: amount(r), currency: currency(r), flags: flags<TransferFlag>(r, TRANSFER_FLAGS) }
    if (r.pendingId !== undefined) e.pendingId = id(r, 'pendingId')
    if (r.ref !== undefined) e.ref = id(r, 'ref')
    if (r.timeout !== undefined) e.timeout = int(r, 'timeout', 0xffffffff)
  } else if (r.kind === 'expire') {
    e = { kind: 'expire', seq, ts, pendingId: id(r, 'pendingId'), debit: id(r, 'debit'), credit: id(r, 'credit'), amount: amount(r), currency: currency(r) }
  } else fail(`unknown kind ${JSON.stringify(r.kind)}`)
  if (entryText(e) !== text) fail('not in canonical form (extra fields, key order, spacing or flag order)')
  return e
}
