// The gateway's per-account books (spec/billing.md), in the gateway's database (node:sqlite or the
// PostgreSQL several gateways share): top-ups, holds and charges in µNLC (integers), each keyed by what makes
// it happen once (a chain reference, a create's idempotency key, a usage record's contract and sequence),
// and one balance row per account changed in the same transaction as the entry: an entry recorded twice
// changes nothing the second time, and a crash between two statements leaves neither. A hold is drawn down by
// the charges against it (pending falls as posted does, so a running deployment's usage does not count twice
// against what is available), refilled to its window while the account can pay, and marked short when it
// cannot (spec/billing.md "Running out").
import type { GatewayDatabase, SqlQueries, SqlRow } from '../store/database.ts'

export const BILLING_SCHEMA = `
  CREATE TABLE IF NOT EXISTS billing_balances (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id), posted BIGINT NOT NULL, pending BIGINT NOT NULL);
  CREATE TABLE IF NOT EXISTS billing_topups (
    ref TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), amount BIGINT NOT NULL, at BIGINT NOT NULL);
  CREATE INDEX IF NOT EXISTS billing_topups_account ON billing_topups (account_id, at);
  CREATE TABLE IF NOT EXISTS billing_holds (
    hold_key TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), deployment_id TEXT, workload TEXT NOT NULL,
    amount BIGINT NOT NULL, state TEXT NOT NULL, created_at BIGINT NOT NULL, released_at BIGINT,
    captured BIGINT NOT NULL DEFAULT 0, window_amount BIGINT, short_since BIGINT, stopped_at BIGINT, late_until BIGINT);
  CREATE INDEX IF NOT EXISTS billing_holds_open ON billing_holds (state);
  CREATE TABLE IF NOT EXISTS billing_charges (
    record_id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), deployment_id TEXT NOT NULL, workload TEXT NOT NULL,
    amount BIGINT NOT NULL, usage_day TEXT NOT NULL, posted_at BIGINT NOT NULL);
  CREATE INDEX IF NOT EXISTS billing_charges_account ON billing_charges (account_id, posted_at);
  CREATE TABLE IF NOT EXISTS billing_deposit_keys (key TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id));
  CREATE TABLE IF NOT EXISTS billing_chain_cursor (chain TEXT PRIMARY KEY, credited_through TEXT NOT NULL, hash TEXT);
`

/** Amounts are µNLC in BIGINT columns, kept below 2^53 so every driver returns them exactly. */
export const MAX_AMOUNT = BigInt(Number.MAX_SAFE_INTEGER)

export interface Balance { posted: bigint; pending: bigint; available: bigint }
export interface TopUpRow { ref: string; amount: bigint; at: number }
/**
 * A hold: `amount` held in all (its first window and every refill), `captured` of it drawn by charges; what it
 * still holds is `amount - captured`. `windowAmount` is what a refill tops it back up to. `shortSince`: since
 * when a refill found too little available (null while it is covered); `stoppedAt`: when its deployment was
 * stopped for want of funds; `lateUntil`: a released hold whose deployment's last usage records were not all in
 * is still metered until then.
 */
export interface HoldRow {
  holdKey: string; accountId: string; deploymentId: string | null; workload: string; amount: bigint; state: 'open' | 'released'; createdAt: number; releasedAt: number | null
  captured: bigint; windowAmount: bigint; shortSince: number | null; stoppedAt: number | null; lateUntil: number | null
}

/** Columns added to billing_holds after its first release: a database made before gets them at open. */
const HOLD_COLUMNS: readonly [string, string][] = [
  ['captured', 'BIGINT NOT NULL DEFAULT 0'], ['window_amount', 'BIGINT'], ['short_since', 'BIGINT'], ['stopped_at', 'BIGINT'], ['late_until', 'BIGINT'],
]
export interface ChargeRow { recordId: string; deploymentId: string; workload: string; amount: bigint; usageDay: string; postedAt: number }

const big = (v: SqlRow[string] | undefined): bigint => (v === null || v === undefined ? 0n : BigInt(String(v)))
const num = (v: SqlRow[string] | undefined): number => Number(v)
const checked = (amount: bigint): number => {
  if (amount < 0n || amount > MAX_AMOUNT) throw new RangeError(`an amount is 0..${MAX_AMOUNT} µNLC`)
  return Number(amount)
}
const hold = (r: SqlRow): HoldRow => ({
  holdKey: String(r.hold_key), accountId: String(r.account_id), deploymentId: r.deployment_id === null ? null : String(r.deployment_id), workload: String(r.workload),
  amount: big(r.amount), state: r.state === 'released' ? 'released' : 'open', createdAt: num(r.created_at), releasedAt: nullable(r.released_at),
  captured: big(r.captured), windowAmount: r.window_amount === null || r.window_amount === undefined ? big(r.amount) : big(r.window_amount),
  shortSince: nullable(r.short_since), stoppedAt: nullable(r.stopped_at), lateUntil: nullable(r.late_until),
})
const nullable = (v: SqlRow[string] | undefined): number | null => (v === null || v === undefined ? null : num(v))

/** What a refill did: the hold covers half its window or more (`covered`), was topped up (`refilled`), or the account could not pay (`short`, `since` when it first could not; `now` true the first time). */
export type RefillOutcome = { kind: 'covered' } | { kind: 'refilled'; amount: bigint } | { kind: 'short'; since: number; now: boolean; needed: bigint } | { kind: 'closed' }

export type TopUpOutcome = 'credited' | 'duplicate' | { conflict: { account: string; amount: bigint } }

export class BillingStore {
  readonly #db: GatewayDatabase

  private constructor(db: GatewayDatabase) {
    this.#db = db
  }

  static async open(db: GatewayDatabase): Promise<BillingStore> {
    await db.migrate(BILLING_SCHEMA)
    await addMissingColumns(db, 'billing_holds', HOLD_COLUMNS)
    return new BillingStore(db)
  }

  async balance(accountId: string): Promise<Balance> {
    const r = await this.#db.get('SELECT posted, pending FROM billing_balances WHERE account_id = ?', [accountId])
    const posted = big(r?.posted)
    const pending = big(r?.pending)
    return { posted, pending, available: posted - pending }
  }

  async #ensureBalance(tx: SqlQueries, accountId: string): Promise<void> {
    await tx.run('INSERT INTO billing_balances (account_id, posted, pending) VALUES (?, 0, 0) ON CONFLICT (account_id) DO NOTHING', [accountId])
  }

  /** Credits `amount` to the account once per `ref` (a chain deposit's reference, or an operator's). */
  async topUp(ref: string, accountId: string, amount: bigint, at: number): Promise<TopUpOutcome> {
    const n = checked(amount)
    return this.#db.transaction(async (tx) => {
      if ((await tx.run('INSERT INTO billing_topups (ref, account_id, amount, at) VALUES (?, ?, ?, ?) ON CONFLICT (ref) DO NOTHING', [ref, accountId, n, at])) === 0) {
        const was = (await tx.get('SELECT account_id, amount FROM billing_topups WHERE ref = ?', [ref]))!
        return String(was.account_id) === accountId && big(was.amount) === amount ? 'duplicate' : { conflict: { account: String(was.account_id), amount: big(was.amount) } }
      }
      await this.#ensureBalance(tx, accountId)
      await tx.run('UPDATE billing_balances SET posted = posted + ? WHERE account_id = ?', [n, accountId])
      return 'credited'
    })
  }

  async topUps(accountId: string): Promise<TopUpRow[]> {
    return (await this.#db.all('SELECT ref, amount, at FROM billing_topups WHERE account_id = ? ORDER BY at DESC, ref LIMIT 500', [accountId]))
      .map((r) => ({ ref: String(r.ref), amount: big(r.amount), at: num(r.at) }))
  }

  /**
   * Holds `amount` of the account's available funds under `holdKey` (once per key: a retried create holds
   * nothing more). False when the account has not that much available: nothing is held.
   */
  async hold(holdKey: string, accountId: string, workload: string, amount: bigint, at: number): Promise<'held' | 'held-before' | 'insufficient'> {
    const n = checked(amount)
    try {
      return await this.#db.transaction(async (tx) => {
        if ((await tx.run("INSERT INTO billing_holds (hold_key, account_id, workload, amount, state, created_at, captured, window_amount) VALUES (?, ?, ?, ?, 'open', ?, 0, ?) ON CONFLICT (hold_key) DO NOTHING", [holdKey, accountId, workload, n, at, n])) === 0) return 'held-before'
        await this.#ensureBalance(tx, accountId)
        // the check and the hold in one statement: two deploys at once cannot both spend the same funds
        if ((await tx.run('UPDATE billing_balances SET pending = pending + ? WHERE account_id = ? AND posted - pending >= ?', [n, accountId, n])) !== 1) throw new NotEnough()
        return 'held'
      })
    } catch (err) {
      if (err instanceof NotEnough) return 'insufficient'
      throw err
    }
  }

  /** The hold's deployment, once the node answered the create. */
  async attachHold(holdKey: string, deploymentId: string): Promise<void> {
    await this.#db.run('UPDATE billing_holds SET deployment_id = ? WHERE hold_key = ?', [deploymentId, holdKey])
  }

  /**
   * Releases an open hold (once): what it still holds (its amount less what charges drew) is available again.
   * `lateUntil`: its deployment's last usage records are not all in, so it is still metered until then.
   */
  async release(holdKey: string, at: number, lateUntil?: number): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const r = await tx.get("UPDATE billing_holds SET state = 'released', released_at = ?, late_until = ? WHERE hold_key = ? AND state = 'open' RETURNING account_id, amount, captured", [at, lateUntil ?? null, holdKey])
      if (!r) return false
      await tx.run('UPDATE billing_balances SET pending = pending - ? WHERE account_id = ?', [Number(big(r.amount) - big(r.captured)), String(r.account_id)])
      return true
    })
  }

  /** A released hold's late records are all in: it is metered no more. */
  async settled(holdKey: string): Promise<void> {
    await this.#db.run("UPDATE billing_holds SET late_until = NULL WHERE hold_key = ? AND state = 'released'", [holdKey])
  }

  /**
   * Tops an open hold back up to its window once it holds less than half of it, from what the account has
   * available; when it has not enough, nothing is taken and the hold is marked short (since the first time).
   * A top-up found covered clears a mark left from before. Safe to repeat and to run on two gateways at once.
   */
  async refill(holdKey: string, at: number): Promise<RefillOutcome> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#db.transaction(async (tx): Promise<RefillOutcome> => {
          const r = await tx.get("SELECT account_id, amount, captured, window_amount, short_since FROM billing_holds WHERE hold_key = ? AND state = 'open'", [holdKey])
          if (!r) return { kind: 'closed' }
          const amount = big(r.amount)
          const captured = big(r.captured)
          const window = r.window_amount === null ? amount : big(r.window_amount)
          const holding = amount - captured
          if (holding * 2n >= window) {
            if (r.short_since !== null) await tx.run('UPDATE billing_holds SET short_since = NULL WHERE hold_key = ?', [holdKey])
            return { kind: 'covered' }
          }
          const top = window - holding
          // compare-and-set on what was read: a charge or another gateway's refill in between starts it again
          if ((await tx.run('UPDATE billing_holds SET amount = amount + ?, short_since = NULL WHERE hold_key = ? AND amount = ? AND captured = ?', [Number(top), holdKey, Number(amount), Number(captured)])) !== 1) throw new Raced()
          if ((await tx.run('UPDATE billing_balances SET pending = pending + ? WHERE account_id = ? AND posted - pending >= ?', [Number(top), String(r.account_id), Number(top)])) !== 1) {
            throw new NotEnough(r.short_since === null ? null : num(r.short_since), top)
          }
          return { kind: 'refilled', amount: top }
        })
      } catch (err) {
        if (err instanceof Raced && attempt < 8) continue
        if (!(err instanceof NotEnough)) throw err
        // nothing was taken (the transaction rolled back); the mark is set once, its first time kept
        if (err.since !== null) return { kind: 'short', since: err.since, now: false, needed: err.needed }
        const marked = await this.#db.run("UPDATE billing_holds SET short_since = ? WHERE hold_key = ? AND state = 'open' AND short_since IS NULL", [at, holdKey])
        if (marked === 1) return { kind: 'short', since: at, now: true, needed: err.needed }
        const again = await this.#db.get('SELECT short_since FROM billing_holds WHERE hold_key = ?', [holdKey])
        return { kind: 'short', since: again?.short_since === null || again?.short_since === undefined ? at : num(again.short_since), now: false, needed: err.needed }
      }
    }
  }

  /** Its deployment was stopped for want of funds (once: true the first time). */
  async markStopped(holdKey: string, at: number): Promise<boolean> {
    return (await this.#db.run('UPDATE billing_holds SET stopped_at = ? WHERE hold_key = ? AND stopped_at IS NULL', [at, holdKey])) === 1
  }

  /** The holds metering reads: the open ones, and released ones whose late records may still come (until `lateUntil`). */
  async meteredHolds(now: number): Promise<HoldRow[]> {
    return (await this.#db.all("SELECT * FROM billing_holds WHERE state = 'open' OR (state = 'released' AND late_until IS NOT NULL AND late_until > ?) ORDER BY created_at", [now])).map(hold)
  }

  async openHolds(): Promise<HoldRow[]> {
    return (await this.#db.all("SELECT * FROM billing_holds WHERE state = 'open' ORDER BY created_at")).map(hold)
  }

  async holdsOf(accountId: string): Promise<HoldRow[]> {
    return (await this.#db.all('SELECT * FROM billing_holds WHERE account_id = ? ORDER BY created_at', [accountId])).map(hold)
  }

  /**
   * Charges one usage record to the account (once per record id); true when charged now. With `holdKey`, the
   * charge draws on that hold while it is open and holds enough: pending falls with posted, so what is available
   * does not move for usage a hold covered. Beyond the hold (or with none) available falls: an account can owe.
   */
  async charge(recordId: string, accountId: string, deploymentId: string, workload: string, amount: bigint, usageDay: string, at: number, holdKey?: string): Promise<boolean> {
    const n = checked(amount)
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#db.transaction(async (tx) => {
          if ((await tx.run('INSERT INTO billing_charges (record_id, account_id, deployment_id, workload, amount, usage_day, posted_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (record_id) DO NOTHING', [recordId, accountId, deploymentId, workload, n, usageDay, at])) === 0) return false
          await this.#ensureBalance(tx, accountId)
          await tx.run('UPDATE billing_balances SET posted = posted - ? WHERE account_id = ?', [n, accountId])
          if (holdKey !== undefined) {
            const h = await tx.get("SELECT amount, captured FROM billing_holds WHERE hold_key = ? AND account_id = ? AND state = 'open'", [holdKey, accountId])
            if (h) {
              const captured = big(h.captured)
              const take = amount < big(h.amount) - captured ? amount : big(h.amount) - captured
              if (take > 0n) {
                if ((await tx.run('UPDATE billing_holds SET captured = captured + ? WHERE hold_key = ? AND captured = ?', [Number(take), holdKey, Number(captured)])) !== 1) throw new Raced()
                await tx.run('UPDATE billing_balances SET pending = pending - ? WHERE account_id = ?', [Number(take), accountId])
              }
            }
          }
          return true
        })
      } catch (err) {
        if (err instanceof Raced && attempt < 8) continue
        throw err
      }
    }
  }

  async chargesOf(accountId: string, o: { fromMs?: number; toMs?: number } = {}): Promise<ChargeRow[]> {
    return (await this.#db.all('SELECT * FROM billing_charges WHERE account_id = ? AND posted_at >= ? AND posted_at < ? ORDER BY posted_at, record_id', [accountId, o.fromMs ?? 0, o.toMs ?? Number.MAX_SAFE_INTEGER]))
      .map((r) => ({ recordId: String(r.record_id), deploymentId: String(r.deployment_id), workload: String(r.workload), amount: big(r.amount), usageDay: String(r.usage_day), postedAt: num(r.posted_at) }))
  }

  /** Usage per day (of the usage) and workload, between two days (YYYY-MM-DD, inclusive). */
  async usageDays(accountId: string, from: string, to: string): Promise<{ day: string; workload: string; amount: bigint }[]> {
    return (await this.#db.all('SELECT usage_day, workload, SUM(amount) AS total FROM billing_charges WHERE account_id = ? AND usage_day >= ? AND usage_day <= ? GROUP BY usage_day, workload ORDER BY usage_day, workload', [accountId, from, to]))
      .map((r) => ({ day: String(r.usage_day), workload: String(r.workload), amount: big(r.total) }))
  }

  /** Remembers a deposit key shown for the account (deposits naming it are the account's, even after its wallet changes). */
  async addDepositKey(key: string, accountId: string): Promise<void> {
    await this.#db.run('INSERT INTO billing_deposit_keys (key, account_id) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', [key, accountId])
  }

  async accountOfDepositKey(key: string): Promise<string | undefined> {
    const r = await this.#db.get('SELECT account_id FROM billing_deposit_keys WHERE key = ?', [key])
    return r ? String(r.account_id) : undefined
  }

  /** Where crediting a chain's deposits got to (a rescan from before it credits nothing twice). */
  async cursor(chain: string): Promise<{ creditedThrough: bigint; hash: string | undefined } | undefined> {
    const r = await this.#db.get('SELECT credited_through, hash FROM billing_chain_cursor WHERE chain = ?', [chain])
    return r ? { creditedThrough: BigInt(String(r.credited_through)), hash: r.hash === null ? undefined : String(r.hash) } : undefined
  }

  async saveCursor(chain: string, creditedThrough: bigint, hash: string | undefined): Promise<void> {
    await this.#db.run('INSERT INTO billing_chain_cursor (chain, credited_through, hash) VALUES (?, ?, ?) ON CONFLICT (chain) DO UPDATE SET credited_through = excluded.credited_through, hash = excluded.hash', [chain, creditedThrough.toString(), hash ?? null])
  }

  async depositKeys(): Promise<Map<string, string>> {
    return new Map((await this.#db.all('SELECT key, account_id FROM billing_deposit_keys')).map((r) => [String(r.key), String(r.account_id)]))
  }
}

class NotEnough extends Error {
  readonly since: number | null
  readonly needed: bigint
  constructor(since: number | null = null, needed = 0n) {
    super('not enough available')
    this.since = since
    this.needed = needed
  }
}
/** A row changed between its read and its compare-and-set update (another gateway, PostgreSQL's read committed): the transaction is tried again. */
class Raced extends Error {}

/** Adds the columns a table made by an earlier release lacks (CREATE TABLE IF NOT EXISTS leaves it as it was). */
async function addMissingColumns(db: GatewayDatabase, table: string, columns: readonly [string, string][]): Promise<void> {
  if (db.kind === 'postgres') {
    await db.migrate(columns.map(([c, type]) => `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${c} ${type}`).join(';\n'))
    return
  }
  const have = new Set((await db.all(`PRAGMA table_info(${table})`)).map((r) => String(r.name)))
  for (const [c, type] of columns) if (!have.has(c)) await db.migrate(`ALTER TABLE ${table} ADD COLUMN ${c} ${type}`)
}
