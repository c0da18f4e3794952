// The provider side of metering (spec/ledger.md "Metering"): for each running contract, a signed usage
// record every `intervalMs` and one at the end (`final`), sent to the consumer's orchestrator in seq order;
// an answered record (countersigned, or disputed with the amount accepted) is checked, kept, and its accepted
// amount credited (Earnings: NLC receivable converted to NLR). Unanswered records are sent again with
// backoff; once the contract ended and `giveUpMs` passed they are marked `unanswered` and are not paid.
import type { NodeKey } from '../../identity/keys.ts'
import type { ContractTerms } from '../contracts/contract.ts'
import type { ContractStore } from '../contracts/store.ts'
import type { Earnings } from './escrow.ts'
import { contractPricePerHour, signUsage, usageAmount, verifyAnswered, type UsageBody, type UsageRecord } from './record.ts'
import type { KvUsageStore, StoredUsage } from './store.ts'

/**
 * The executor's counters for a contract's instance, as last sampled (absent fields: not measured):
 * cumulative since the instance started for cpu and egress, the working set now for memory.
 */
export interface MeasuredUsage {
  cpuNanos?: number
  memoryBytes?: number
  egressBytes?: number
}

export interface UsageMeterPorts {
  key: NodeKey
  contracts: ContractStore
  store: KvUsageStore
  /** Sends a record to the consumer's orchestrator; resolves with its answer (the record with both signatures). */
  send(consumer: string, record: UsageRecord): Promise<unknown>
  earnings?: Earnings
  /** A receipt was credited to this node's ledger (the consumer is then asked to cosign a checkpoint holding it). */
  credited?(consumer: string, contractId: string, seq: number, deploymentId: string): void
  /** Who orchestrates a deployment now (the consumer, or its standby after a handover): the only other DID that may answer its records. */
  orchestratorOf?(consumer: string, deploymentId: string): Promise<string>
  /** The executor's counters for a contract's instance, where it measures them. */
  measure?(contractId: string): MeasuredUsage | undefined
  now(): number
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void
}

export interface UsageMeterOptions {
  /** Default 60,000 ms. */
  intervalMs?: number
  /** First retry of an unanswered record (doubles up to `maxRetryMs`). Default 1,000 / 30,000 ms. */
  retryMs?: number
  maxRetryMs?: number
  /** After the contract ended, how long a record is retried before it is marked unanswered. Default 600,000 ms. */
  giveUpMs?: number
}

interface Running {
  terms: ContractTerms
  from: number
  seq: number
  timer: NodeJS.Timeout
  /** The counters at the last record (a record carries the difference); undefined after a restart: not known. */
  last: MeasuredUsage | undefined
}

const errorText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err))
/** Refusals a retry cannot change: the record is kept as refused (unanswered), not sent again. */
const FINAL_REFUSALS = new Set(['InvalidUsageError', 'UsageConflictError', 'InvalidSignatureError'])

export class UsageMeter {
  readonly #p: UsageMeterPorts
  readonly #o: Required<UsageMeterOptions>
  readonly #running = new Map<string, Running>()
  /** Contracts whose outbox is being sent (one pump per contract). */
  readonly #pumping = new Set<string>()
  readonly #retryTimers = new Set<NodeJS.Timeout>()
  #stopped = false

  constructor(ports: UsageMeterPorts, o: UsageMeterOptions = {}) {
    this.#p = ports
    this.#o = { intervalMs: o.intervalMs ?? 60_000, retryMs: o.retryMs ?? 1000, maxRetryMs: o.maxRetryMs ?? 30_000, giveUpMs: o.giveUpMs ?? 600_000 }
  }

  /** Records issued so far that are still unanswered, across contracts. */
  async pending(): Promise<StoredUsage[]> {
    return (await this.#p.store.all('provider')).filter((u) => u.status === 'pending')
  }

  /** After a restart: contracts that were running are metered again from their last record; pending records are sent again. */
  async resume(): Promise<void> {
    const last = new Map<string, StoredUsage>()
    for (const u of await this.#p.store.all('provider')) {
      const prev = last.get(u.record.body.contractId)
      if (!prev || prev.record.body.seq < u.record.body.seq) last.set(u.record.body.contractId, u)
      if (u.status === 'pending') this.#pump(u.record.body.contractId)
      // answered before a crash, not credited yet: credited now (the same ids: a replay if it was)
      else if ((u.status === 'accepted' || u.status === 'disputed') && u.settled === undefined) await this.#credit(u)
    }
    for (const s of await this.#p.contracts.list()) {
      if (s.side !== 'provider' || s.status !== 'active' || s.instanceState !== 'running') continue
      const l = last.get(s.contract.terms.id)
      if (l?.record.body.final) continue
      this.#begin(s.contract.terms, l ? l.record.body.to : s.updatedAt, l ? l.record.body.seq + 1 : 0)
    }
  }

  /** The contract's instance runs since `at` (provider's clock). */
  async started(contractId: string, at: number): Promise<void> {
    if (this.#stopped || this.#running.has(contractId)) return
    const s = await this.#p.contracts.get(contractId, 'provider')
    if (!s || s.contract.terms.role !== 'replica') return
    const prior = await this.#p.store.ofContract(contractId, 'provider')
    if (prior.some((u) => u.record.body.final)) return
    const last = prior.at(-1)
    this.#begin(s.contract.terms, last ? last.record.body.to : at, last ? last.record.body.seq + 1 : 0)
  }

  /** The contract's instance ended at `at`: the final record is issued. */
  async ended(contractId: string, at: number): Promise<void> {
    const r = this.#running.get(contractId)
    if (!r) return
    clearInterval(r.timer)
    this.#running.delete(contractId)
    await this.#issue(r, Math.max(at, r.from), true)
  }

  stop(): void {
    this.#stopped = true
    for (const r of this.#running.values()) clearInterval(r.timer)
    this.#running.clear()
    for (const t of this.#retryTimers) clearTimeout(t)
  }

  #begin(terms: ContractTerms, from: number, seq: number): void {
    // a fresh instance's counters start at 0; after a restart the counters at the last record are unknown
    const r: Running = { terms, from, seq, last: seq === 0 ? {} : undefined, timer: setInterval(() => void this.#issue(r, this.#p.now(), false), this.#o.intervalMs) }
    r.timer.unref()
    this.#running.set(terms.id, r)
  }

  async #issue(r: Running, to: number, final: boolean): Promise<void> {
    const t = r.terms
    const from = r.from
    const seq = r.seq
    r.from = to
    r.seq++
    const price = contractPricePerHour(t)
    const replicaMs = Math.max(0, to - from)
    const m = this.#p.measure?.(t.id)
    const prev = r.last
    r.last = m
    // differences of cumulative counters; a counter that went back (a restart in place) is not reported
    const cpu = m?.cpuNanos !== undefined && prev !== undefined && m.cpuNanos >= (prev.cpuNanos ?? 0) ? Math.round((m.cpuNanos - (prev.cpuNanos ?? 0)) / 1e6) : undefined
    const egress = m?.egressBytes !== undefined && prev !== undefined && m.egressBytes >= (prev.egressBytes ?? 0) ? m.egressBytes - (prev.egressBytes ?? 0) : undefined
    const body: UsageBody = {
      v: 1, contractId: t.id, deploymentId: t.deploymentId, slot: t.slot, consumer: t.consumer, provider: t.provider, seq, from, to: Math.max(to, from), replicaMs,
      ...(cpu !== undefined ? { cpuMs: cpu } : {}),
      ...(m?.memoryBytes !== undefined ? { memoryByteMs: String(BigInt(Math.round(m.memoryBytes)) * BigInt(replicaMs)) } : {}),
      ...(egress !== undefined ? { egressBytes: String(Math.round(egress)) } : {}),
      pricePerHour: String(price), amount: String(usageAmount(price, replicaMs)), ...(final ? { final: true } : {}),
    }
    try {
      await this.#p.store.put({ side: 'provider', record: signUsage(this.#p.key, body), status: 'pending', tries: 0, updatedAt: this.#p.now() })
    } catch (err) {
      this.#p.log('warn', 'usage record not stored', { contractId: t.id, seq, error: errorText(err) })
      return
    }
    this.#pump(t.id)
  }

  /** Sends the contract's pending records in seq order until none is left or one fails (then retries later). */
  #pump(contractId: string, delayMs = 0): void {
    if (this.#stopped || this.#pumping.has(contractId)) return
    this.#pumping.add(contractId)
    const go = async (): Promise<void> => {
      let failed: StoredUsage | undefined
      try {
        for (;;) {
          const next = (await this.#p.store.ofContract(contractId, 'provider')).find((u) => u.status === 'pending')
          if (!next || this.#stopped) break
          if (!(await this.#sendOne(next))) {
            failed = next
            break
          }
        }
      } finally {
        this.#pumping.delete(contractId)
      }
      if (failed && !this.#stopped) {
        const wait = Math.min(this.#o.maxRetryMs, this.#o.retryMs * 2 ** Math.min(20, (failed.tries ?? 1) - 1))
        const timer = setTimeout(() => {
          this.#retryTimers.delete(timer)
          this.#pump(contractId)
        }, wait)
        timer.unref()
        this.#retryTimers.add(timer)
      }
    }
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer)
      go().catch((err: unknown) => this.#p.log('warn', 'usage records not sent', { contractId, error: errorText(err) }))
    }, delayMs)
    timer.unref()
    this.#retryTimers.add(timer)
  }

  /** One send; true when the record is settled (answered, or given up), false to retry later. */
  async #sendOne(u: StoredUsage): Promise<boolean> {
    const b = u.record.body
    let reply: unknown
    try {
      reply = await this.#p.send(b.consumer, u.record)
    } catch (err) {
      const tries = (u.tries ?? 0) + 1
      const name = (err as Error)?.name ?? ''
      const ended = await this.#contractEnded(b.contractId)
      if (FINAL_REFUSALS.has(name) || (ended !== null && this.#p.now() - Math.max(ended, b.to) > this.#o.giveUpMs)) {
        await this.#p.store.put({ ...u, status: 'unanswered', tries, updatedAt: this.#p.now(), note: errorText(err) })
        this.#p.log('warn', 'usage record unanswered: not paid', { contractId: b.contractId, seq: b.seq, error: errorText(err) })
        return true
      }
      await this.#p.store.put({ ...u, tries, updatedAt: this.#p.now(), note: errorText(err) })
      return false
    }
    let answered: ReturnType<typeof verifyAnswered>
    try {
      answered = verifyAnswered(reply)
      if (answered.providerSig !== u.record.providerSig || answered.body.seq !== b.seq || answered.body.contractId !== b.contractId) throw new Error('the answer is for another record')
      const by = answered.answer.by
      if (by !== undefined && by !== (await this.#p.orchestratorOf?.(b.consumer, b.deploymentId))) throw new Error(`answered by ${by}, which does not orchestrate deployment ${b.deploymentId}`)
    } catch (err) {
      await this.#p.store.put({ ...u, tries: (u.tries ?? 0) + 1, updatedAt: this.#p.now(), note: `bad answer: ${errorText(err)}` })
      return false
    }
    const stored: StoredUsage = { side: 'provider', record: answered, status: answered.answer.verdict, tries: (u.tries ?? 0) + 1, updatedAt: this.#p.now() }
    await this.#p.store.put(stored)
    if (answered.answer.verdict === 'disputed') this.#p.log('warn', 'usage record disputed by the consumer', { contractId: b.contractId, seq: b.seq, claimed: b.amount, accepted: answered.answer.acceptedAmount, reason: answered.answer.reason })
    await this.#credit(stored)
    return true
  }

  /** Credits the accepted amount of an answered record (Earnings ids are per contract and seq: a replay is a replay). */
  async #credit(u: StoredUsage): Promise<void> {
    const b = u.record.body
    const amount = BigInt(u.record.answer!.acceptedAmount)
    if (amount > 0n && this.#p.earnings) {
      await this.#p.earnings.credit(b.contractId, b.seq, amount)
      this.#p.credited?.(b.consumer, b.contractId, b.seq, b.deploymentId)
    }
    await this.#p.store.put({ ...u, settled: amount > 0n && this.#p.earnings ? 'paid' : 'nothing', updatedAt: this.#p.now() })
  }

  async #contractEnded(contractId: string): Promise<number | null> {
    if (this.#running.has(contractId)) return null
    const s = await this.#p.contracts.get(contractId, 'provider')
    return s && s.status === 'active' ? null : (s?.updatedAt ?? 0)
  }
}
