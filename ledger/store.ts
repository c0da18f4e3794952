// The ledger's level database (its own folder, NOIR_HOME/ledger): string keys, byte values, one prefix per
// record kind. Every group commit is ONE level batch written with sync, so a transfer, its log entry, its
// tree nodes and its balance effects land together or not at all (spec/ledger.md "Storage").
//
//   e:<seq>            leaf hash (32 bytes) || entry bytes (canonical JSON)
//   n:<level>:<index>  hash of the perfect subtree `index` at `level` >= 1 (for proofs without a rescan)
//   i:<transfer id>    the seq of the entry the id created (decimal), or the refusal that made the id fail
//                      for good (JSON, starts with '{'): one key, so a new id costs one lookup
//   a:<account id>     the account and its four balance fields (JSON, amounts as decimal strings)
//   p:<transfer id>    an open pending transfer (JSON); deleted when posted, voided or expired
//   r:<transfer id>    how a pending transfer ended: posted | voided | expired
//   c:<size>           a signed checkpoint with its cosignatures (JSON)
import { Level } from 'level'
import type { Account, AccountFlag, Currency, PendingTransfer, Resolution } from './types.ts'
import type { Refusal } from './state.ts'

export type LedgerDb = Level<string, Uint8Array>

export function openLedgerDb(location: string): LedgerDb {
  return new Level<string, Uint8Array>(location, { keyEncoding: 'utf8', valueEncoding: 'view' })
}

const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0')

export const Keys = {
  entry: (seq: number): string => 'e:' + hex(seq, 12),
  node: (level: number, index: number): string => 'n:' + hex(level, 2) + ':' + hex(index, 12),
  id: (id: string): string => 'i:' + id,
  account: (id: string): string => 'a:' + id,
  pending: (id: string): string => 'p:' + id,
  resolution: (id: string): string => 'r:' + id,
  checkpoint: (size: number): string => 'c:' + hex(size, 12),
} as const

/** The range options of every key with `prefix` (e.g. 'e:'). */
export function prefixRange(prefix: string): { gte: string; lt: string } {
  return { gte: prefix, lt: prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1) }
}

export const seqOfEntryKey = (key: string): number => parseInt(key.slice(2), 16)

const enc = new TextEncoder()
const dec = new TextDecoder()

export const jsonBytes = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v))
export const parseJsonBytes = (b: Uint8Array): unknown => JSON.parse(dec.decode(b))
export const textBytes = (s: string): Uint8Array => enc.encode(s)
export const bytesText = (b: Uint8Array): string => dec.decode(b)

interface AccountRecord {
  id: string
  seq: number
  currency: Currency
  flags: AccountFlag[]
  debitsPending: string
  debitsPosted: string
  creditsPending: string
  creditsPosted: string
}

export function accountBytes(a: Account): Uint8Array {
  const r: AccountRecord = { id: a.id, seq: a.seq, currency: a.currency, flags: [...a.flags], debitsPending: String(a.debitsPending), debitsPosted: String(a.debitsPosted), creditsPending: String(a.creditsPending), creditsPosted: String(a.creditsPosted) }
  return jsonBytes(r)
}

export function accountFromBytes(b: Uint8Array): Account {
  const r = parseJsonBytes(b) as AccountRecord
  return { id: r.id, seq: r.seq, currency: r.currency, flags: r.flags, debitsPending: BigInt(r.debitsPending), debitsPosted: BigInt(r.debitsPosted), creditsPending: BigInt(r.creditsPending), creditsPosted: BigInt(r.creditsPosted) }
}

export function pendingBytes(p: PendingTransfer): Uint8Array {
  return jsonBytes({ ...p, amount: String(p.amount) })
}

export function pendingFromBytes(b: Uint8Array): PendingTransfer {
  const r = parseJsonBytes(b) as Omit<PendingTransfer, 'amount'> & { amount: string }
  return { ...r, amount: BigInt(r.amount) }
}

export const resolutionFromBytes = (b: Uint8Array): Resolution => bytesText(b) as Resolution
export const refusalFromBytes = (b: Uint8Array): Refusal => parseJsonBytes(b) as Refusal
