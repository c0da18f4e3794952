// Capacity reservations in the gateway's database (spec/capacity.md): quotes, reservations and the uses
// deployments make of a reservation's slots. Each step is keyed by what makes it happen once (a quote makes at
// most one reservation; a create's hold key takes its slots at most once and gives them back at most once),
// and the slot count changes in the same statement that checks it, so two deploys at once cannot both take
// the last slot, on node:sqlite or on the PostgreSQL several gateways share.
import type { GatewayDatabase, SqlRow } from '../store/database.ts'
import type { CapacityRequest } from './capacity-request.ts'

export const CAPACITY_SCHEMA = `
  CREATE TABLE IF NOT EXISTS capacity_quotes (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), request TEXT NOT NULL,
    price_per_hour BIGINT NOT NULL, total BIGINT NOT NULL, slot_cap BIGINT NOT NULL, detail TEXT NOT NULL,
    created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
  CREATE TABLE IF NOT EXISTS capacity_reservations (
    id TEXT PRIMARY KEY, quote_id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL REFERENCES accounts(id), request TEXT NOT NULL,
    price_per_hour BIGINT NOT NULL, total BIGINT NOT NULL, slot_cap BIGINT NOT NULL, slots INTEGER NOT NULL, used INTEGER NOT NULL,
    state TEXT NOT NULL, created_at BIGINT NOT NULL, starts_at BIGINT, ends_at BIGINT, ended_at BIGINT, charged BIGINT);
  CREATE INDEX IF NOT EXISTS capacity_reservations_account ON capacity_reservations (account_id, created_at);
  CREATE INDEX IF NOT EXISTS capacity_reservations_state ON capacity_reservations (state);
  CREATE TABLE IF NOT EXISTS capacity_uses (
    hold_key TEXT PRIMARY KEY, reservation_id TEXT NOT NULL REFERENCES capacity_reservations(id), slots INTEGER NOT NULL,
    taken INTEGER NOT NULL, deployment_id TEXT, released_at BIGINT, created_at BIGINT NOT NULL);
  CREATE INDEX IF NOT EXISTS capacity_uses_reservation ON capacity_uses (reservation_id);
`

export interface QuoteRow {
  id: string
  accountId: string
  request: CapacityRequest
  pricePerHour: bigint
  total: bigint
  /** The highest price of one slot in the quote: the price cap of every deploy inside. */
  slotCap: bigint
  /** Which node quoted what (JSON, for the answer). */
  detail: QuoteDetail
  createdAt: number
  expiresAt: number
}

export interface QuoteDetail { slots: { node: string; pricePerHour: string }[]; standby: { node: string; pricePerHour: string } | null; asked: number; bids: number }

/** funding: written, its funds not yet held; active: held, deploys run inside; ending: its deployments being stopped; ended: charged, released. */
export type ReservationState = 'funding' | 'active' | 'ending' | 'ended'

export interface ReservationRow {
  id: string
  quoteId: string
  accountId: string
  request: CapacityRequest
  pricePerHour: bigint
  total: bigint
  slotCap: bigint
  slots: number
  used: number
  state: ReservationState
  createdAt: number
  startsAt: number | null
  endsAt: number | null
  endedAt: number | null
  charged: bigint | null
}

export interface UseRow { holdKey: string; reservationId: string; slots: number; taken: boolean; deploymentId: string | null; releasedAt: number | null }

const big = (v: SqlRow[string] | undefined): bigint => BigInt(String(v ?? 0))
const numOrNull = (v: SqlRow[string] | undefined): number | null => (v === null || v === undefined ? null : Number(v))

const quote = (r: SqlRow): QuoteRow => ({
  id: String(r.id), accountId: String(r.account_id), request: JSON.parse(String(r.request)) as CapacityRequest,
  pricePerHour: big(r.price_per_hour), total: big(r.total), slotCap: big(r.slot_cap), detail: JSON.parse(String(r.detail)) as QuoteDetail,
  createdAt: Number(r.created_at), expiresAt: Number(r.expires_at),
})
const reservation = (r: SqlRow): ReservationRow => ({
  id: String(r.id), quoteId: String(r.quote_id), accountId: String(r.account_id), request: JSON.parse(String(r.request)) as CapacityRequest,
  pricePerHour: big(r.price_per_hour), total: big(r.total), slotCap: big(r.slot_cap), slots: Number(r.slots), used: Number(r.used),
  state: String(r.state) as ReservationState, createdAt: Number(r.created_at), startsAt: numOrNull(r.starts_at), endsAt: numOrNull(r.ends_at),
  endedAt: numOrNull(r.ended_at), charged: r.charged === null || r.charged === undefined ? null : big(r.charged),
})
const use = (r: SqlRow): UseRow => ({
  holdKey: String(r.hold_key), reservationId: String(r.reservation_id), slots: Number(r.slots), taken: Number(r.taken) === 1,
  deploymentId: r.deployment_id === null ? null : String(r.deployment_id), releasedAt: numOrNull(r.released_at),
})

export type TakeOutcome = 'taken' | 'taken-before' | 'full' | 'not-active'

export class CapacityStore {
  readonly #db: GatewayDatabase

  private constructor(db: GatewayDatabase) {
    this.#db = db
  }

  static async open(db: GatewayDatabase): Promise<CapacityStore> {
    await db.migrate(CAPACITY_SCHEMA)
    return new CapacityStore(db)
  }

  async addQuote(q: QuoteRow): Promise<void> {
    await this.#db.run('INSERT INTO capacity_quotes (id, account_id, request, price_per_hour, total, slot_cap, detail, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [
      q.id, q.accountId, JSON.stringify(q.request), Number(q.pricePerHour), Number(q.total), Number(q.slotCap), JSON.stringify(q.detail), q.createdAt, q.expiresAt,
    ])
  }

  async quote(accountId: string, id: string): Promise<QuoteRow | undefined> {
    const r = await this.#db.get('SELECT * FROM capacity_quotes WHERE id = ? AND account_id = ?', [id, accountId])
    return r ? quote(r) : undefined
  }

  /** Writes the reservation a quote makes, once per quote (state `funding`); the reservation either way. */
  async addReservation(q: QuoteRow, id: string, at: number): Promise<ReservationRow> {
    await this.#db.run(
      "INSERT INTO capacity_reservations (id, quote_id, account_id, request, price_per_hour, total, slot_cap, slots, used, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 'funding', ?) ON CONFLICT (quote_id) DO NOTHING",
      [id, q.id, q.accountId, JSON.stringify(q.request), Number(q.pricePerHour), Number(q.total), Number(q.slotCap), q.request.slots, at],
    )
    return reservation((await this.#db.get('SELECT * FROM capacity_reservations WHERE quote_id = ?', [q.id]))!)
  }

  /** Funds held: the reservation's time starts now. False when it was not `funding` (activated before). */
  async activate(id: string, startsAt: number, endsAt: number): Promise<boolean> {
    return (await this.#db.run("UPDATE capacity_reservations SET state = 'active', starts_at = ?, ends_at = ? WHERE id = ? AND state = 'funding'", [startsAt, endsAt, id])) === 1
  }

  /** A reservation whose funds could not be held is forgotten (a retry of the quote may try again). */
  async dropFunding(id: string): Promise<void> {
    await this.#db.run("DELETE FROM capacity_reservations WHERE id = ? AND state = 'funding'", [id])
  }

  async reservation(id: string): Promise<ReservationRow | undefined> {
    const r = await this.#db.get('SELECT * FROM capacity_reservations WHERE id = ?', [id])
    return r ? reservation(r) : undefined
  }

  async reservationsOf(accountId: string): Promise<ReservationRow[]> {
    return (await this.#db.all("SELECT * FROM capacity_reservations WHERE account_id = ? AND state <> 'funding' ORDER BY created_at DESC LIMIT 500", [accountId])).map(reservation)
  }

  /** Reservations some step is still owed to: funding, active, ending. */
  async unfinished(): Promise<ReservationRow[]> {
    return (await this.#db.all("SELECT * FROM capacity_reservations WHERE state <> 'ended' ORDER BY created_at")).map(reservation)
  }

  /** Starts the end: no deploy gets in from now on. `endedAt` is kept from the first call. */
  async beginEnd(id: string, endedAt: number): Promise<boolean> {
    return (await this.#db.run("UPDATE capacity_reservations SET state = 'ending', ended_at = ? WHERE id = ? AND state = 'active'", [endedAt, id])) === 1
  }

  async finishEnd(id: string, charged: bigint): Promise<void> {
    await this.#db.run("UPDATE capacity_reservations SET state = 'ended', charged = ? WHERE id = ? AND state = 'ending'", [Number(charged), id])
  }

  /** Names the reservation a create (its hold key) runs in, before the create is recorded; the reservation it names now. */
  async bindUse(holdKey: string, reservationId: string, slots: number, at: number): Promise<string> {
    await this.#db.run('INSERT INTO capacity_uses (hold_key, reservation_id, slots, taken, created_at) VALUES (?, ?, ?, 0, ?) ON CONFLICT (hold_key) DO NOTHING', [holdKey, reservationId, slots, at])
    return String((await this.#db.get('SELECT reservation_id FROM capacity_uses WHERE hold_key = ?', [holdKey]))!.reservation_id)
  }

  async use(holdKey: string): Promise<UseRow | undefined> {
    const r = await this.#db.get('SELECT * FROM capacity_uses WHERE hold_key = ?', [holdKey])
    return r ? use(r) : undefined
  }

  async usesOf(reservationId: string): Promise<UseRow[]> {
    return (await this.#db.all('SELECT * FROM capacity_uses WHERE reservation_id = ? AND taken = 1 ORDER BY created_at', [reservationId])).map(use)
  }

  /** Takes the use's slots once, while the reservation is active, has them free and its time is not over. */
  async take(holdKey: string, now: number): Promise<TakeOutcome> {
    try {
      return await this.#db.transaction(async (tx) => {
        const u = await tx.get('SELECT reservation_id, slots, taken FROM capacity_uses WHERE hold_key = ?', [holdKey])
        if (!u) throw new RangeError(`no capacity use ${holdKey}`)
        if (Number(u.taken) === 1) return 'taken-before'
        const id = String(u.reservation_id)
        const slots = Number(u.slots)
        // the check and the take in one statement (a row lock in PostgreSQL): the last slot goes to one deploy
        const n = await tx.run("UPDATE capacity_reservations SET used = used + ? WHERE id = ? AND state = 'active' AND ends_at > ? AND used + ? <= slots", [slots, id, now, slots])
        if (n !== 1) {
          const r = await tx.get('SELECT state, ends_at FROM capacity_reservations WHERE id = ?', [id])
          throw new NotTaken(r?.state === 'active' && Number(r.ends_at) > now ? 'full' : 'not-active')
        }
        await tx.run('UPDATE capacity_uses SET taken = 1 WHERE hold_key = ?', [holdKey])
        return 'taken'
      })
    } catch (err) {
      if (err instanceof NotTaken) return err.outcome
      throw err
    }
  }

  async attach(holdKey: string, deploymentId: string): Promise<void> {
    await this.#db.run('UPDATE capacity_uses SET deployment_id = ? WHERE hold_key = ?', [deploymentId, holdKey])
  }

  /** Gives a taken use's slots back, once. */
  async release(holdKey: string, at: number): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const r = await tx.get('UPDATE capacity_uses SET released_at = ? WHERE hold_key = ? AND taken = 1 AND released_at IS NULL RETURNING reservation_id, slots', [at, holdKey])
      if (!r) return false
      await tx.run('UPDATE capacity_reservations SET used = used - ? WHERE id = ?', [Number(r.slots), String(r.reservation_id)])
      return true
    })
  }
}

class NotTaken extends Error {
  readonly outcome: 'full' | 'not-active'
  constructor(outcome: 'full' | 'not-active') {
    super(outcome)
    this.outcome = outcome
  }
}
