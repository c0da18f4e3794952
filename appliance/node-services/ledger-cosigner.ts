// The provider side of cosigned checkpoints (spec/ledger.md "Cosigned checkpoints"): each receipt credited
// for a consumer's usage (`usage:<contract>:<seq>:nlc`) is queued for that consumer (in the store: a crash
// loses nothing); shortly after, the provider signs a checkpoint, proves each queued receipt in it and the
// checkpoint's consistency with the last one this consumer cosigned, and asks the consumer's orchestrator
// (`OrchestratorBehavior.cosign`) to cosign it. The cosignature is checked and kept with the checkpoint by
// the ledger (`addCosignature`), so anyone holding the two DIDs can see that the consumer witnessed the log
// up to that size. A refusal or silence is retried with backoff; a consumer whose last cosigned checkpoint
// is not the one this node remembers answers LogConsistencyError with it, and the proof is made from there.
import type { KvStore } from '../../core/index.ts'
import type { Ledger } from '../../ledger/ledger.ts'
import type { Cosignature } from '../../ledger/checkpoint.ts'
import type { CosignRequest } from '../../actors/usage/witness.ts'
import { MAX_RECEIPTS_PER_REQUEST } from '../../actors/usage/witness.ts'

export interface CosignerPorts {
  ledger: () => Ledger
  /** Asks `consumer`'s orchestrator to cosign; resolves with its answer. */
  ask(consumer: string, req: CosignRequest): Promise<unknown>
  /** `q/<consumer>/<contractId>/<seq>` queued receipts; `last/<consumer>` the size it cosigned last. */
  store: KvStore
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void
}

export interface CosignerOptions {
  /** Wait after a credit before asking (receipts credited meanwhile go in the same request). Default 1,000 ms. */
  delayMs?: number
  /** First retry after a failure (doubles up to `maxRetryMs`). Default 2,000 / 60,000 ms. */
  retryMs?: number
  maxRetryMs?: number
}

interface Queued {
  contractId: string
  seq: number
}

export class CheckpointCosigner {
  readonly #p: CosignerPorts
  readonly #o: Required<CosignerOptions>
  readonly #timers = new Map<string, NodeJS.Timeout>()
  readonly #running = new Set<string>()
  readonly #failures = new Map<string, number>()
  #stopped = false

  constructor(ports: CosignerPorts, o: CosignerOptions = {}) {
    this.#p = ports
    this.#o = { delayMs: o.delayMs ?? 1000, retryMs: o.retryMs ?? 2000, maxRetryMs: o.maxRetryMs ?? 60_000 }
  }

  /** A receipt for `consumer` was credited: queue it and ask soon. */
  credited(consumer: string, contractId: string, seq: number): void {
    this.#p.store.put(`q/${consumer}/${contractId}/${seq}`, { contractId, seq } satisfies Queued)
      .then(() => this.#schedule(consumer, this.#o.delayMs), (err: Error) => this.#p.log('warn', 'receipt not queued for cosigning', { consumer, contractId, seq, error: err.message }))
  }

  /** After a restart: every consumer with queued receipts is asked again. */
  async resume(): Promise<void> {
    const consumers = new Set<string>()
    for await (const [key] of this.#p.store.entries('q/')) consumers.add(key.split('/')[1]!)
    for (const c of consumers) this.#schedule(c, this.#o.delayMs)
  }

  stop(): void {
    this.#stopped = true
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
  }

  /** The checkpoint size `consumer` cosigned last (as this node knows it). */
  async lastCosigned(consumer: string): Promise<number | undefined> {
    return (await this.#p.store.get(`last/${consumer}`)) as number | undefined
  }

  #schedule(consumer: string, ms: number): void {
    if (this.#stopped || this.#timers.has(consumer)) return
    const t = setTimeout(() => {
      this.#timers.delete(consumer)
      void this.#run(consumer)
    }, ms)
    t.unref()
    this.#timers.set(consumer, t)
  }

  async #run(consumer: string): Promise<void> {
    if (this.#running.has(consumer) || this.#stopped) return
    this.#running.add(consumer)
    try {
      await this.flush(consumer)
      this.#failures.delete(consumer)
    } catch (err) {
      const n = (this.#failures.get(consumer) ?? 0) + 1
      this.#failures.set(consumer, n)
      this.#p.log('warn', 'checkpoint not cosigned; will ask again', { consumer, error: `${(err as Error).name}: ${(err as Error).message}` })
      this.#schedule(consumer, Math.min(this.#o.maxRetryMs, this.#o.retryMs * 2 ** Math.min(16, n - 1)))
    } finally {
      this.#running.delete(consumer)
    }
  }

  /** Asks `consumer` to cosign a checkpoint holding its queued receipts (at most one request's worth). */
  async flush(consumer: string): Promise<Cosignature | undefined> {
    const queued: Array<[string, Queued]> = []
    for await (const [key, v] of this.#p.store.entries(`q/${consumer}/`)) {
      queued.push([key, v as Queued])
      if (queued.length >= MAX_RECEIPTS_PER_REQUEST) break
    }
    if (queued.length === 0) return undefined
    const ledger = this.#p.ledger()
    const cp = (await ledger.checkpoint()) ?? ledger.latestCheckpoint
    if (!cp) throw new Error('the ledger has no checkpoint')
    const size = cp.body.size
    const receipts: CosignRequest['receipts'] = []
    for (const [key, q] of queued) {
      const [entry] = await ledger.transfersWithIdPrefix(`usage:${q.contractId}:${q.seq}:nlc`, 1)
      if (!entry || entry.id !== `usage:${q.contractId}:${q.seq}:nlc`) {
        await this.#p.store.del(key) // nothing to prove (credited nothing): not asked for
        continue
      }
      receipts.push({ contractId: q.contractId, seq: q.seq, proof: await ledger.proveEntry(entry.seq, size) })
    }
    if (receipts.length === 0) return undefined
    const cos = await this.#ask(consumer, cp, receipts, await this.lastCosigned(consumer), true)
    for (const [key] of queued) await this.#p.store.del(key)
    await this.#p.store.put(`last/${consumer}`, size)
    if (!this.#stopped && (await this.#hasQueued(consumer))) this.#schedule(consumer, 0)
    return cos
  }

  async #ask(consumer: string, cp: NonNullable<Ledger['latestCheckpoint']>, receipts: CosignRequest['receipts'], last: number | undefined, retryFromTheirs: boolean): Promise<Cosignature> {
    const ledger = this.#p.ledger()
    const size = cp.body.size
    const prior = last !== undefined && last < size ? { size: last, proof: (await ledger.consistencyProof(last, size)).map((h) => Buffer.from(h).toString('hex')) } : undefined
    const req: CosignRequest = { v: 1, checkpoint: { body: cp.body, signature: cp.signature, cosignatures: [] }, receipts, ...(prior ? { prior } : {}) }
    let answer: unknown
    try {
      answer = await this.#p.ask(consumer, req)
    } catch (err) {
      const data = (err as { data?: { size?: unknown } }).data
      // the consumer remembers another last checkpoint than this node does: prove consistency from its one
      if (retryFromTheirs && (err as Error).name === 'LogConsistencyError' && Number.isSafeInteger(data?.size) && (data!.size as number) !== last && (data!.size as number) <= size) {
        return this.#ask(consumer, cp, receipts, data!.size as number, false)
      }
      throw err
    }
    const cos = answer as Cosignature
    if (typeof cos !== 'object' || cos === null || cos.did !== consumer) throw new Error(`the answer is not ${consumer}'s cosignature`)
    await ledger.addCosignature(size, cos) // InvalidCheckpointError unless it verifies
    return cos
  }

  async #hasQueued(consumer: string): Promise<boolean> {
    for await (const _ of this.#p.store.entries(`q/${consumer}/`)) return true
    return false
  }
}
