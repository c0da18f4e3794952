// The ledger node service: this node's own ledger (ledger/, spec/ledger.md) in its own level database
// (NOIR_HOME/ledger, apart from the node store so that every commit can be synced without slowing the rest),
// the standard accounts, a tick that expires pending transfers on time, and the wallet and ledger routes.
// config.json `ledger`: { checkpointIntervalMs?: number }.
import { join } from 'node:path'
import { Ledger, STANDARD_ACCOUNTS } from '../../ledger/ledger.ts'
import { LedgerClosedError } from '../../ledger/errors.ts'
import type { ApiRoute, JsonValue, NodeContext, NodeService } from '../daemon/service.ts'
import { ledgerRoutes, walletRoutes } from './ledger-routes.ts'
import { meteringConfig } from './metering-config.ts'

const EXPIRY_TICK_MS = 1000

interface LedgerConfig {
  checkpointIntervalMs?: number
}

export class LedgerService implements NodeService {
  readonly name = 'ledger'
  #ledger: Ledger | undefined
  #timer: NodeJS.Timeout | undefined

  /** The node's ledger (LedgerClosedError before start and after stop). */
  get ledger(): Ledger {
    if (!this.#ledger) throw new LedgerClosedError('the ledger service is not running')
    return this.#ledger
  }

  async start(ctx: NodeContext): Promise<void> {
    meteringConfig(ctx.config.ledger) // the whole section checked before anything opens: ConfigError naming a wrong field
    const cfg = (ctx.config.ledger ?? {}) as LedgerConfig
    const interval = cfg.checkpointIntervalMs ?? 1000
    this.#ledger = await Ledger.open({ location: join(ctx.home, 'ledger'), key: ctx.key, checkpointIntervalMs: interval })
    const created = await this.#ledger.createAccounts(STANDARD_ACCOUNTS)
    for (const r of created) if (!r.ok) ctx.log.warn('ledger account refused', { account: r.id, result: r.result })
    this.#timer = setInterval(() => {
      this.#ledger?.expireDue().catch((err: Error) => ctx.log.warn('ledger expiry failed', { error: err.message }))
    }, EXPIRY_TICK_MS)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    const l = this.#ledger
    this.#ledger = undefined
    await l?.close()
  }

  routes(): ApiRoute[] {
    return [...walletRoutes(() => this.ledger), ...ledgerRoutes(() => this.ledger)]
  }

  status(): JsonValue {
    const l = this.#ledger
    if (!l) return { running: false }
    return { running: true, entries: l.size, checkpoint: l.latestCheckpoint?.body.size ?? 0, ...l.stats }
  }
}
