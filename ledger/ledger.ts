// One party's ledger on its node (spec/ledger.md): accounts and double-entry transfers kept in level, every
// applied change an entry of an append-only RFC 6962 Merkle log with signed checkpoints. Requests queue up
// and are applied in group commits: everything that arrived while the previous write was on its way is
// applied in order through the state machine (state.ts), then written as ONE level batch with sync; only
// then are the callers answered. A failed write closes the ledger (its memory may be ahead of its disk):
// reopening reads the last durable state back.
import type { NodeKey } from '../identity/keys.ts'
import { decodeEntry, encodeEntry } from './entry-codec.ts'
import { EntryNotFoundError, IdempotencyConflictError, InvalidCheckpointError, LedgerClosedError, LedgerStorageError, TransferRefusedError } from './errors.ts'
import { ExpiryQueue } from './expiry-queue.ts'
import { consistencyProof, fromPerfect, Frontier, inclusionProof, leafHash, perfectPieces, type Hash, type SubtreeHashes } from './merkle.ts'
import { signCheckpoint, verifyCosignature, checkpointBody, type Cosignature, type SignedCheckpoint } from './checkpoint.ts'
import { isRefusal, LedgerState, type PastLookups, type Refusal, type ResolvedTransfer } from './state.ts'
import {
  accountBytes, accountFromBytes, bytesText, jsonBytes, Keys, openLedgerDb, parseJsonBytes, pendingBytes, pendingFromBytes, prefixRange,
  refusalFromBytes, resolutionFromBytes, seqOfEntryKey, textBytes, type LedgerDb,
} from './store.ts'
import { checkAccount, checkTransfer, compareWithExisting, type CheckedTransfer } from './validate.ts'
import type { Account, AccountInit, Currency, Entry, Resolution, Result, TransferEntry, TransferInit } from './types.ts'
import { inclusionProofDocument, type InclusionProofDocument } from './proof-document.ts'
import { verifyLedgerDb, type VerifyReport } from './verify.ts'

export interface LedgerInit {
  /** The folder of its level database. */
  location: string
  /** Signs checkpoints: the node's key (its DID names the log). */
  key: NodeKey
  /** ms since the epoch (tests move it to expire pending transfers). */
  clock?: () => number
  /** A checkpoint is signed with the first commit this long after the previous one (default 1,000 ms; 0: every commit). */
  checkpointIntervalMs?: number
  /** Most transfers applied in one group commit (default 8,192). */
  maxBatch?: number
  /** fsync every group commit (default true; benchmarks of the unsynced path only). */
  sync?: boolean
}

/** The accounts every node's ledger holds (spec/ledger.md "Accounts"). */
export const STANDARD_ACCOUNTS: AccountInit[] = [
  { id: 'self:NLC', currency: 'NLC', flags: ['debits_must_not_exceed_credits'] },
  { id: 'self:NLR', currency: 'NLR', flags: ['debits_must_not_exceed_credits'] },
  { id: 'external:NLC', currency: 'NLC' },
  { id: 'treasury:NLC', currency: 'NLC' },
  { id: 'treasury:NLR', currency: 'NLR' },
  { id: 'fees:NLR', currency: 'NLR' },
  // metering (spec/ledger.md "Escrow"): what this node owes providers for usage it accepted, and is owed by consumers
  { id: 'payable:NLC', currency: 'NLC' },
  { id: 'receivable:NLC', currency: 'NLC' },
  // settlement (spec/settlement.md): NLR paid out on a chain (held while its batch is being paid)
  { id: 'settlement:NLR', currency: 'NLR' },
]

export interface WalletBalance {
  account: string
  currency: Currency
  /** credits posted - debits posted */
  posted: string
  /** debits pending (held for two-phase transfers) */
  held: string
  /** credits pending (on their way in) */
  incoming: string
  /** posted - held */
  available: string
}

type Job =
  | { kind: 'transfers'; items: TransferInit[]; resolve(r: Result[]): void; reject(e: Error): void }
  | { kind: 'accounts'; items: AccountInit[]; resolve(r: Result[]): void; reject(e: Error): void }
  | { kind: 'checkpoint'; resolve(r: SignedCheckpoint | undefined): void; reject(e: Error): void }
  | { kind: 'cosign'; size: number; cosignature: Cosignature; resolve(r: SignedCheckpoint): void; reject(e: Error): void }
  | { kind: 'tick'; resolve(r: number): void; reject(e: Error): void }

const ok = (id: string, e: { seq: number; ts: number }, replay: boolean): Result => ({ id, ok: true, entry: e.seq, ts: e.ts, replay })
const refused = (id: string, r: Refusal): Result => ({ id, ok: false, result: r.result, message: r.message, ...(r.field ? { field: r.field } : {}) })
const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

/** What a group commit looked up in the store before applying. */
interface Prefetched extends PastLookups {
  existing: Map<string, TransferEntry>
  failed: Map<string, Refusal>
}

export class Ledger {
  readonly did: string
  readonly #db: LedgerDb
  readonly #key: NodeKey
  readonly #clock: () => number
  readonly #interval: number
  readonly #maxBatch: number
  readonly #sync: boolean
  readonly #state: LedgerState
  readonly #expiries = new ExpiryQueue()
  #frontier: Frontier
  #lastTs: number
  #latest: SignedCheckpoint | undefined
  #queue: Job[] = []
  #draining = false
  #closed: Error | undefined
  #checkpointWanted = false
  readonly #stats = { commits: 0, transfers: 0 }

  private constructor(init: LedgerInit, db: LedgerDb, state: LedgerState, frontier: Frontier, lastTs: number, latest: SignedCheckpoint | undefined) {
    this.did = init.key.did
    this.#key = init.key
    this.#db = db
    this.#clock = init.clock ?? Date.now
    this.#interval = init.checkpointIntervalMs ?? 1000
    this.#maxBatch = init.maxBatch ?? 8192
    this.#sync = init.sync ?? true
    this.#state = state
    this.#frontier = frontier
    this.#lastTs = lastTs
    this.#latest = latest
    for (const p of state.pending.values()) if (p.expiresAt !== 0) this.#expiries.push(p.expiresAt, p.id)
  }

  /** Opens (or creates) the ledger in `init.location` and reads its state back. */
  static async open(init: LedgerInit): Promise<Ledger> {
    const db = openLedgerDb(init.location)
    await db.open()
    try {
      let size = 0
      let lastTs = 0
      for await (const [k, v] of db.iterator({ ...prefixRange('e:'), reverse: true, limit: 1 })) {
        size = seqOfEntryKey(k) + 1
        lastTs = decodeEntry(v.subarray(32)).ts
      }
      const state = new LedgerState(size)
      for await (const v of db.values(prefixRange('a:'))) {
        const a = accountFromBytes(v)
        state.accounts.set(a.id, a)
      }
      for await (const v of db.values(prefixRange('p:'))) {
        const p = pendingFromBytes(v)
        state.pending.set(p.id, p)
      }
      const pieces = size === 0 ? [] : perfectPieces(0, size)
      const vals = await db.getMany(pieces.map(([l, i]) => (l === 0 ? Keys.entry(i) : Keys.node(l, i))))
      const hashes = vals.map((v, j) => {
        if (!v) throw new LedgerStorageError(`the ledger store misses tree node ${pieces[j]!.join('/')}`)
        return pieces[j]![0] === 0 ? v.subarray(0, 32) : v
      })
      let latest: SignedCheckpoint | undefined
      for await (const v of db.values({ ...prefixRange('c:'), reverse: true, limit: 1 })) latest = parseJsonBytes(v) as SignedCheckpoint
      return new Ledger(init, db, state, Frontier.restore(size, hashes), lastTs, latest)
    } catch (err) {
      await db.close()
      throw err
    }
  }

  /** Entries in the log. */
  get size(): number {
    return this.#frontier.size
  }

  get stats(): { commits: number; transfers: number; pending: number; accounts: number } {
    return { ...this.#stats, pending: this.#state.pending.size, accounts: this.#state.accounts.size }
  }

  get latestCheckpoint(): SignedCheckpoint | undefined {
    return this.#latest
  }

  /** Creates accounts (idempotent: the same id with the same currency and flags is a replay). */
  createAccounts(items: AccountInit[]): Promise<Result[]> {
    return this.#enqueue<Result[]>((resolve, reject) => ({ kind: 'accounts', items, resolve, reject }))
  }

  /** Applies transfers in order (linked ones all or none); one result per transfer. */
  createTransfers(items: TransferInit[]): Promise<Result[]> {
    return this.#enqueue<Result[]>((resolve, reject) => ({ kind: 'transfers', items, resolve, reject }))
  }

  /** One transfer; TransferRefusedError (IdempotencyConflictError for an id reused with other fields) if refused. */
  async transfer(t: TransferInit): Promise<Extract<Result, { ok: true }>> {
    const [r] = await this.createTransfers([t])
    return okOrThrow(r!)
  }

  /**
   * Credits `amount` NLC to `account` from `external:NLC` once per external reference: the transfer id is
   * `topup:<ref>`, so a replayed top-up changes nothing and the same reference with another amount is refused.
   */
  async topup(ref: string, amount: bigint, account = 'self:NLC'): Promise<Extract<Result, { ok: true }>> {
    return await this.transfer({ id: `topup:${ref}`, debit: 'external:NLC', credit: account, amount, currency: 'NLC', ref })
  }

  /** Signs a checkpoint of everything applied so far (none when nothing was added since the last one). */
  checkpoint(): Promise<SignedCheckpoint | undefined> {
    return this.#enqueue<SignedCheckpoint | undefined>((resolve, reject) => ({ kind: 'checkpoint', resolve, reject }))
  }

  /** Adds a counterparty's cosignature to the checkpoint at `size` (verified first; InvalidCheckpointError). */
  addCosignature(size: number, cosignature: Cosignature): Promise<SignedCheckpoint> {
    return this.#enqueue<SignedCheckpoint>((resolve, reject) => ({ kind: 'cosign', size, cosignature, resolve, reject }))
  }

  /** Expires the pending transfers whose time is up; how many. */
  expireDue(): Promise<number> {
    return this.#enqueue<number>((resolve, reject) => ({ kind: 'tick', resolve, reject }))
  }

  account(id: string): Account | undefined {
    const a = this.#state.accounts.get(id)
    return a ? { ...a } : undefined
  }

  accounts(): Account[] {
    return [...this.#state.accounts.values()].map((a) => ({ ...a }))
  }

  balance(id: string): WalletBalance | undefined {
    const a = this.#state.accounts.get(id)
    if (!a) return undefined
    const posted = a.creditsPosted - a.debitsPosted
    return { account: a.id, currency: a.currency, posted: String(posted), held: String(a.debitsPending), incoming: String(a.creditsPending), available: String(posted - a.debitsPending) }
  }

  /** The entry at `seq` and its bytes (the leaf an inclusion proof is for). */
  async entry(seq: number): Promise<{ entry: Entry; bytes: Uint8Array }> {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= this.size) throw new EntryNotFoundError(`no entry ${seq} (the log holds ${this.size})`, { entry: seq })
    const v = await this.#db.get(Keys.entry(seq))
    if (!v) throw new EntryNotFoundError(`no entry ${seq}`, { entry: seq })
    const bytes = v.subarray(32)
    return { entry: decodeEntry(bytes), bytes }
  }

  /** Entries newest first, those touching `accounts` (all when empty), at most `limit`, below seq `before`. */
  async history(o: { accounts?: string[]; limit?: number; before?: number } = {}): Promise<Entry[]> {
    const limit = Math.min(Math.max(1, o.limit ?? 50), 1000)
    const want = new Set(o.accounts ?? [])
    const out: Entry[] = []
    const range = prefixRange('e:')
    const lt = o.before !== undefined ? Keys.entry(Math.max(0, o.before)) : range.lt
    let scanned = 0
    for await (const v of this.#db.values({ gte: range.gte, lt, reverse: true })) {
      const e = decodeEntry(v.subarray(32))
      if (want.size === 0 || (e.kind === 'account' ? want.has(e.id) : want.has(e.debit) || want.has(e.credit))) out.push(e)
      if (out.length >= limit || ++scanned >= 100_000) break
    }
    return out
  }

  /**
   * The applied transfers whose id starts with `prefix` (e.g. `topup:evm-31337:`), in id order, at most
   * `limit` (default 100,000). Refused ids are left out. Reads the id index, not the whole log.
   */
  async transfersWithIdPrefix(prefix: string, limit = 100_000): Promise<TransferEntry[]> {
    this.#assertOpen()
    const out: TransferEntry[] = []
    const range = prefixRange(Keys.id(prefix))
    for await (const v of this.#db.values({ ...range, limit })) {
      const text = bytesText(v)
      if (!/^[0-9]+$/.test(text)) continue // a refusal recorded under this id
      const { entry } = await this.entry(Number(text))
      if (entry.kind === 'transfer') out.push(entry)
    }
    return out
  }

  /** Checkpoints in order of size, from `from` (a size), at most `limit`. */
  async checkpoints(o: { from?: number; limit?: number } = {}): Promise<SignedCheckpoint[]> {
    const out: SignedCheckpoint[] = []
    const r = prefixRange('c:')
    for await (const v of this.#db.values({ gte: o.from ? Keys.checkpoint(o.from) : r.gte, lt: r.lt, limit: Math.min(o.limit ?? 100, 1000) })) out.push(parseJsonBytes(v) as SignedCheckpoint)
    return out
  }

  async checkpointAt(size: number): Promise<SignedCheckpoint> {
    const v = Number.isSafeInteger(size) && size > 0 ? await this.#db.get(Keys.checkpoint(size)) : undefined
    if (!v) throw new EntryNotFoundError(`no checkpoint at size ${size}`, { size })
    return parseJsonBytes(v) as SignedCheckpoint
  }

  /**
   * A self-contained inclusion proof of entry `seq` under a signed checkpoint (the one at `atSize`, else the
   * latest, made now if it does not cover the entry yet): anyone holding only this log's DID can check it
   * (proof-document.ts).
   */
  async proveEntry(seq: number, atSize?: number): Promise<InclusionProofDocument> {
    const { bytes } = await this.entry(seq)
    let cp = atSize !== undefined ? await this.checkpointAt(atSize) : this.#latest
    if (atSize === undefined && (!cp || cp.body.size <= seq)) cp = await this.checkpoint()
    if (!cp || cp.body.size <= seq) throw new EntryNotFoundError(`no checkpoint covers entry ${seq}`, { entry: seq })
    const size = cp.body.size
    const proof = await this.#withStoredHashes((h) => inclusionProof(seq, size, h))
    return inclusionProofDocument(seq, bytes, cp, proof)
  }

  /** The RFC 6962 consistency proof between two sizes the log has reached. */
  async consistencyProof(first: number, second: number): Promise<Hash[]> {
    if (!(second <= this.size)) throw new EntryNotFoundError(`the log holds ${this.size} entries, not ${second}`, { size: second })
    return await this.#withStoredHashes((h) => consistencyProof(first, second, h))
  }

  /** Recomputes the log, every checkpoint and the balances from one snapshot of the store (verify.ts). */
  async verify(): Promise<VerifyReport> {
    this.#assertOpen()
    return await verifyLedgerDb(this.#db, this.did)
  }

  async close(): Promise<void> {
    if (this.#closed && this.#db.status === 'closed') return
    await this.#idle()
    if (!this.#closed && this.size > (this.#latest?.body.size ?? 0)) await this.checkpoint().catch(() => undefined)
    this.#closed ??= new LedgerClosedError('the ledger is closed')
    if (this.#db.status === 'open') await this.#db.close()
  }

  // ---- proofs from the stored tree -------------------------------------------------------------------

  /** Runs `fn` once to learn which subtrees it reads, fetches their hashes, then runs it for real. */
  async #withStoredHashes<T>(fn: (h: SubtreeHashes) => T): Promise<T> {
    const wanted = new Map<string, [number, number]>()
    const zero = new Uint8Array(32)
    fn((start, end) => {
      for (const [l, i] of perfectPieces(start, end)) wanted.set(l === 0 ? Keys.entry(i) : Keys.node(l, i), [l, i])
      return zero
    })
    const keys = [...wanted.keys()]
    const vals = await this.#db.getMany(keys)
    const got = new Map<string, Hash>()
    keys.forEach((k, j) => {
      const v = vals[j]
      if (!v) throw new LedgerStorageError(`the ledger store misses ${k}`)
      got.set(k, k.startsWith('e:') ? v.subarray(0, 32) : v)
    })
    return fn(fromPerfect((l, i) => got.get(l === 0 ? Keys.entry(i) : Keys.node(l, i))!))
  }

  // ---- the group commit ------------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw this.#closed
  }

  #enqueue<T>(make: (resolve: (v: T) => void, reject: (e: Error) => void) => Job): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed)
    return new Promise<T>((resolve, reject) => {
      this.#queue.push(make(resolve, reject))
      if (!this.#draining) void this.#drain()
    })
  }

  async #idle(): Promise<void> {
    while (this.#draining || this.#queue.length > 0) await new Promise((r) => setImmediate(r))
  }

  async #drain(): Promise<void> {
    this.#draining = true
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        let n = 0
        let take = 0
        while (take < this.#queue.length && (take === 0 || n < this.#maxBatch)) {
          const j = this.#queue[take]!
          n += j.kind === 'transfers' || j.kind === 'accounts' ? j.items.length : 1
          take++
        }
        const jobs = this.#queue.splice(0, take)
        try {
          await this.#commit(jobs)
        } catch (err) {
          const e = err instanceof LedgerStorageError ? err : new LedgerStorageError(`the ledger could not write: ${(err as Error).message}`, undefined, { cause: err })
          this.#closed = e
          for (const j of [...jobs, ...this.#queue.splice(0)]) j.reject(e)
        }
      }
    } finally {
      this.#draining = false
    }
  }

  async #prefetch(jobs: Job[]): Promise<{ pre: Prefetched; checked: Map<TransferInit, CheckedTransfer | Refusal> }> {
    const checked = new Map<TransferInit, CheckedTransfer | Refusal>()
    const ids = new Set<string>()
    const pendingIds = new Set<string>()
    for (const j of jobs) {
      if (j.kind !== 'transfers') continue
      for (const t of j.items) {
        const c = checkTransfer(t)
        checked.set(t, c)
        if (isRefusal(c)) continue
        ids.add(c.id)
        if (c.pendingId !== undefined && !this.#state.pending.has(c.pendingId)) pendingIds.add(c.pendingId)
      }
    }
    const idList = [...ids]
    const pendList = [...pendingIds]
    const keys = [...idList.map((id) => Keys.id(id)), ...pendList.flatMap((id) => [Keys.id(id), Keys.resolution(id)])]
    const vals = keys.length > 0 ? await this.#db.getMany(keys) : []
    const seqOf = new Map<string, number>()
    const failed = new Map<string, Refusal>()
    const resolutions = new Map<string, Resolution>()
    const known = new Set<string>()
    idList.forEach((id, j) => {
      const v = vals[j]
      if (!v) return
      if (v[0] === 0x7b) failed.set(id, refusalFromBytes(v))
      else seqOf.set(id, Number(bytesText(v)))
    })
    const base = idList.length
    pendList.forEach((id, j) => {
      if (vals[base + 2 * j]) known.add(id)
      const r = vals[base + 2 * j + 1]
      if (r) resolutions.set(id, resolutionFromBytes(r))
    })
    const existing = new Map<string, TransferEntry>()
    if (seqOf.size > 0) {
      const found = [...seqOf]
      const es = await this.#db.getMany(found.map(([, s]) => Keys.entry(s)))
      found.forEach(([id], j) => {
        const v = es[j]
        if (!v) throw new LedgerStorageError(`transfer ${id} names an entry the store does not hold`)
        const e = decodeEntry(v.subarray(32))
        if (e.kind === 'transfer') existing.set(id, e)
      })
    }
    return {
      checked,
      pre: { existing, failed, resolution: (id) => resolutions.get(id), transferExists: (id) => known.has(id) || existing.has(id) },
    }
  }

  async #commit(jobs: Job[]): Promise<void> {
    const ts = Math.max(this.#clock(), this.#lastTs)
    const state = this.#state
    const { pre, checked } = await this.#prefetch(jobs)
    let expired = 0
    for (const id of this.#expiries.popDue(ts)) if (state.expire(id, ts)) expired++
    const answers: Array<() => void> = []
    const cosigned = new Map<number, SignedCheckpoint>()
    for (const j of jobs) {
      switch (j.kind) {
        case 'transfers': {
          const r = this.#applyTransfers(j.items, checked, pre, ts)
          answers.push(() => j.resolve(r))
          break
        }
        case 'accounts': {
          const r = j.items.map((a) => this.#applyAccount(a, ts))
          answers.push(() => j.resolve(r))
          break
        }
        case 'checkpoint':
          this.#checkpointWanted = true
          answers.push(() => j.resolve(this.#latest))
          break
        case 'cosign': {
          let cp: SignedCheckpoint
          try {
            cp = cosigned.get(j.size) ?? (await this.checkpointAt(j.size))
            verifyCosignature(checkpointBody(cp.body), j.cosignature)
          } catch (err) {
            answers.push(() => j.reject(err as Error))
            break
          }
          if (j.cosignature.did === this.did) {
            answers.push(() => j.reject(new InvalidCheckpointError('a log does not cosign its own checkpoint')))
            break
          }
          if (!cp.cosignatures.some((c) => c.did === j.cosignature.did)) cp = { ...cp, cosignatures: [...cp.cosignatures, { did: j.cosignature.did, signature: j.cosignature.signature }] }
          cosigned.set(j.size, cp)
          answers.push(() => j.resolve(cp))
          break
        }
        case 'tick':
          answers.push(() => j.resolve(expired))
          break
      }
    }
    const ops = this.#opsOf(state.takeJournal())
    for (const [size, cp] of cosigned) {
      ops.push({ type: 'put', key: Keys.checkpoint(size), value: jsonBytes(cp) })
      if (this.#latest?.body.size === size) this.#latest = cp
    }
    const size = this.#frontier.size
    if (size > (this.#latest?.body.size ?? 0) && (this.#checkpointWanted || ts - (this.#latest?.body.ts ?? 0) >= this.#interval)) {
      const cp = signCheckpoint(this.#key, size, this.#frontier.root(), ts)
      ops.push({ type: 'put', key: Keys.checkpoint(size), value: jsonBytes(cp) })
      this.#latest = cp
    }
    this.#checkpointWanted = false
    if (ops.length > 0) {
      await this.#db.batch(ops, { sync: this.#sync } as never)
      this.#stats.commits++
    }
    this.#lastTs = ts
    for (const a of answers) a()
  }

  #opsOf(journal: ReturnType<LedgerState['takeJournal']>): Array<{ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }> {
    const ops: Array<{ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }> = []
    const touched = new Set<string>()
    for (const eff of journal) {
      switch (eff.type) {
        case 'entry': {
          const bytes = encodeEntry(eff.entry)
          const lh = leafHash(bytes)
          if (eff.entry.seq !== this.#frontier.size) throw new LedgerStorageError(`entry ${eff.entry.seq} out of order (log at ${this.#frontier.size})`)
          ops.push({ type: 'put', key: Keys.entry(eff.entry.seq), value: concat(lh, bytes) })
          this.#frontier.append(lh, (l, i, h) => ops.push({ type: 'put', key: Keys.node(l, i), value: h }))
          if (eff.entry.kind === 'transfer') {
            ops.push({ type: 'put', key: Keys.id(eff.entry.id), value: textBytes(String(eff.entry.seq)) })
            this.#stats.transfers++
          }
          break
        }
        case 'account':
          touched.add(eff.id)
          break
        case 'pending-open':
          ops.push({ type: 'put', key: Keys.pending(eff.pending.id), value: pendingBytes(eff.pending) })
          if (eff.pending.expiresAt !== 0) this.#expiries.push(eff.pending.expiresAt, eff.pending.id)
          break
        case 'pending-close':
          ops.push({ type: 'del', key: Keys.pending(eff.id) }, { type: 'put', key: Keys.resolution(eff.id), value: textBytes(eff.resolution) })
          break
        case 'failed':
          ops.push({ type: 'put', key: Keys.id(eff.id), value: jsonBytes(eff.refusal) })
          break
      }
    }
    for (const id of touched) ops.push({ type: 'put', key: Keys.account(id), value: accountBytes(this.#state.accounts.get(id)!) })
    return ops
  }

  #applyAccount(a: AccountInit, ts: number): Result {
    const c = checkAccount(a)
    if (isRefusal(c)) return refused(String((a as { id?: unknown })?.id ?? ''), c)
    const prior = this.#state.accounts.get(c.id)
    if (prior) {
      if (prior.currency !== c.currency) return refused(c.id, { result: 'exists_with_different_currency', message: `account ${c.id} holds ${prior.currency}`, field: 'currency' })
      if (prior.flags.join() !== c.flags.join()) return refused(c.id, { result: 'exists_with_different_flags', message: `account ${c.id} exists with flags [${prior.flags.join(', ')}]`, field: 'flags' })
      return ok(c.id, { seq: prior.seq, ts }, true)
    }
    this.#state.begin()
    const e = this.#state.createAccount(c.id, c.currency, c.flags, ts)
    this.#state.commit()
    return ok(c.id, e, false)
  }

  /** Applies transfers in order; a linked chain (each but its last flagged `linked`) succeeds or fails whole. */
  #applyTransfers(items: TransferInit[], checked: Map<TransferInit, CheckedTransfer | Refusal>, pre: Prefetched, ts: number): Result[] {
    const results: Result[] = new Array(items.length)
    const state = this.#state
    let i = 0
    while (i < items.length) {
      let j = i
      while (j < items.length && (items[j]!.flags ?? []).includes('linked')) j++
      if (j === items.length) {
        for (let k = i; k < items.length; k++) results[k] = refused(idOf(items[k]!), { result: 'linked_event_chain_open', message: 'the last transfer of the request is flagged linked', field: 'flags' })
        break
      }
      const chain = items.slice(i, j + 1)
      state.begin()
      const out = chain.map(() => undefined as Result | undefined)
      let failedAt = -1
      let failure: { refusal: Refusal; record: boolean } | undefined
      let replays = 0
      for (let k = 0; k < chain.length; k++) {
        const r = this.#applyOne(chain[k]!, checked.get(chain[k]!) ?? checkTransfer(chain[k]!), pre, ts)
        if ('refusal' in r) {
          failedAt = k
          failure = r
          break
        }
        if (r.replay) replays++
        out[k] = r
      }
      if (failedAt < 0 && replays > 0 && replays < chain.length) {
        failedAt = out.findIndex((r) => r?.ok && r.replay)
        failure = { refusal: { result: 'exists', message: 'part of this linked chain exists already, part does not' }, record: false }
      }
      if (failedAt >= 0) {
        state.rollback()
        if (failure!.record) state.recordFailure(idOf(chain[failedAt]!), failure!.refusal)
        for (let k = 0; k < chain.length; k++) {
          results[i + k] = k === failedAt ? refused(idOf(chain[k]!), failure!.refusal) : refused(idOf(chain[k]!), { result: 'linked_event_failed', message: `transfer ${idOf(chain[failedAt]!)} of the linked chain failed` })
        }
      } else {
        state.commit()
        for (let k = 0; k < chain.length; k++) results[i + k] = out[k]!
      }
      i = j + 1
    }
    return results
  }

  #applyOne(t: TransferInit, c: CheckedTransfer | Refusal, pre: Prefetched, ts: number): Extract<Result, { ok: true }> | { refusal: Refusal; record: boolean } {
    if (isRefusal(c)) return { refusal: c, record: false }
    const state = this.#state
    const prior = state.recent.get(c.id) ?? pre.existing.get(c.id)
    if (prior) {
      const diff = compareWithExisting(c, prior)
      if (diff) return { refusal: diff, record: false }
      return { id: c.id, ok: true, entry: prior.seq, ts: prior.ts, replay: true }
    }
    const failed = state.recentFailed.get(c.id) ?? pre.failed.get(c.id)
    if (failed) return { refusal: { result: 'id_already_failed', message: `transfer ${c.id} failed before (${failed.result})`, field: 'id' }, record: false }
    let resolved: ResolvedTransfer | Refusal
    if (c.pendingId !== undefined) resolved = state.resolvePostOrVoid({ ...c, pendingId: c.pendingId }, pre)
    else {
      resolved = { id: c.id, debit: c.debit!, credit: c.credit!, amount: c.amount!, currency: c.currency!, flags: c.flags }
      if (c.timeout !== undefined) resolved.timeout = c.timeout
      if (c.ref !== undefined) resolved.ref = c.ref
    }
    if (isRefusal(resolved)) return { refusal: resolved, record: true }
    void t
    const e = state.applyTransfer(resolved, ts)
    if (isRefusal(e)) return { refusal: e, record: true }
    return { id: c.id, ok: true, entry: e.seq, ts: e.ts, replay: false }
  }
}

function idOf(t: TransferInit): string {
  return typeof t?.id === 'string' ? t.id : ''
}

/** The result if it succeeded, else its typed error (IdempotencyConflictError for an id reused with other fields). */
export function okOrThrow(r: Result): Extract<Result, { ok: true }> {
  if (r.ok) return r
  if (r.result.startsWith('exists_with_different_')) throw new IdempotencyConflictError(`${r.message} (${r.field})`, r.result, r.field)
  const status = /_invalid$|_must_|_reserved_|flags_are/.test(r.result) ? 400 : 409
  throw new TransferRefusedError(`${r.id}: ${r.message} (${r.result})`, r.result, r.field, status)
}
