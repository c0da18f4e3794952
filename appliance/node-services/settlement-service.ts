// The settlement node service (spec/settlement.md "The daemon's settlement service"): joins settlement/ to
// this node's ledger. It reads the configured chain every `pollMs`, credits this node's confirmed deposits as
// NLC top-ups (once per external reference), saves the tracker's cursor after each poll, pays this node's NLR
// out on the chain in two phases (hold, pay, post or void), finishes at start a payout a crash interrupted,
// and reconciles the ledger with the chain. Routes: /v1/settlement, /poll, /reconcile, /payouts.
import { randomUUID } from 'node:crypto'
import { createPublicClient, createWalletClient, http, isAddress, type PublicClient } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import type { KvStore } from '../../core/index.ts'
import { failpoint } from '../../core/failpoints.ts'
import type { Ledger } from '../../ledger/ledger.ts'
import { ListedAccounts } from '../../settlement/accounts.ts'
import { creditConfirmedDeposits, type CreditReport } from '../../settlement/deposit-crediter.ts'
import { DeepReorgError, InvalidPayoutBatchError, SettlementError } from '../../settlement/errors.ts'
import { EvmAdapter } from '../../settlement/evm/evm-adapter.ts'
import type { TrackerCursor } from '../../settlement/confirmation-tracker.ts'
import { settlePayouts, type PayoutSteps } from '../../settlement/payouts.ts'
import { reconcileChain, reconciliationToJson } from '../../settlement/reconcile.ts'
import type { PayoutReceipt } from '../../settlement/types.ts'
import { InvalidRequestError } from '../daemon/errors.ts'
import type { ApiRoute, JsonValue, NodeContext, NodeService } from '../daemon/service.ts'
import { settlementConfig, type EvmSettlementConfig } from './settlement-config.ts'
import { SettlementLedger, type StoredBatch } from './settlement-ledger.ts'

/** The node has no `settlement` section in its config. */
export class SettlementNotConfiguredError extends SettlementError {
  readonly status = 404
  constructor() {
    super('this node settles on no chain (config.json settlement)', 'ERR_SETTLEMENT_NOT_CONFIGURED')
    this.name = 'SettlementNotConfiguredError'
  }
}

/** A payout was asked of a node without an operator key (settlement.evm.operatorKeyFile). */
export class NoOperatorKeyError extends SettlementError {
  readonly status = 409
  constructor() {
    super('this node has no operator key (settlement.evm.operatorKeyFile): it credits deposits but cannot pay out', 'ERR_NO_OPERATOR_KEY')
    this.name = 'NoOperatorKeyError'
  }
}

interface StoredCursor {
  chain: string
  creditedThrough: string
  hash: string | null
}

interface LastPoll {
  at: number
  credited: number
  duplicates: number
  conflicts: number
  unknownAccount: number
  pending: number
  dropped: number
  tip: string
}

const bigJson = (v: unknown): JsonValue => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString(10) : x))) as JsonValue
const PAYOUT_STEPS: PayoutSteps = { held: () => failpoint('settlement.payout.held'), paid: () => failpoint('settlement.payout.paid') }
const RECEIPT_ID = /^[A-Za-z0-9._-]{1,100}$/

export class SettlementService implements NodeService {
  readonly name = 'settlement'
  readonly #ledger: () => Ledger
  #cfg: EvmSettlementConfig | undefined
  #adapter: EvmAdapter | undefined
  #init: ConstructorParameters<typeof EvmAdapter>[1] | undefined
  #savedChain: string | undefined
  #port: SettlementLedger | undefined
  #accounts: ListedAccounts | undefined
  #store: KvStore | undefined
  #ctx: NodeContext | undefined
  #timer: NodeJS.Timeout | undefined
  #serial: Promise<unknown> = Promise.resolve()
  #lastPoll: LastPoll | undefined
  #lastError: string | undefined
  #stopped: string | undefined

  constructor(deps: { ledger: () => Ledger }) {
    this.#ledger = deps.ledger
  }

  async start(ctx: NodeContext): Promise<void> {
    const cfg = settlementConfig(ctx.config.settlement, ctx.home)
    if (!cfg) return
    this.#cfg = cfg
    this.#ctx = ctx
    this.#store = ctx.store
    const transport = http(cfg.rpcUrl, { timeout: 10_000, retryCount: 0 })
    const client = createPublicClient({ transport, pollingInterval: Math.min(cfg.pollMs, 1000) }) as PublicClient
    const operator = cfg.operatorKey ? privateKeyToAccount(cfg.operatorKey) : undefined
    const wallet = operator ? createWalletClient({ transport, account: operator }) : undefined
    const saved = await ctx.store.get('cursor') as StoredCursor | undefined
    const cursor: TrackerCursor | undefined = saved ? { creditedThrough: BigInt(saved.creditedThrough), hash: saved.hash ?? undefined } : undefined
    this.#init = { client, ...(wallet ? { wallet } : {}), ...(operator ? { operator } : {}), settlement: cfg.contract, depth: cfg.depth, startHeight: cfg.startHeight, ...(cursor ? { cursor } : {}) }
    this.#savedChain = saved?.chain
    this.#accounts = new ListedAccounts([ctx.did])
    this.#port = new SettlementLedger({ ledger: this.#ledger, did: ctx.did, unitsPerMicro: 10n ** BigInt(cfg.decimals - 6), batches: ctx.store.scope<StoredBatch>('batch/') })
    // the chain id names the chain: an endpoint that does not answer yet is tried again at each poll
    await this.#serialized(() => this.#adapterReady()).catch((err: Error) => ctx.log.warn('settlement: chain not reachable yet', { error: err.message }))
    this.#schedule()
  }

  /** Connects once (reads the chain id), then finishes any payout a crash interrupted. */
  async #adapterReady(): Promise<EvmAdapter> {
    if (this.#adapter) return this.#adapter
    if (!this.#init) throw new SettlementNotConfiguredError()
    let adapter: EvmAdapter
    try {
      adapter = await EvmAdapter.connect(this.#init)
    } catch (err) {
      this.#lastError = `chain endpoint: ${(err as Error).message.split('\n')[0]}`
      throw new SettlementUnavailableError(this.#lastError)
    }
    if (this.#savedChain !== undefined && this.#savedChain !== adapter.chain) {
      this.#stopped = `the saved cursor is for ${this.#savedChain}, the endpoint serves ${adapter.chain}`
      throw new SettlementStoppedError(this.#stopped)
    }
    this.#adapter = adapter
    this.#lastError = undefined
    await this.#recover(adapter)
    return adapter
  }

  #schedule(): void {
    if (!this.#cfg || this.#ctx?.signal.aborted) return
    this.#timer = setTimeout(() => {
      void this.#serialized(() => this.#pollOnce()).catch(() => undefined).finally(() => this.#schedule())
    }, this.#cfg.pollMs)
    this.#timer.unref()
  }

  #serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(fn, fn)
    this.#serial = run.catch(() => undefined)
    return run
  }

  /** One poll: credit what reached the depth, then save the cursor (after the credits: a crash between rescans, which credits nothing twice). */
  async #pollOnce(): Promise<CreditReport> {
    if (this.#stopped) throw new SettlementStoppedError(this.#stopped)
    const adapter = await this.#adapterReady()
    let report: CreditReport
    try {
      report = await creditConfirmedDeposits(adapter, this.#port!, this.#accounts!)
    } catch (err) {
      if (err instanceof DeepReorgError) {
        this.#stopped = err.message
        this.#ctx?.log.error('settlement stopped: reorganisation deeper than the depth', { error: err.message })
      } else {
        this.#lastError = (err as Error).message.split('\n')[0]
        this.#ctx?.log.warn('settlement poll failed', { error: this.#lastError })
      }
      throw err
    }
    this.#lastError = undefined
    if (report.credited.length > 0) failpoint('settlement.poll.credited') // credits durable, cursor not saved: the next poll rescans
    const c = adapter.cursor
    await this.#store!.put('cursor', { chain: adapter.chain, creditedThrough: c.creditedThrough.toString(), hash: c.hash ?? null } satisfies StoredCursor)
    this.#lastPoll = {
      at: Date.now(),
      credited: report.credited.length,
      duplicates: report.duplicates.length,
      conflicts: report.conflicts.length,
      unknownAccount: report.unknownAccount.length,
      pending: report.poll.pending.length,
      dropped: report.poll.dropped.length,
      tip: report.poll.tip.height.toString(),
    }
    if (report.credited.length > 0) this.#ctx?.log.info('deposits credited', { refs: report.credited })
    for (const ref of report.conflicts) this.#ctx?.log.warn('deposit conflicts with the credited top-up', { ref })
    return report
  }

  /** A payout whose process died between hold and post: paid on chain -> post; else pay it now (the chain refuses a second payment of a receipt). */
  async #recover(adapter: EvmAdapter): Promise<void> {
    const held = await this.#port!.held()
    if (held.length === 0) return
    const view = await adapter.chainView()
    for (const b of held) {
      const paid = view.payouts.find((p) => p.root === b.root)
      if (paid) {
        await this.#port!.postPayout(b.root, paid.ref)
        this.#ctx?.log.info('payout recovered: paid on chain, posted', { root: b.root, ref: paid.ref })
        continue
      }
      const receipts: PayoutReceipt[] = b.receipts.map((r) => ({ ...r, amount: BigInt(r.amount) }))
      try {
        const anchor = await settlePayouts(adapter, this.#port!, receipts, PAYOUT_STEPS)
        this.#ctx?.log.info('payout recovered: paid now', { root: b.root, ref: anchor.ref })
      } catch (err) {
        this.#ctx?.log.warn('payout recovered: voided', { root: b.root, error: (err as Error).message })
      }
    }
  }

  async #payout(body: JsonValue | undefined): Promise<JsonValue> {
    const adapter = await this.#adapterReady()
    if (!this.#cfg?.operatorKey) throw new NoOperatorKeyError()
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidRequestError('the request body must be a JSON object')
    for (const k of Object.keys(body)) if (!['payee', 'amount', 'id'].includes(k)) throw new InvalidRequestError(`a payout: unknown field '${k}'`)
    const { payee, amount, id } = body as { payee?: unknown; amount?: unknown; id?: unknown }
    if (typeof payee !== 'string' || !isAddress(payee, { strict: false })) throw new InvalidRequestError("'payee' must be an address (0x and 40 hex digits)")
    if (id !== undefined && (typeof id !== 'string' || !RECEIPT_ID.test(id))) throw new InvalidRequestError("'id' is 1-100 characters of [A-Za-z0-9._-]")
    const available = BigInt(this.#ledger().balance('self:NLR')?.available ?? '0')
    let micro: bigint
    if (amount === undefined) micro = available
    else if (typeof amount === 'string' && /^[1-9][0-9]{0,30}$/.test(amount)) micro = BigInt(amount)
    else throw new InvalidRequestError("'amount' is µNLR as decimal digits (no sign, point or leading zero)")
    if (micro <= 0n) throw new InvalidPayoutBatchError('there is no NLR to pay out', { available: String(available) })
    const receipt: PayoutReceipt = { id: id ?? `p-${randomUUID()}`, account: this.#ctx!.did, payee: payee.toLowerCase(), amount: this.#port!.toChain(micro) }
    const root = adapter.prepareBatch([receipt]).root
    const had = (await this.#store!.get(`batch/${root}`)) as StoredBatch | undefined
    if (had?.state === 'posted') return { receipt: bigJson(receipt), root, anchor: had.anchor ?? null, replay: true }
    const anchor = await settlePayouts(adapter, this.#port!, [receipt], PAYOUT_STEPS)
    return { receipt: bigJson(receipt), root, anchor: anchor.ref, block: anchor.block.height.toString(), replay: false }
  }

  routes(): ApiRoute[] {
    return [
      { method: 'GET', path: '/v1/settlement', handler: async () => this.#status() },
      { method: 'POST', path: '/v1/settlement/poll', handler: async () => bigJson(await this.#serialized(() => this.#pollOnce())) },
      {
        method: 'GET',
        path: '/v1/settlement/reconcile',
        handler: async () => reconciliationToJson(await this.#serialized(async () => reconcileChain(await this.#adapterReady(), this.#port!, this.#accounts!))) as JsonValue,
      },
      { method: 'POST', path: '/v1/settlement/payouts', handler: (req) => this.#serialized(() => this.#payout(req.body)) },
      {
        method: 'GET',
        path: '/v1/settlement/payouts',
        handler: async () => {
          const out: JsonValue[] = []
          if (!this.#store || !this.#init) throw new SettlementNotConfiguredError()
          for await (const [, b] of this.#store.scope<StoredBatch>('batch/').entries()) out.push(b as unknown as JsonValue)
          return { payouts: out }
        },
      },
    ]
  }

  async #status(): Promise<JsonValue> {
    if (!this.#init || !this.#cfg) throw new SettlementNotConfiguredError()
    const adapter = await this.#adapterReady().catch(() => undefined)
    const cfg = this.#cfg
    if (!adapter) return { chain: null, contract: cfg.contract, lastError: this.#lastError ?? null, stopped: this.#stopped ?? null }
    const base = {
      chain: adapter.chain,
      contract: cfg.contract,
      depth: adapter.depth,
      creditedThrough: adapter.cursor.creditedThrough.toString(),
      canPayOut: cfg.operatorKey !== undefined,
      lastPoll: (this.#lastPoll ?? null) as unknown as JsonValue,
      lastError: this.#lastError ?? null,
      stopped: this.#stopped ?? null,
    }
    try {
      const s = await adapter.status()
      return { ...base, tip: s.tip.height.toString(), pending: bigJson(s.pending) }
    } catch (err) {
      return { ...base, tip: null, pending: [], lastError: `chain endpoint: ${(err as Error).message.split('\n')[0]}` }
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer)
    this.#cfg = undefined
    await this.#serial
  }

  status(): JsonValue {
    if (!this.#adapter) return { configured: false }
    return { configured: true, chain: this.#adapter.chain, creditedThrough: this.#adapter.cursor.creditedThrough.toString(), stopped: this.#stopped ?? null }
  }
}

/** Crediting stopped (a reorganisation deeper than the depth, or the endpoint serves another chain) until an operator looks. */
export class SettlementStoppedError extends SettlementError {
  readonly status = 409
  constructor(why: string) {
    super(`settlement is stopped until an operator looks: ${why}`, 'ERR_SETTLEMENT_STOPPED')
    this.name = 'SettlementStoppedError'
  }
}

/** The chain's endpoint does not answer (tried again at each poll). */
export class SettlementUnavailableError extends SettlementError {
  readonly status = 503
  constructor(why: string) {
    super(`the settlement chain is not reachable: ${why}`, 'ERR_SETTLEMENT_UNAVAILABLE')
    this.name = 'SettlementUnavailableError'
  }
}
