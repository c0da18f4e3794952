// A randomized model test: thousands of requests (single-phase, pending, post in full and in part, void,
// time-outs, linked chains, retries with the same and with other fields, refusals of every kind) applied to
// the ledger and to a reference model written as plainly as possible; after every group of requests the
// balances and results must agree, and at the end verification must pass, also after a reopen. The seed is
// printed on failure (NOIR_SEED=<n> replays it).
import t from 'tap'
import { openTestLedger } from './helpers.ts'
import type { Currency, Result, TransferFlag, TransferInit } from '../types.ts'

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

interface MAccount { currency: Currency; limitDebits: boolean; limitCredits: boolean; dp: bigint; dP: bigint; cp: bigint; cP: bigint }
interface MPending { debit: string; credit: string; amount: bigint; currency: Currency; expiresAt: number }
interface MTransfer { debit: string; credit: string; amount: bigint; currency: Currency; flags: string; pendingId?: string; timeout?: number }

/** The reference model: maps and bigints, the rules of spec/ledger.md written out once more, plainly. */
class Model {
  accounts = new Map<string, MAccount>()
  pending = new Map<string, MPending>()
  ended = new Map<string, 'posted' | 'voided' | 'expired'>()
  transfers = new Map<string, MTransfer>()
  failed = new Set<string>()

  expire(now: number): void {
    for (const [id, p] of [...this.pending]) {
      if (p.expiresAt !== 0 && p.expiresAt <= now) {
        this.accounts.get(p.debit)!.dp -= p.amount
        this.accounts.get(p.credit)!.cp -= p.amount
        this.pending.delete(id)
        this.ended.set(id, 'expired')
      }
    }
  }

  /** Only for transfers whose own fields are valid; returns ok or the expected result code. */
  apply(t: TransferInit, now: number): string {
    const flags = [...(t.flags ?? [])].filter((f) => f !== 'linked').sort().join(',')
    const prior = this.transfers.get(t.id)
    if (prior) {
      if (prior.flags !== flags) return 'exists_with_different_flags'
      if (prior.pendingId !== t.pendingId) return 'exists_with_different_pending_id'
      if (prior.timeout !== (t.timeout || undefined)) return 'exists_with_different_timeout'
      if (t.debit !== undefined && t.debit !== prior.debit) return 'exists_with_different_debit'
      if (t.credit !== undefined && t.credit !== prior.credit) return 'exists_with_different_credit'
      if (t.amount !== undefined && t.amount !== prior.amount) return 'exists_with_different_amount'
      return 'replay'
    }
    if (this.failed.has(t.id)) return 'id_already_failed'
    const fail = (code: string): string => {
      this.failed.add(t.id)
      return code
    }
    if (t.pendingId !== undefined) {
      const p = this.pending.get(t.pendingId)
      if (!p) {
        const e = this.ended.get(t.pendingId)
        if (e) return fail(e === 'posted' ? 'pending_transfer_already_posted' : e === 'voided' ? 'pending_transfer_already_voided' : 'pending_transfer_expired')
        return fail(this.transfers.has(t.pendingId) ? 'pending_transfer_not_pending' : 'pending_transfer_not_found')
      }
      const post = flags === 'post_pending'
      const amount = t.amount ?? p.amount
      if (post && amount > p.amount) return fail('exceeds_pending_transfer_amount')
      if (!post && amount !== p.amount) return fail('pending_transfer_has_different_amount')
      const d = this.accounts.get(p.debit)!
      const c = this.accounts.get(p.credit)!
      d.dp -= p.amount
      c.cp -= p.amount
      if (post) {
        d.dP += amount
        c.cP += amount
      }
      this.pending.delete(t.pendingId)
      this.ended.set(t.pendingId, post ? 'posted' : 'voided')
      this.transfers.set(t.id, { debit: p.debit, credit: p.credit, amount, currency: p.currency, flags, pendingId: t.pendingId })
      return 'ok'
    }
    const d = this.accounts.get(t.debit!)
    const c = this.accounts.get(t.credit!)
    if (!d) return fail('debit_account_not_found')
    if (!c) return fail('credit_account_not_found')
    if (d.currency !== c.currency) return fail('accounts_must_have_the_same_currency')
    if (t.currency !== d.currency) return fail('transfer_must_have_the_same_currency_as_accounts')
    const a = t.amount!
    if (d.limitDebits && d.dp + d.dP + a > d.cP) return fail('exceeds_credits')
    if (c.limitCredits && c.cp + c.cP + a > c.dP) return fail('exceeds_debits')
    if (flags === 'pending') {
      d.dp += a
      c.cp += a
      this.pending.set(t.id, { debit: t.debit!, credit: t.credit!, amount: a, currency: t.currency!, expiresAt: t.timeout ? now + t.timeout * 1000 : 0 })
    } else {
      d.dP += a
      c.cP += a
    }
    this.transfers.set(t.id, { debit: t.debit!, credit: t.credit!, amount: a, currency: t.currency!, flags, ...(t.timeout ? { timeout: t.timeout } : {}) })
    return 'ok'
  }

  snapshot(): Map<string, MAccount> {
    return new Map([...this.accounts].map(([k, v]) => [k, { ...v }]))
  }
}

const seed = Number(process.env.NOIR_SEED ?? Math.floor(Math.random() * 2 ** 31))

t.test(`thousands of random transfers agree with a reference model (seed ${seed})`, async (t) => {
  t.teardown(() => {
    if (t.passing() === false) console.error(`model test failed with NOIR_SEED=${seed}`)
  })
  const rnd = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const tl = await openTestLedger(t, { checkpointIntervalMs: 0 })
  const model = new Model()
  const names: Array<[string, Currency, boolean, boolean]> = [
    ['c1', 'NLC', true, false], ['c2', 'NLC', true, false], ['c3', 'NLC', false, false], ['c4', 'NLC', false, true],
    ['r1', 'NLR', true, false], ['r2', 'NLR', false, false], ['r3', 'NLR', false, true], ['src:NLC', 'NLC', false, false], ['src:NLR', 'NLR', false, false],
  ]
  const created = await tl.ledger.createAccounts(names.map(([id, currency, d, c]) => ({ id, currency, flags: [...(d ? ['debits_must_not_exceed_credits' as const] : []), ...(c ? ['credits_must_not_exceed_debits' as const] : [])] })))
  t.ok(created.every((r) => r.ok))
  for (const [id, currency, d, c] of names) model.accounts.set(id, { currency, limitDebits: d, limitCredits: c, dp: 0n, dP: 0n, cp: 0n, cP: 0n })
  const ids = Object.keys(Object.fromEntries(names.map((n) => [n[0], 1]))).concat(['nobody'])
  const history: TransferInit[] = []
  let next = 0
  let applied = 0
  let refusedCount = 0
  const ROUNDS = 150
  for (let round = 0; round < ROUNDS; round++) {
    tl.clock.now += Math.floor(rnd() * 3000)
    const requests: TransferInit[] = []
    const n = 1 + Math.floor(rnd() * 40)
    for (let k = 0; k < n; k++) {
      const roll = rnd()
      if (roll < 0.1 && history.length > 0) {
        const old = pick(history)
        requests.push(rnd() < 0.6 ? { ...old } : { ...old, amount: (old.amount ?? 1n) + 1n })
        continue
      }
      const open = [...model.pending.keys()]
      if (roll < 0.35 && open.length > 0) {
        const pid = rnd() < 0.9 ? pick(open) : pick([...model.ended.keys(), 'ghost', ...[...model.transfers.keys()].slice(0, 3)].filter(Boolean))
        if (!pid) continue
        const p = model.pending.get(pid)
        const post = rnd() < 0.6
        const amount = p && rnd() < 0.5 ? BigInt(Math.max(1, Math.floor(Number(p.amount) * rnd() * 1.2))) : undefined
        requests.push({ id: `t${next++}`, pendingId: pid, flags: [post ? 'post_pending' : 'void_pending'], ...(amount !== undefined ? { amount } : {}) })
        continue
      }
      const cur: Currency = rnd() < 0.6 ? 'NLC' : 'NLR'
      const same = names.filter((x) => x[1] === cur).map((x) => x[0])
      const debit = rnd() < 0.03 ? pick(ids) : rnd() < 0.3 ? `src:${cur}` : pick(same)
      let credit = rnd() < 0.03 ? pick(ids) : pick(same)
      if (credit === debit) credit = same.find((x) => x !== debit)!
      const flags: TransferFlag[] = rnd() < 0.35 ? ['pending'] : []
      const amount = BigInt(1 + Math.floor(rnd() * (rnd() < 0.1 ? 100_000 : 1000)))
      requests.push({ id: `t${next++}`, debit, credit, amount, currency: rnd() < 0.02 ? (cur === 'NLC' ? 'NLR' : 'NLC') : cur, flags, ...(flags.length && rnd() < 0.5 ? { timeout: 1 + Math.floor(rnd() * 5) } : {}) })
    }
    // requests in one call share a commit; the model applies them in order after expiring what is due
    const results: Result[] = await tl.ledger.createTransfers(requests)
    model.expire(tl.clock.now)
    requests.forEach((rq, i) => {
      const want = model.apply(rq, tl.clock.now)
      const r = results[i]!
      const got = r.ok ? (r.replay ? 'replay' : 'ok') : r.result
      if (got !== want) t.fail(`seed ${seed} round ${round}: ${JSON.stringify(rq, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))} gave ${got}, the model says ${want}`)
      if (got === 'ok') applied++
      else if (got !== 'replay') refusedCount++
      if (got === 'ok' || got === 'replay') history.push(rq)
    })
    for (const [id, m] of model.accounts) {
      const a = tl.ledger.account(id)!
      if (a.debitsPending !== m.dp || a.debitsPosted !== m.dP || a.creditsPending !== m.cp || a.creditsPosted !== m.cP) {
        t.fail(`seed ${seed} round ${round}: ${id} is ${a.debitsPending}/${a.debitsPosted}/${a.creditsPending}/${a.creditsPosted}, the model says ${m.dp}/${m.dP}/${m.cp}/${m.cP}`)
      }
    }
    if (round === Math.floor(ROUNDS / 2)) await tl.reopen()
  }
  t.ok(applied > 1000, `${applied} transfers applied, ${refusedCount} refused`)
  t.ok(refusedCount > 100)
  const report = await tl.ledger.verify()
  t.same(report.problems, [], `verification passes (seed ${seed})`)
  await tl.reopen()
  t.same((await tl.ledger.verify()).problems, [])
})
