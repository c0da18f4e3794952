// The trust book: one record per node, built only from verified outcomes (a replica's agreement, a known
// answer, a dropped run) and signed heartbeats, and the policy applied to them. The daemons and the
// simulation both keep one; records are plain JSON (what `noir trust --json` shows and the store keeps).
import { replicationProbability, type TrustPolicy } from './policy.ts'
import { reputation, uptimeShare, UPTIME_WINDOW_MINUTES } from './reputation.ts'
import type { Verdict } from './quorum.ts'
import type { Enrolment } from './enrolment.ts'

/** How an outcome was verified. */
export type Evidence = 'replication' | 'known-answer' | 'enrolment'

export interface HistoryEntry {
  at: number
  event: Verdict | 'quarantined' | 'readmitted'
  by?: Evidence
  detail?: string
}

export interface Quarantine {
  since: number
  reason: string
  /** The validator whose record put the node there (this node's own DID when it judged it itself). */
  by: string
}

export interface NodeRecord {
  node: string
  owner: string | null
  firstSeen: number
  valid: number
  invalid: number
  missed: number
  /** Consecutive valid results since the last wrong one. */
  streak: number
  strikes: number
  /** The part of `strikes` earned by dropped runs (forgiven by runs returned, not only by verified ones). */
  dropStrikes: number
  /** Runs that came back with a result (verified or not). */
  returned: number
  /** Runs of this node that were judged (each verdict counts one). */
  judged: number
  validationTasks: { sent: number; passed: number; failed: number }
  quarantine: Quarantine | null
  /** Validation tasks passed in a row while quarantined. */
  readmitPasses: number
  /** Minute numbers (ms / 60000) of the last hour in which a heartbeat was heard. */
  beatMinutes: number[]
  /** The last 20 events. */
  history: HistoryEntry[]
  /** The node measured against its claim (trust/enrolment.ts); absent or null: not enrolled yet (unverified). */
  enrolment?: Enrolment | null
}

export interface NodeTrustView extends NodeRecord {
  trust: number
  uptime: number
  replicationProbability: number
}

export type BookEvent =
  | { kind: 'quarantined'; node: string; reason: string; at: number }
  | { kind: 'readmitted'; node: string; at: number }

const HISTORY = 20

export interface TrustBookInit {
  policy: TrustPolicy
  /** Judge uptime from heartbeats (default true); false: uptime counts as 1 (the simulation has no clock of minutes). */
  judgeUptime?: boolean
  /** Called after a record changed (the daemon writes it to its store). */
  changed?: (r: NodeRecord) => void
  /** Who judges: named in the quarantines this book decides itself (the daemon's DID). Default 'self'. */
  self?: string
}

export class TrustBook {
  readonly policy: TrustPolicy
  readonly #judgeUptime: boolean
  readonly #changed: ((r: NodeRecord) => void) | undefined
  readonly #records = new Map<string, NodeRecord>()
  readonly #self: string

  constructor(init: TrustBookInit) {
    this.policy = init.policy
    this.#self = init.self ?? 'self'
    this.#judgeUptime = init.judgeUptime ?? true
    this.#changed = init.changed
  }

  /** Takes records back from a store (after a restart). */
  load(records: Iterable<NodeRecord>): void {
    for (const r of records) this.#records.set(r.node, r)
  }

  has(node: string): boolean {
    return this.#records.has(node)
  }

  get size(): number {
    return this.#records.size
  }

  /** The record of `node`, created empty (trust 0) the first time it is met. */
  record(node: string, at: number, owner?: string): NodeRecord {
    let r = this.#records.get(node)
    if (!r) {
      r = {
        node, owner: owner ?? null, firstSeen: at, valid: 0, invalid: 0, missed: 0, streak: 0, strikes: 0, dropStrikes: 0, returned: 0, judged: 0,
        validationTasks: { sent: 0, passed: 0, failed: 0 }, quarantine: null, readmitPasses: 0, beatMinutes: [], history: [],
      }
      this.#records.set(node, r)
    } else if (owner !== undefined && r.owner === null) {
      r.owner = owner
    }
    return r
  }

  /** A signed heartbeat of `node` was heard at `at`. */
  beat(node: string, at: number, owner?: string): void {
    const r = this.record(node, at, owner)
    const minute = Math.floor(at / 60_000)
    if (r.beatMinutes[r.beatMinutes.length - 1] === minute) return
    r.beatMinutes.push(minute)
    const oldest = minute - UPTIME_WINDOW_MINUTES + 1
    while (r.beatMinutes.length > 0 && r.beatMinutes[0]! < oldest) r.beatMinutes.shift()
    this.#changed?.(r)
  }

  uptime(r: NodeRecord, now: number): number {
    if (!this.#judgeUptime) return 1
    return uptimeShare(r.beatMinutes, Math.floor(r.firstSeen / 60_000), Math.floor(now / 60_000))
  }

  /** The node's trust now (0 for a node never judged). */
  trust(node: string, now: number): number {
    const r = this.#records.get(node)
    if (!r || r.quarantine) return 0
    return reputation({ streak: r.streak, strikes: r.strikes, uptime: this.uptime(r, now) })
  }

  isQuarantined(node: string): boolean {
    return this.#records.get(node)?.quarantine != null
  }

  /** Whether a run of `node` should be replicated, for a uniform draw `u` in [0, 1). */
  shouldReplicate(node: string, u: number): boolean {
    const r = this.#records.get(node)
    return u < replicationProbability(this.policy, r?.streak ?? 0)
  }

  /** Whether a paid run of `node` is followed by a validation task, for a uniform draw `u` in [0, 1). */
  shouldValidate(u: number): boolean {
    return u < this.policy.validationRate
  }

  /**
   * A run of `node` came back with a result (checked or not): evidence that it does not drop work. Each
   * `forgiveDroppedEvery` of them forgive one dropped run's strikes.
   */
  returned(node: string, at: number): void {
    const r = this.record(node, at)
    r.returned++
    if (r.dropStrikes > 0 && r.returned % this.policy.forgiveDroppedEvery === 0) {
      const f = Math.min(r.dropStrikes, this.policy.strikeMissed)
      r.dropStrikes -= f
      r.strikes = Math.max(0, r.strikes - f)
      this.#changed?.(r)
    }
  }

  /**
   * The node's enrolment was measured. A claim it could not back (inflated) is a wrong result: a strike, as
   * a known answer got wrong would be. Returns what it caused.
   */
  enrolled(node: string, e: Enrolment): BookEvent[] {
    const r = this.record(node, e.at)
    r.enrolment = e
    if (e.verdict === 'inflated') return this.apply(node, 'invalid', 'enrolment', e.at, e.reason)
    this.#push(r, { at: e.at, event: 'valid', by: 'enrolment', detail: e.reason })
    this.#changed?.(r)
    return []
  }

  /** A validation task was sent to `node`. */
  validationSent(node: string, at: number): void {
    this.record(node, at).validationTasks.sent++
  }

  /**
   * Applies one verified outcome of `node` and returns what it caused (quarantine, readmission). While a node
   * is quarantined only validation tasks count: `readmitAfter` passed in a row readmit it on probation
   * (one strike short of quarantine).
   */
  apply(node: string, verdict: Verdict, by: Evidence, at: number, detail?: string): BookEvent[] {
    const p = this.policy
    const r = this.record(node, at)
    const events: BookEvent[] = []
    r.judged++
    this.#push(r, { at, event: verdict, by, ...(detail ? { detail } : {}) })
    if (by === 'known-answer') {
      if (verdict === 'valid') r.validationTasks.passed++
      else r.validationTasks.failed++
    }
    if (verdict === 'valid') {
      r.valid++
      r.streak++
      if (r.streak % p.forgiveEvery === 0) {
        r.strikes = Math.max(0, r.strikes - p.forgiveStrikes)
        r.dropStrikes = Math.min(r.dropStrikes, r.strikes)
      }
    } else if (verdict === 'invalid') {
      r.invalid++
      r.streak = 0
      r.strikes += p.strikeInvalid
    } else {
      r.missed++
      r.strikes += p.strikeMissed
      r.dropStrikes += p.strikeMissed
    }
    if (r.quarantine) {
      if (by === 'known-answer' && verdict === 'valid') {
        r.readmitPasses++
        if (r.readmitPasses >= p.readmitAfter) events.push(this.#readmit(r, at))
      } else if (verdict !== 'valid') {
        r.readmitPasses = 0
      }
    } else if (r.strikes >= p.quarantineStrikes) {
      const reason = `${r.strikes} strikes (${r.invalid} wrong, ${r.missed} dropped results of ${r.judged} judged); last: ${verdict}${detail ? ` (${detail})` : ''}`
      events.push(this.quarantine(node, reason, at, this.#self))
    }
    this.#changed?.(r)
    return events
  }

  /** Quarantines `node` (by this book's own judgement, or a verified record of a trusted validator). */
  quarantine(node: string, reason: string, at: number, by: string): BookEvent & { kind: 'quarantined' } {
    const r = this.record(node, at)
    r.quarantine = { since: at, reason, by }
    r.readmitPasses = 0
    this.#push(r, { at, event: 'quarantined', detail: reason })
    this.#changed?.(r)
    return { kind: 'quarantined', node, reason, at }
  }

  /** Readmits `node` on probation (a verified readmission record, or its own validation tasks passed). */
  readmit(node: string, at: number): BookEvent {
    return this.#readmit(this.record(node, at), at)
  }

  #readmit(r: NodeRecord, at: number): BookEvent {
    r.quarantine = null
    r.streak = r.readmitPasses
    r.readmitPasses = 0
    r.strikes = Math.max(0, this.policy.quarantineStrikes - this.policy.strikeInvalid)
    r.dropStrikes = 0
    this.#push(r, { at, event: 'readmitted' })
    this.#changed?.(r)
    return { kind: 'readmitted', node: r.node, at }
  }

  #push(r: NodeRecord, e: HistoryEntry): void {
    r.history.push(e)
    if (r.history.length > HISTORY) r.history.splice(0, r.history.length - HISTORY)
  }

  view(node: string, now: number): NodeTrustView | undefined {
    const r = this.#records.get(node)
    if (!r) return undefined
    return {
      ...r, validationTasks: { ...r.validationTasks }, beatMinutes: [...r.beatMinutes], history: r.history.map((h) => ({ ...h })),
      ...(r.quarantine ? { quarantine: { ...r.quarantine } } : {}),
      enrolment: r.enrolment ? structuredClone(r.enrolment) : null,
      trust: this.trust(node, now), uptime: Math.round(this.uptime(r, now) * 1000) / 1000,
      replicationProbability: Math.round(replicationProbability(this.policy, r.streak) * 1000) / 1000,
    }
  }

  views(now: number): NodeTrustView[] {
    return [...this.#records.keys()].sort().map((n) => this.view(n, now)!)
  }

  nodes(): IterableIterator<NodeRecord> {
    return this.#records.values()
  }
}
