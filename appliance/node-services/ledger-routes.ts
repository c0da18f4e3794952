// The local API routes of the ledger service (spec/api.md "Wallet and ledger", spec/ledger.md): the wallet
// behind `noir wallet`, and the ledger's transfers, verification, proofs and checkpoints behind
// `noir ledger`. Amounts cross the API as decimal strings (a JSON number only when it is a safe integer).
import { InvalidRequestError } from '../daemon/errors.ts'
import type { ApiRoute, JsonValue } from '../daemon/service.ts'
import type { Ledger } from '../../ledger/ledger.ts'
import { encodeEntry } from '../../ledger/entry-codec.ts'
import { parseAmount } from '../../ledger/amount.ts'
import { okOrThrow } from '../../ledger/ledger.ts'
import type { AccountInit, Entry, TransferInit } from '../../ledger/types.ts'

type Obj = Record<string, JsonValue>
const MAX_PER_REQUEST = 10_000

function obj(body: JsonValue | undefined, what = 'the request body'): Obj {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidRequestError(`${what} must be a JSON object`)
  return body
}

function onlyFields(o: Obj, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new InvalidRequestError(`${what}: unknown field '${k}'`)
}

function optString(o: Obj, k: string): string | undefined {
  const v = o[k]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw new InvalidRequestError(`'${k}' must be a string`)
  return v
}

function intParam(v: string | null | undefined, name: string, min = 0): number | undefined {
  if (v === null || v === undefined || v === '') return undefined
  if (!/^[0-9]{1,15}$/.test(v) || Number(v) < min) throw new InvalidRequestError(`'${name}' must be a whole number >= ${min}`)
  return Number(v)
}

const TRANSFER_FIELDS = ['id', 'debit', 'credit', 'amount', 'currency', 'pendingId', 'timeout', 'flags', 'ref'] as const

/** A transfer from the API (shape only: the ledger checks the values and names the field at fault). */
export function transferFromWire(v: JsonValue): TransferInit {
  const o = obj(v, 'a transfer')
  onlyFields(o, TRANSFER_FIELDS, 'a transfer')
  const t: Record<string, unknown> = {}
  for (const k of TRANSFER_FIELDS) if (o[k] !== undefined && o[k] !== null) t[k] = o[k]
  if (t.amount !== undefined) t.amount = parseAmount(t.amount, 'amount')
  return t as unknown as TransferInit
}

export function accountFromWire(v: JsonValue): AccountInit {
  const o = obj(v, 'an account')
  onlyFields(o, ['id', 'currency', 'flags'], 'an account')
  return o as unknown as AccountInit
}

/** An entry as JSON (the same fields as its canonical bytes: amounts as decimal strings). */
export function entryJson(e: Entry): JsonValue {
  return JSON.parse(new TextDecoder().decode(encodeEntry(e))) as JsonValue
}

function list(body: JsonValue | undefined, field: string): JsonValue[] {
  const v = obj(body)[field]
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_PER_REQUEST) throw new InvalidRequestError(`'${field}' must be an array of 1 to ${MAX_PER_REQUEST}`)
  return v
}

function walletView(l: Ledger): JsonValue {
  return {
    did: l.did,
    balances: ['self:NLC', 'self:NLR'].map((id) => l.balance(id)).filter((b) => b !== undefined) as unknown as JsonValue,
    entries: l.size,
    checkpoint: (l.latestCheckpoint?.body ?? null) as unknown as JsonValue,
  }
}

export function walletRoutes(ledger: () => Ledger): ApiRoute[] {
  return [
    { method: 'GET', path: '/v1/wallet', handler: () => walletView(ledger()) },
    {
      method: 'GET',
      path: '/v1/wallet/history',
      handler: async (req) => {
        const account = req.query.get('account')
        const accounts = account ? [account] : ['self:NLC', 'self:NLR']
        const entries = await ledger().history({ accounts, limit: intParam(req.query.get('limit'), 'limit', 1) ?? 50, before: intParam(req.query.get('before'), 'before') })
        return { entries: entries.map(entryJson) }
      },
    },
    {
      // development funding (and the adapter an external payment rail calls): once per reference
      method: 'POST',
      path: '/v1/wallet/topup',
      handler: async (req) => {
        const b = obj(req.body)
        onlyFields(b, ['amount', 'ref', 'account'], 'a top-up')
        const ref = optString(b, 'ref')
        if (!ref) throw new InvalidRequestError("'ref' (the external reference) is required")
        const r = await ledger().topup(ref, parseAmount(b.amount, 'amount'), optString(b, 'account') ?? 'self:NLC')
        return { result: r, wallet: walletView(ledger()) }
      },
    },
  ]
}

export function ledgerRoutes(ledger: () => Ledger): ApiRoute[] {
  return [
    { method: 'GET', path: '/v1/ledger/accounts', handler: () => ({ accounts: ledger().accounts().map((a) => ({ ...a, debitsPending: String(a.debitsPending), debitsPosted: String(a.debitsPosted), creditsPending: String(a.creditsPending), creditsPosted: String(a.creditsPosted) })) as unknown as JsonValue }) },
    { method: 'POST', path: '/v1/ledger/accounts', handler: async (req) => ({ results: (await ledger().createAccounts(list(req.body, 'accounts').map(accountFromWire))) as unknown as JsonValue }) },
    { method: 'POST', path: '/v1/ledger/transfers', handler: async (req) => ({ results: (await ledger().createTransfers(list(req.body, 'transfers').map(transferFromWire))) as unknown as JsonValue }) },
    {
      // one transfer, answered with its typed error when refused (TransferRefusedError / IdempotencyConflictError)
      method: 'POST',
      path: '/v1/ledger/transfer',
      handler: async (req) => okOrThrow((await ledger().createTransfers([transferFromWire(req.body ?? null)]))[0]!) as unknown as JsonValue,
    },
    { method: 'GET', path: '/v1/ledger/verify', handler: async () => (await ledger().verify()) as unknown as JsonValue },
    {
      method: 'GET',
      path: '/v1/ledger/entries/:entry',
      handler: async (req) => {
        const { entry, bytes } = await ledger().entry(intParam(req.params.entry, 'entry') ?? -1)
        return { entry: entryJson(entry), bytes: Buffer.from(bytes).toString('utf8') }
      },
    },
    { method: 'GET', path: '/v1/ledger/proof/:entry', handler: async (req) => (await ledger().proveEntry(intParam(req.params.entry, 'entry') ?? -1)) as unknown as JsonValue },
    {
      method: 'GET',
      path: '/v1/ledger/consistency',
      handler: async (req) => {
        const from = intParam(req.query.get('from'), 'from', 1)
        const to = intParam(req.query.get('to'), 'to', 1)
        if (from === undefined || to === undefined || from > to) throw new InvalidRequestError("'from' and 'to' are sizes with 1 <= from <= to")
        return { from, to, proof: (await ledger().consistencyProof(from, to)).map((h) => Buffer.from(h).toString('hex')) }
      },
    },
    {
      method: 'GET',
      path: '/v1/ledger/checkpoints',
      handler: async (req) => ({ checkpoints: (await ledger().checkpoints({ from: intParam(req.query.get('from'), 'from'), limit: intParam(req.query.get('limit'), 'limit', 1) })) as unknown as JsonValue }),
    },
    { method: 'GET', path: '/v1/ledger/checkpoints/latest', handler: () => ({ checkpoint: (ledger().latestCheckpoint ?? null) as unknown as JsonValue }) },
    { method: 'POST', path: '/v1/ledger/checkpoints', handler: async () => ({ checkpoint: ((await ledger().checkpoint()) ?? null) as unknown as JsonValue }) },
    {
      method: 'POST',
      path: '/v1/ledger/checkpoints/:size/cosignatures',
      handler: async (req) => {
        const b = obj(req.body)
        onlyFields(b, ['did', 'signature'], 'a cosignature')
        const did = optString(b, 'did')
        const signature = optString(b, 'signature')
        if (!did || !signature) throw new InvalidRequestError("'did' and 'signature' are required")
        return { checkpoint: (await ledger().addCosignature(intParam(req.params.size, 'size', 1) ?? 0, { did, signature })) as unknown as JsonValue }
      },
    },
  ]
}
