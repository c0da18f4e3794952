// `noir ledger verify` (spec/ledger.md "Verification"): reads the whole store through ONE iterator (one
// level snapshot, so a live ledger need not pause) and recomputes everything from the log alone:
//  - each entry's bytes against the leaf hash recorded with it, its canonical form and its place (seq);
//  - the balances, by replaying every entry through the same rules that applied it (state.ts): a transfer
//    the rules refuse is a bad entry; the replayed accounts and open pending transfers must equal the stored;
//  - the tree: every stored subtree node and every checkpoint's root, recomputed; every checkpoint's signature
//    by the node's DID and every cosignature; no checkpoint beyond the end of the log;
//  - the idempotency index: every transfer id points at its own entry (a duplicate id is a bad entry);
//  - per currency, debits equal credits, pending and posted alike.
// Problems name the entry (or checkpoint, or account); `firstBadEntry` is the lowest entry named.
import { decodeEntry } from './entry-codec.ts'
import { checkpointBody, verifyCheckpoint, verifyCosignature, type SignedCheckpoint } from './checkpoint.ts'
import { InvalidCheckpointError } from './errors.ts'
import { Frontier, leafHash, sameHash } from './merkle.ts'
import { isRefusal, LedgerState } from './state.ts'
import { accountFromBytes, bytesText, parseJsonBytes, pendingFromBytes, seqOfEntryKey, type LedgerDb } from './store.ts'
import type { Currency, Entry, PendingTransfer } from './types.ts'

export interface VerifyProblem {
  entry?: number
  checkpoint?: number
  account?: string
  message: string
}

export interface VerifyReport {
  ok: boolean
  did: string
  entries: number
  /** Transfer entries (the rest create accounts or expire pending transfers). */
  transfers: number
  accounts: number
  checkpoints: number
  cosignatures: number
  /** Entries after the latest checkpoint (not yet signed). */
  unsigned: number
  latestCheckpoint: { size: number; root: string } | null
  totals: Record<Currency, { debitsPending: string; debitsPosted: string; creditsPending: string; creditsPosted: string }>
  problems: VerifyProblem[]
  firstBadEntry: number | null
  elapsedMs: number
}

const MAX_PROBLEMS = 100

/** Hashes of one tree level, by index, in one growing buffer. */
class LevelHashes {
  #buf = Buffer.alloc(32 * 1024)
  #n = 0
  set(index: number, h: Uint8Array): void {
    while ((index + 1) * 32 > this.#buf.length) {
      const b = Buffer.alloc(this.#buf.length * 2)
      this.#buf.copy(b)
      this.#buf = b
    }
    this.#buf.set(h, index * 32)
    this.#n = Math.max(this.#n, index + 1)
  }
  get(index: number): Uint8Array | undefined {
    return index < this.#n ? this.#buf.subarray(index * 32, index * 32 + 32) : undefined
  }
}

/** FNV-1a of an id (a compact fingerprint to match the idempotency index with entries). */
function fingerprint(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

export async function verifyLedgerDb(db: LedgerDb, did: string): Promise<VerifyReport> {
  const started = performance.now()
  const problems: VerifyProblem[] = []
  const problem = (p: VerifyProblem): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(p)
  }
  const storedAccounts = new Map<string, ReturnType<typeof accountFromBytes>>()
  const checkpoints = new Map<number, SignedCheckpoint>()
  const storedPending = new Map<string, PendingTransfer>()
  const state = new LedgerState(0)
  const frontier = new Frontier()
  const nodes: LevelHashes[] = []
  let idPrints = new Uint32Array(1024)
  let isTransfer = new Uint8Array(1024)
  let indexed = new Uint8Array(1024)
  let transfers = 0
  let cosignatures = 0
  let prevTs = 0
  let size = 0
  let entryProblem = false
  const treeMismatches: Array<[number, number]> = []

  const replay = (e: Entry): string | undefined => {
    if (e.ts < prevTs) return `its time ${e.ts} is before the previous entry's ${prevTs}`
    prevTs = e.ts
    if (e.kind === 'account') {
      if (state.accounts.has(e.id)) return `account ${e.id} is created twice`
      if (e.flags.length > 1) return 'an account cannot limit both its debits and its credits'
      state.createAccount(e.id, e.currency, e.flags, e.ts)
      return undefined
    }
    if (e.kind === 'expire') {
      const p = state.pending.get(e.pendingId)
      if (!p) return `it expires ${e.pendingId}, which is not an open pending transfer`
      if (p.expiresAt === 0 || p.expiresAt > e.ts) return `it expires ${e.pendingId} before its time`
      if (p.debit !== e.debit || p.credit !== e.credit || p.amount !== e.amount || p.currency !== e.currency) return `its fields differ from pending transfer ${e.pendingId}`
      state.expire(e.pendingId, e.ts)
      return undefined
    }
    const postOrVoid = e.flags.includes('post_pending') || e.flags.includes('void_pending')
    const phases = e.flags.filter((f) => f !== 'linked').length
    if (phases > 1) return 'its flags exclude each other'
    if (postOrVoid !== (e.pendingId !== undefined)) return 'a post or void, and only one, names a pending transfer'
    if (e.timeout !== undefined && !e.flags.includes('pending')) return 'only a pending transfer has a timeout'
    if (e.debit === e.credit) return 'its debit and credit are the same account'
    if (postOrVoid) {
      const p = state.pending.get(e.pendingId!)
      if (!p) return `${e.pendingId} is not an open pending transfer`
      if (p.debit !== e.debit || p.credit !== e.credit || p.currency !== e.currency) return `its accounts or currency differ from pending transfer ${e.pendingId}`
    }
    const { kind: _k, seq: _s, ts: _t, ...t } = e
    const r = state.applyTransfer(t, e.ts)
    return isRefusal(r) ? `the ledger's rules refuse it: ${r.result} (${r.message})` : undefined
  }

  const onEntry = (key: string, v: Uint8Array): void => {
    const seq = seqOfEntryKey(key)
    if (seq !== size) {
      problem({ entry: size, message: `entry ${size} is missing (the next stored is ${seq})` })
      entryProblem = true
      size = seq
    }
    if (v.length < 33) {
      problem({ entry: seq, message: `entry ${seq} is truncated` })
      entryProblem = true
      size = seq + 1
      return
    }
    const recorded = v.subarray(0, 32)
    const bytes = v.subarray(32)
    if (!sameHash(leafHash(bytes), recorded)) problem({ entry: seq, message: `entry ${seq} was altered: its bytes do not match the leaf hash recorded with it` })
    let e: Entry | undefined
    try {
      e = decodeEntry(bytes)
    } catch (err) {
      problem({ entry: seq, message: `entry ${seq}: ${(err as Error).message}` })
    }
    if (e && e.seq !== seq) problem({ entry: seq, message: `entry ${seq} says it is entry ${e.seq}` })
    if (e && !entryProblem) {
      const why = replay(e)
      state.takeJournal()
      if (why) {
        problem({ entry: seq, message: `entry ${seq}: ${why}` })
        entryProblem = true // later balances follow from a bad one: replay stops here
      }
    }
    if (seq >= idPrints.length) {
      const grow = <T extends Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2)
        b.set(a)
        return b
      }
      idPrints = grow(idPrints, (n) => new Uint32Array(n))
      isTransfer = grow(isTransfer, (n) => new Uint8Array(n))
      indexed = grow(indexed, (n) => new Uint8Array(n))
    }
    if (e?.kind === 'transfer') {
      idPrints[seq] = fingerprint(e.id)
      isTransfer[seq] = 1
      transfers++
    }
    frontier.append(recorded, (level, index, h) => {
      while (nodes.length <= level) nodes.push(new LevelHashes())
      nodes[level]!.set(index, h)
    })
    size = seq + 1
    const cp = checkpoints.get(size)
    if (cp && cp.body.root !== Buffer.from(frontier.root()).toString('hex')) {
      problem({ checkpoint: size, message: `the checkpoint at size ${size} does not match the log: its signed root differs from the recomputed one` })
    }
  }

  for await (const [key, v] of db.iterator()) {
    const p = key.slice(0, 2)
    if (p === 'e:') onEntry(key, v)
    else if (p === 'a:') storedAccounts.set(key.slice(2), accountFromBytes(v))
    else if (p === 'c:') {
      const size = seqOfEntryKey(key)
      let cp: SignedCheckpoint
      try {
        cp = parseJsonBytes(v) as SignedCheckpoint
        const body = verifyCheckpoint(cp, did)
        if (body.size !== size) throw new InvalidCheckpointError(`it is stored at size ${size} but signs size ${body.size}`)
        for (const c of cp.cosignatures ?? []) {
          verifyCosignature(checkpointBody(cp.body), c)
          cosignatures++
        }
        checkpoints.set(size, cp)
      } catch (err) {
        problem({ checkpoint: size, message: `checkpoint at size ${size}: ${(err as Error).message}` })
      }
    } else if (p === 'i:') {
      if (v[0] === 0x7b) continue // a refused id (JSON): no entry
      const seq = Number(bytesText(v))
      if (!Number.isSafeInteger(seq) || seq < 0 || seq >= size || !isTransfer[seq] || idPrints[seq] !== fingerprint(key.slice(2))) {
        problem({ entry: Number.isSafeInteger(seq) && seq >= 0 && seq < size ? seq : undefined, message: `the idempotency index maps ${key.slice(2)} to entry ${seq}, which is not that transfer` })
      } else indexed[seq] = 1
    } else if (p === 'n:') {
      const level = parseInt(key.slice(2, 4), 16)
      const index = parseInt(key.slice(5), 16)
      const want = nodes[level]?.get(index)
      const start = index * 2 ** level
      const end = start + 2 ** level
      // only the smallest differing subtree is named (its ancestors differ because it does)
      if (want && !sameHash(want, v) && !treeMismatches.some(([a, b]) => a >= start && b <= end)) {
        treeMismatches.push([start, end])
        problem({ entry: start, message: `entries ${start}..${start + 2 ** level - 1} do not match the tree recorded when they were appended (an entry and its recorded hash were both rewritten)` })
      }
    } else if (p === 'p:') storedPending.set(key.slice(2), pendingFromBytes(v))
  }

  for (let seq = 0; seq < size; seq++) {
    if (isTransfer[seq] && !indexed[seq]) problem({ entry: seq, message: `entry ${seq}: its transfer id is not indexed to it (a duplicate id, or a removed index)` })
  }
  for (const [s] of checkpoints) if (s > size) problem({ checkpoint: s, message: `a checkpoint signs ${s} entries but the log holds ${size}: entries were removed` })
  if (!entryProblem) {
    for (const [id, a] of state.accounts) {
      const s = storedAccounts.get(id)
      if (!s) problem({ account: id, message: `account ${id} is missing from the stored balances` })
      else if (s.debitsPending !== a.debitsPending || s.debitsPosted !== a.debitsPosted || s.creditsPending !== a.creditsPending || s.creditsPosted !== a.creditsPosted || s.currency !== a.currency) {
        problem({ account: id, message: `account ${id}: stored balances differ from the log's (stored posted ${s.creditsPosted - s.debitsPosted}, log ${a.creditsPosted - a.debitsPosted})` })
      }
    }
    for (const id of storedAccounts.keys()) if (!state.accounts.has(id)) problem({ account: id, message: `account ${id} is stored but no entry created it` })
    for (const [id, p] of state.pending) {
      const s = storedPending.get(id)
      if (!s || s.amount !== p.amount || s.debit !== p.debit || s.credit !== p.credit || s.expiresAt !== p.expiresAt) problem({ entry: p.seq, message: `pending transfer ${id} (entry ${p.seq}) differs from the stored open pending transfers` })
    }
    for (const id of storedPending.keys()) if (!state.pending.has(id)) problem({ message: `pending transfer ${id} is stored as open but the log closed it or never opened it` })
  }
  const totals = state.totals()
  for (const c of ['NLC', 'NLR'] as const) {
    const t = totals[c]
    if (t.debitsPosted !== t.creditsPosted) problem({ message: `${c}: posted debits ${t.debitsPosted} differ from posted credits ${t.creditsPosted}` })
    if (t.debitsPending !== t.creditsPending) problem({ message: `${c}: pending debits ${t.debitsPending} differ from pending credits ${t.creditsPending}` })
  }
  const latest = [...checkpoints.values()].sort((a, b) => b.body.size - a.body.size)[0]
  const named = problems.map((p) => p.entry).filter((e): e is number => e !== undefined)
  const s = (n: bigint): string => String(n)
  return {
    ok: problems.length === 0,
    did,
    entries: size,
    transfers,
    accounts: state.accounts.size,
    checkpoints: checkpoints.size,
    cosignatures,
    unsigned: size - (latest?.body.size ?? 0),
    latestCheckpoint: latest ? { size: latest.body.size, root: latest.body.root } : null,
    totals: {
      NLC: { debitsPending: s(totals.NLC.debitsPending), debitsPosted: s(totals.NLC.debitsPosted), creditsPending: s(totals.NLC.creditsPending), creditsPosted: s(totals.NLC.creditsPosted) },
      NLR: { debitsPending: s(totals.NLR.debitsPending), debitsPosted: s(totals.NLR.debitsPosted), creditsPending: s(totals.NLR.creditsPending), creditsPosted: s(totals.NLR.creditsPosted) },
    },
    problems,
    firstBadEntry: named.length > 0 ? Math.min(...named) : null,
    elapsedMs: Math.round(performance.now() - started),
  }
}
