// Per-account billing at the gateway (spec/billing.md): each account's NLC wallet (posted, pending, available),
// a hold at deploy admission (402 InsufficientFundsError when the account cannot cover it), the usage the
// gateway's node accepted from providers charged to the account that owns the deployment (once per usage
// record), the hold released when the deployment's work has ended and its last records are in, usage per day
// and workload, and monthly invoices computed from the charges. Every money movement is an idempotent entry in
// the gateway's database (billing-store.ts), so a crash or a second gateway repeats nothing. While a deployment
// runs its hold is drawn down by the charges and refilled to its window from what the account has; an account
// that cannot refill it is told, and after `fundsGraceMs` its deployment is stopped (spec/billing.md "Running out").
import { accountKey } from '../../settlement/accounts.ts'
import { failpoint } from '../../core/failpoints.ts'
import type { Workload } from '../../actors/workload/workload.ts'
import { InsufficientFundsError, InvalidRequestError, NotFoundError } from '../errors.ts'
import type { AccountWallets } from '../wallets/account-wallets.ts'
import type { NodeLink } from '../workloads/tenant-workloads.ts'
import type { BillingStore, ChargeRow, HoldRow } from './billing-store.ts'
import { holdFor, holdSecondsFor, type HoldPolicy } from './hold-size.ts'

export interface DepositTarget {
  /** The chain's name, e.g. evm-31337. */
  chain: string
  /** The Settlement contract deposits go to. */
  contract: string
}

export interface WalletView {
  did: string
  currency: 'NLC'
  /** µNLC, decimal strings. */
  available: string
  pending: string
  posted: string
  /** The account's open holds: what each deployment still holds, and whether it is short of funds. */
  holds: HoldView[]
  deposit: (DepositTarget & { accountKey: string }) | null
}

/** An open hold as the wallet shows it: µNLC as decimal strings. */
export interface HoldView {
  deploymentId: string | null
  workload: string
  /** Still held (its amount less what charges drew). */
  held: string
  /** Drawn by charges so far. */
  used: string
  /** The account could not refill it: its deployment stops at `stopsAt` (ms) unless funds arrive. */
  short: boolean
  stopsAt: number | null
  /** Stopped for want of funds at (ms). */
  stoppedAt: number | null
}

/** What the account's owner is told (by mail, when the gateway has a mailer). */
export type FundsNotice =
  | { kind: 'funds-low'; deploymentId: string; workload: string; needed: bigint; available: bigint; stopsAt: number }
  | { kind: 'stopped-for-funds'; deploymentId: string; workload: string }

export interface InvoiceLine { deploymentId: string; workload: string; records: number; amount: string }
export interface Invoice { id: string; period: string; status: 'open' | 'issued'; issuedAt: number | null; currency: 'NLC'; lines: InvoiceLine[]; total: string }

interface UsageAnswer { records: { status: string; record: { body: { contractId: string; seq: number; from: number; amount: string; final?: boolean }; answer?: { acceptedAmount: string } } }[] }

const FINAL_PHASES = new Set(['stopped', 'completed', 'failed'])
const DAY = /^\d{4}-\d{2}-\d{2}$/
const INVOICE = /^inv-(\d{4})-(\d{2})$/
/** After its work ended, a deployment's hold is released once its last records are in, or after this long. */
export const RELEASE_GRACE_MS = 5 * 60_000
/** A hold released before its deployment's last usage records were all in is still metered this long. */
export const LATE_RECORDS_MS = 24 * 3_600_000

const monthOf = (ms: number): string => new Date(ms).toISOString().slice(0, 7)
const monthStart = (period: string): number => Date.parse(`${period}-01T00:00:00Z`)
const nextMonth = (period: string): number => {
  const d = new Date(monthStart(period))
  d.setUTCMonth(d.getUTCMonth() + 1)
  return d.getTime()
}

export class AccountBilling {
  readonly #store: BillingStore
  readonly #wallets: AccountWallets
  readonly #node: NodeLink | undefined
  readonly #policy: HoldPolicy
  readonly #deposit: DepositTarget | null
  readonly #now: () => number
  readonly #meterMs: number
  readonly #releaseGraceMs: number
  readonly #fundsGraceMs: number
  readonly #lateMs: number
  readonly #notify: ((accountId: string, n: FundsNotice) => Promise<void>) | undefined
  /** When each deployment was first seen ended (its grace starts). */
  readonly #endedAt = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined
  #metering: Promise<void> | undefined

  constructor(o: {
    store: BillingStore; wallets: AccountWallets; node?: NodeLink; policy: HoldPolicy; deposit?: DepositTarget | null; now?: () => number; meterMs?: number; releaseGraceMs?: number
    /** How long a deployment whose hold the account cannot refill keeps running before it is stopped (default: half the hold window). */
    fundsGraceMs?: number
    /** How long a hold released before its last records came in is still metered (default 24 h). */
    lateRecordsMs?: number
    /** Tells the account's owner (a failure is not retried: the wallet shows the same). */
    notify?: (accountId: string, n: FundsNotice) => Promise<void>
  }) {
    this.#releaseGraceMs = o.releaseGraceMs ?? RELEASE_GRACE_MS
    this.#fundsGraceMs = o.fundsGraceMs ?? Math.floor(o.policy.holdSeconds * 1000 / 2)
    this.#lateMs = o.lateRecordsMs ?? LATE_RECORDS_MS
    this.#notify = o.notify
    this.#store = o.store
    this.#wallets = o.wallets
    this.#node = o.node
    this.#policy = o.policy
    this.#deposit = o.deposit ?? null
    this.#now = o.now ?? Date.now
    this.#meterMs = o.meterMs ?? 30_000
  }

  get store(): BillingStore {
    return this.#store
  }

  /** The account's wallet; its deposit key (sha256 of the wallet DID) is remembered as the account's. */
  async wallet(accountId: string): Promise<WalletView> {
    const did = await this.#wallets.didOf(accountId)
    const key = accountKey(did)
    await this.#store.addDepositKey(key, accountId)
    const b = await this.#store.balance(accountId)
    const holds = (await this.#store.holdsOf(accountId)).filter((h) => h.state === 'open').map((h): HoldView => ({
      deploymentId: h.deploymentId, workload: h.workload, held: String(h.amount - h.captured), used: String(h.captured),
      short: h.shortSince !== null, stopsAt: h.shortSince !== null && h.stoppedAt === null ? h.shortSince + this.#fundsGraceMs : null, stoppedAt: h.stoppedAt,
    }))
    return { did, currency: 'NLC', available: String(b.available), pending: String(b.pending), posted: String(b.posted), holds, deposit: this.#deposit ? { ...this.#deposit, accountKey: key } : null }
  }

  /** Admission: holds what the workload may cost in the hold window, once per create (`holdKey`); InsufficientFundsError otherwise. */
  async admit(accountId: string, holdKey: string, w: Workload): Promise<void> {
    const need = holdFor(w, this.#policy)
    const r = await this.#store.hold(holdKey, accountId, w.name, need, this.#now())
    if (r === 'insufficient') {
      const b = await this.#store.balance(accountId)
      throw new InsufficientFundsError(`this deploy holds ${need} µNLC (its price cap for ${holdSecondsFor(w, this.#policy)} s); the account has ${b.available} µNLC available: top up first (GET /v1/wallet)`, { needed: String(need), available: String(b.available) })
    }
  }

  /** The node made the deployment: the hold follows it. */
  async attached(holdKey: string, deploymentId: string): Promise<void> {
    await this.#store.attachHold(holdKey, deploymentId)
  }

  /** The node refused the create: nothing runs, nothing stays held. */
  async refused(holdKey: string): Promise<void> {
    await this.#store.release(holdKey, this.#now())
  }

  async topUps(accountId: string): Promise<{ topUps: { ref: string; amount: string; at: number }[] }> {
    return { topUps: (await this.#store.topUps(accountId)).map((t) => ({ ref: t.ref, amount: String(t.amount), at: t.at })) }
  }

  async usage(accountId: string, from: unknown, to: unknown): Promise<{ from: string; to: string; days: { day: string; workload: string; amount: string }[] }> {
    const today = new Date(this.#now()).toISOString().slice(0, 10)
    const f = from === undefined ? new Date(this.#now() - 29 * 86_400_000).toISOString().slice(0, 10) : from
    const t = to === undefined ? today : to
    if (typeof f !== 'string' || !DAY.test(f) || Number.isNaN(Date.parse(f))) throw new InvalidRequestError('from is a day, YYYY-MM-DD', { field: 'from' })
    if (typeof t !== 'string' || !DAY.test(t) || Number.isNaN(Date.parse(t))) throw new InvalidRequestError('to is a day, YYYY-MM-DD', { field: 'to' })
    if (f > t) throw new InvalidRequestError('from is after to', { field: 'from' })
    return { from: f, to: t, days: (await this.#store.usageDays(accountId, f, t)).map((d) => ({ day: d.day, workload: d.workload, amount: String(d.amount) })) }
  }

  /** Monthly statements of the account's charges (by the month they were posted), newest first. */
  async invoices(accountId: string): Promise<{ invoices: Invoice[] }> {
    const byMonth = new Map<string, ChargeRow[]>()
    for (const c of await this.#store.chargesOf(accountId)) {
      const m = monthOf(c.postedAt)
      byMonth.set(m, [...(byMonth.get(m) ?? []), c])
    }
    return { invoices: [...byMonth.keys()].sort().reverse().map((m) => this.#invoice(m, byMonth.get(m)!)) }
  }

  async invoice(accountId: string, id: string): Promise<Invoice> {
    const m = INVOICE.exec(id)
    // another account's invoice id names this account's month: it is answered with this account's, or 404
    if (!m) throw new NotFoundError(`no invoice ${id}`)
    const period = `${m[1]}-${m[2]}`
    const charges = await this.#store.chargesOf(accountId, { fromMs: monthStart(period), toMs: nextMonth(period) })
    if (charges.length === 0) throw new NotFoundError(`no invoice ${id}`)
    return this.#invoice(period, charges)
  }

  #invoice(period: string, charges: ChargeRow[]): Invoice {
    const lines = new Map<string, InvoiceLine & { sum: bigint }>()
    for (const c of charges) {
      const l = lines.get(c.deploymentId) ?? { deploymentId: c.deploymentId, workload: c.workload, records: 0, amount: '0', sum: 0n }
      l.records++
      l.sum += c.amount
      lines.set(c.deploymentId, l)
    }
    const total = [...lines.values()].reduce((a, l) => a + l.sum, 0n)
    const closed = nextMonth(period) <= this.#now()
    return {
      id: `inv-${period}`, period, status: closed ? 'issued' : 'open', issuedAt: closed ? nextMonth(period) : null, currency: 'NLC',
      lines: [...lines.values()].map(({ sum, ...l }) => ({ ...l, amount: String(sum) })), total: String(total),
    }
  }

  // ---- metering: the node's accepted usage, charged to the owning account ----------------------------------

  start(): void {
    if (!this.#node || this.#timer) return
    this.#timer = setInterval(() => void this.meter(), this.#meterMs)
    this.#timer.unref()
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#metering
  }

  /** One pass over the open holds (one at a time: a pass already running is waited for, not doubled). */
  meter(): Promise<void> {
    this.#metering ??= this.#meterOnce().finally(() => (this.#metering = undefined))
    return this.#metering
  }

  async #meterOnce(): Promise<void> {
    const node = this.#node
    if (!node) return
    for (const h of await this.#store.meteredHolds(this.#now())) {
      if (h.deploymentId === null) continue
      try {
        await this.#meterHold(node, h as HoldRow & { deploymentId: string })
      } catch {
        // the node does not answer now: the next pass tries again (every entry is idempotent)
      }
    }
  }

  async #meterHold(node: NodeLink, h: HoldRow & { deploymentId: string }): Promise<void> {
    const id = encodeURIComponent(h.deploymentId)
    const view = await node.get<{ phase: string }>(`/v1/deployments/${id}`)
    const usage = await node.get<UsageAnswer>(`/v1/deployments/${id}/usage`)
    const finals = new Set<string>()
    const contracts = new Set<string>()
    for (const u of usage.records) {
      const b = u.record.body
      contracts.add(b.contractId)
      // answered: accepted, or disputed with the amount the node accepted (what it paid the provider)
      if ((u.status !== 'accepted' && u.status !== 'disputed') || !u.record.answer) continue
      if (b.final === true) finals.add(b.contractId)
      const charged = await this.#store.charge(`${b.contractId}:${b.seq}`, h.accountId, h.deploymentId, h.workload, BigInt(u.record.answer.acceptedAmount), new Date(b.from).toISOString().slice(0, 10), this.#now(), h.holdKey)
      if (charged) failpoint('gateway.billing.charged') // a crash here: the next pass charges the rest, this one not again
    }
    const allIn = [...contracts].every((c) => finals.has(c))
    if (h.state === 'released') {
      // a late record after the release is charged all the same (the account may owe); metered until all are in
      if (allIn) await this.#store.settled(h.holdKey)
      return
    }
    if (!FINAL_PHASES.has(view.phase)) {
      await this.#keepFunded(node, h)
      return
    }
    const now = this.#now()
    const since = this.#endedAt.get(h.deploymentId) ?? now
    this.#endedAt.set(h.deploymentId, since)
    if (allIn || now - since >= this.#releaseGraceMs) {
      await this.#store.release(h.holdKey, now, allIn ? undefined : now + this.#lateMs)
      this.#endedAt.delete(h.deploymentId)
    }
  }

  /** A running deployment: its hold refilled while the account can pay; short past the grace, it is stopped. */
  async #keepFunded(node: NodeLink, h: HoldRow & { deploymentId: string }): Promise<void> {
    const now = this.#now()
    const r = await this.#store.refill(h.holdKey, now)
    if (r.kind !== 'short') return
    if (r.now) {
      const b = await this.#store.balance(h.accountId)
      await this.#tell(h.accountId, { kind: 'funds-low', deploymentId: h.deploymentId, workload: h.workload, needed: r.needed, available: b.available, stopsAt: r.since + this.#fundsGraceMs })
    }
    if (now - r.since < this.#fundsGraceMs) return
    // marked first, then stopped: a crash in between stops it on the next pass (a stop asked again is idempotent)
    const first = await this.#store.markStopped(h.holdKey, now)
    await node.post(`/v1/deployments/${encodeURIComponent(h.deploymentId)}/stop`)
    if (first) await this.#tell(h.accountId, { kind: 'stopped-for-funds', deploymentId: h.deploymentId, workload: h.workload })
  }

  async #tell(accountId: string, n: FundsNotice): Promise<void> {
    await this.#notify?.(accountId, n).catch(() => undefined)
  }
}
