// Capacity requests (spec/capacity.md): a customer asks for capacity (resources per slot, slots, lane,
// duration), never for machines. The gateway's node asks the mesh for signed bids on that shape (the dry run
// every node answers), and the quote is what those bids say: the price of the slots the placement would pick
// (and the protected lane's standby) times the duration. Reserving the quote holds its total from the
// account's wallet; deploys naming the reservation then run inside it (their lane, runtime and resources
// within it, their price capped at its dearest slot, no hold of their own); when its time is over, or it is
// cancelled, its deployments are stopped and the account is charged for the minutes it lasted. Every step is
// an idempotent row in the gateway's database, so a crash or a second gateway repeats nothing.
import { createHash, randomBytes } from 'node:crypto'
import type { Workload } from '../../actors/workload/workload.ts'
import { workloadSpec } from '../../actors/workload/workload.ts'
import type { Json } from '../../appliance/daemon/api-client.ts'
import { callNode } from '../workloads/node-call.ts'
import { failpoint } from '../../core/failpoints.ts'
import { MAX_AMOUNT, type BillingStore } from '../billing/billing-store.ts'
import { concurrentReplicas } from '../billing/hold-size.ts'
import { CapacityUnavailableError, GatewayError, InsufficientFundsError, MeshUnavailableError, NodeRefusedError, NotFoundError, QuoteExpiredError, ReservationEndedError, ReservationExceededError } from '../errors.ts'
import type { NodeLink } from '../workloads/tenant-workloads.ts'
import { capacityRequest, fitToReservation, quoteWorkload, type CapacityRequestBody } from './capacity-request.ts'
import type { CapacityStore, QuoteDetail, QuoteRow, ReservationRow } from './capacity-store.ts'

/** How long a quote can be reserved. */
export const QUOTE_TTL_MS = 5 * 60_000
const HOUR_S = 3600n
const FINAL_PHASES = new Set(['stopped', 'completed', 'failed'])

interface DryRunAnswer {
  round: { asked: string[]; bids: unknown[]; offers: { nodeDid: string; pricePerHour: string }[] }
  placement: { ok: true; nodes: string[]; standby: string | null } | { ok: false; infeasible: { reason: string } & Record<string, unknown> }
}

export interface QuoteView {
  id: string
  resources: { cpu: number; memoryBytes: number; gpu: number; vramBytes: number; diskBytes: number }
  slots: number
  lane: string
  runtime: string
  durationSeconds: number
  constraints: Record<string, unknown>
  /** µNLC per hour for all the slots (and the standby), decimal digits. */
  pricePerHour: string
  /** µNLC for the whole duration. */
  total: string
  /** The price cap of each deploy inside (µNLC per replica-hour). */
  slotPriceCap: string
  quotedBy: QuoteDetail
  expiresAt: number
}

export interface ReservationView extends Omit<QuoteView, 'id' | 'expiresAt' | 'quotedBy'> {
  id: string
  quoteId: string
  state: 'active' | 'ending' | 'ended'
  startsAt: number
  endsAt: number
  endedAt: number | null
  /** µNLC charged at the end (null until then). */
  charged: string | null
  slotsUsed: number
  deployments: { deploymentId: string; slots: number; running: boolean }[]
}

/** µNLC for `seconds` at `perHour`, rounded up. */
export const priceFor = (perHour: bigint, seconds: number): bigint => (perHour * BigInt(seconds) + HOUR_S - 1n) / HOUR_S

/** The seconds a reservation is charged for: whole minutes begun, at least one, at most its duration. */
export function chargedSeconds(startsAt: number, endedAt: number, durationSeconds: number): number {
  const minutes = Math.max(1, Math.ceil(Math.max(0, endedAt - startsAt) / 60_000))
  return Math.min(durationSeconds, minutes * 60)
}

export class CapacityReservations {
  readonly #store: CapacityStore
  readonly #books: BillingStore
  readonly #node: NodeLink | undefined
  readonly #now: () => number
  readonly #sweepMs: number
  #timer: NodeJS.Timeout | undefined
  #sweeping: Promise<void> | undefined

  constructor(o: { store: CapacityStore; books: BillingStore; node?: NodeLink; now?: () => number; sweepMs?: number }) {
    this.#store = o.store
    this.#books = o.books
    this.#node = o.node
    this.#now = o.now ?? Date.now
    this.#sweepMs = o.sweepMs ?? 30_000
  }

  // ---- quotes and reservations -----------------------------------------------------------------------------

  /** Asks the mesh what the capacity costs now; the quote, kept QUOTE_TTL_MS. */
  async quote(accountId: string, body: CapacityRequestBody): Promise<QuoteView> {
    const request = capacityRequest(body)
    const w = quoteWorkload(request)
    const dry = await this.#call(() => this.#link().post<DryRunAnswer>('/v1/bids/dry-run', { workload: workloadSpec(w) as Json }))
    if (!dry.placement.ok) {
      throw new CapacityUnavailableError(`the mesh has no room for this capacity now: ${dry.placement.infeasible.reason}`, { infeasible: dry.placement.infeasible, asked: dry.round.asked.length, bids: dry.round.bids.length })
    }
    const price = new Map(dry.round.offers.map((o) => [o.nodeDid, BigInt(o.pricePerHour)]))
    const slots = dry.placement.nodes.map((node) => ({ node, pricePerHour: price.get(node) ?? 0n }))
    const standby = dry.placement.standby === null ? null : { node: dry.placement.standby, pricePerHour: price.get(dry.placement.standby) ?? 0n }
    const perHour = slots.reduce((a, s) => a + s.pricePerHour, 0n) + (standby?.pricePerHour ?? 0n)
    const slotCap = slots.reduce((a, s) => (s.pricePerHour > a ? s.pricePerHour : a), 0n)
    const total = priceFor(perHour, request.durationSeconds)
    // a price no book can hold exactly (a bidder's absurd quote): no quote, rather than a total that rounds
    if (total > MAX_AMOUNT) throw new CapacityUnavailableError(`the bids price this capacity at ${total} µNLC, beyond what an account can hold (${MAX_AMOUNT}): ask for less or for a shorter time`, { total: String(total) })
    const now = this.#now()
    const q: QuoteRow = {
      id: `q-${randomBytes(12).toString('hex')}`, accountId, request, pricePerHour: perHour, total, slotCap,
      detail: {
        slots: slots.map((s) => ({ node: s.node, pricePerHour: String(s.pricePerHour) })),
        standby: standby ? { node: standby.node, pricePerHour: String(standby.pricePerHour) } : null,
        asked: dry.round.asked.length, bids: dry.round.bids.length,
      },
      createdAt: now, expiresAt: now + QUOTE_TTL_MS,
    }
    await this.#store.addQuote(q)
    return quoteView(q)
  }

  /**
   * Turns the account's quote into a reservation (once per quote: a retry answers the same one): its total is
   * held from the wallet (InsufficientFundsError otherwise) and its time starts.
   */
  async reserve(accountId: string, quoteId: string): Promise<ReservationView> {
    const q = await this.#store.quote(accountId, quoteId)
    if (!q) throw new NotFoundError(`no quote ${quoteId}`)
    const id = `cap-${createHash('sha256').update(q.id).digest('hex').slice(0, 24)}`
    const known = await this.#store.reservation(id)
    if (!known && q.expiresAt <= this.#now()) throw new QuoteExpiredError(`quote ${quoteId} expired at ${new Date(q.expiresAt).toISOString()}: ask for a new one`)
    const r = known ?? (await this.#store.addReservation(q, id, this.#now()))
    if (r.state === 'funding') await this.#fund(r)
    return this.view(accountId, id)
  }

  async #fund(r: ReservationRow): Promise<void> {
    const held = await this.#books.hold(holdKeyOf(r.id), r.accountId, `capacity ${r.id}`, r.total, this.#now())
    if (held === 'insufficient') {
      await this.#store.dropFunding(r.id)
      const b = await this.#books.balance(r.accountId)
      throw new InsufficientFundsError(`this reservation holds ${r.total} µNLC; the account has ${b.available} µNLC available: top up first (GET /v1/wallet)`, { needed: String(r.total), available: String(b.available) })
    }
    failpoint('gateway.capacity.held') // a crash here: the retry (or the sweep) finds the hold made and activates
    const now = this.#now()
    await this.#store.activate(r.id, now, now + r.request.durationSeconds * 1000)
  }

  async list(accountId: string): Promise<{ reservations: ReservationView[] }> {
    const rows = await this.#store.reservationsOf(accountId)
    return { reservations: await Promise.all(rows.map((r) => this.#view(r))) }
  }

  /** The account's reservation (slots of deployments that ended given back first); another account's answers 404 like a missing one. */
  async view(accountId: string, id: string): Promise<ReservationView> {
    const r = await this.#own(accountId, id)
    if (r.state !== 'active') return this.#view(r)
    // the node not answering now: the view as the last sweep left it
    await this.#refreshUses(r.id).catch((err: unknown) => {
      if (!(err instanceof GatewayError)) throw err
    })
    return this.#view((await this.#store.reservation(r.id))!)
  }

  /** Ends the reservation now: its deployments are stopped, the minutes it lasted charged, the rest released. */
  async cancel(accountId: string, id: string): Promise<ReservationView> {
    const r = await this.#own(accountId, id)
    if (r.state === 'active') await this.#store.beginEnd(r.id, Math.min(this.#now(), r.endsAt!))
    await this.#finish(r.id)
    return this.view(accountId, id)
  }

  async #own(accountId: string, id: string): Promise<ReservationRow> {
    const r = /^cap-[0-9a-f]{24}$/.test(id) ? await this.#store.reservation(id) : undefined
    if (!r || r.accountId !== accountId || r.state === 'funding') throw new NotFoundError(`no reservation ${id}`)
    return r
  }

  async #view(r: ReservationRow): Promise<ReservationView> {
    const uses = await this.#store.usesOf(r.id)
    const { request: q } = r
    return {
      id: r.id, quoteId: r.quoteId, resources: q.resources, slots: q.slots, lane: q.lane, runtime: q.runtime, durationSeconds: q.durationSeconds,
      constraints: q.constraints as Record<string, unknown>, pricePerHour: String(r.pricePerHour), total: String(r.total), slotPriceCap: String(r.slotCap),
      state: r.state === 'funding' ? 'active' : r.state, startsAt: r.startsAt ?? r.createdAt, endsAt: r.endsAt ?? r.createdAt, endedAt: r.endedAt,
      charged: r.charged === null ? null : String(r.charged), slotsUsed: r.used,
      deployments: uses.filter((u) => u.deploymentId !== null).map((u) => ({ deploymentId: u.deploymentId!, slots: u.slots, running: u.releasedAt === null })),
    }
  }

  // ---- deploys inside a reservation (TenantWorkloads calls these around a create) ---------------------------

  /** The workload as it runs inside the account's reservation (typed errors when it does not fit or it ended). */
  async fit(accountId: string, reservationId: string, w: Workload): Promise<Workload> {
    const r = await this.#own(accountId, reservationId)
    if (r.state !== 'active' || r.endsAt! <= this.#now()) throw new ReservationEndedError(`reservation ${r.id} has ended`)
    return fitToReservation(w, r.request, r.slotCap)
  }

  /** Names the reservation of a create before the create is recorded (so a restart finishing it knows). */
  async bind(holdKey: string, reservationId: string, w: Workload): Promise<void> {
    const bound = await this.#store.bindUse(holdKey, reservationId, concurrentReplicas(w), this.#now())
    if (bound !== reservationId) throw new ReservationExceededError(`this idempotency key was used for a deploy into reservation ${bound}`, { field: 'idempotencyKey' })
  }

  /** The reservation a create runs in, if it was bound to one. */
  async reservationOf(holdKey: string): Promise<string | undefined> {
    return (await this.#store.use(holdKey))?.reservationId
  }

  /** Takes the create's slots (once per create); ReservationExceededError when they are not free, ReservationEndedError when its time is over. */
  async admit(holdKey: string): Promise<void> {
    const u = await this.#store.use(holdKey)
    if (!u) throw new RangeError(`create ${holdKey} is bound to no reservation`)
    let outcome = await this.#store.take(holdKey, this.#now())
    if (outcome === 'full') {
      // deployments that ended since the last sweep give their slots back first
      await this.#refreshUses(u.reservationId)
      outcome = await this.#store.take(holdKey, this.#now())
    }
    if (outcome === 'not-active') throw new ReservationEndedError(`reservation ${u.reservationId} has ended`)
    if (outcome === 'full') {
      const r = (await this.#store.reservation(u.reservationId))!
      throw new ReservationExceededError(`this deploy needs ${u.slots} slots; reservation ${r.id} has ${r.slots - r.used} of ${r.slots} free`, { needed: u.slots, free: r.slots - r.used })
    }
  }

  async attached(holdKey: string, deploymentId: string): Promise<void> {
    await this.#store.attach(holdKey, deploymentId)
  }

  /** The node refused the create: its slots are free again. */
  async refused(holdKey: string): Promise<void> {
    await this.#store.release(holdKey, this.#now())
  }

  // ---- the sweep: time over, slots back, ends finished -------------------------------------------------------

  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => void this.sweep().catch(() => undefined), this.#sweepMs)
    this.#timer.unref()
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#sweeping?.catch(() => undefined)
  }

  /** One pass over the unfinished reservations (one at a time: a pass already running is waited for). */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweepOnce().finally(() => (this.#sweeping = undefined))
    return this.#sweeping
  }

  async #sweepOnce(): Promise<void> {
    for (const r of await this.#store.unfinished()) {
      try {
        if (r.state === 'funding') {
          // a reserve interrupted after its hold: activated; one whose quote lapsed unfunded is dropped
          if ((await this.#books.holdsOf(r.accountId)).some((h) => h.holdKey === holdKeyOf(r.id) && h.state === 'open')) await this.#fund(r)
          else if ((await this.#store.quote(r.accountId, r.quoteId))!.expiresAt <= this.#now()) await this.#store.dropFunding(r.id)
          continue
        }
        if (r.state === 'active' && r.endsAt! <= this.#now()) await this.#store.beginEnd(r.id, r.endsAt!)
        if (r.state === 'active' && r.endsAt! > this.#now()) {
          await this.#refreshUses(r.id)
          continue
        }
        await this.#finish(r.id)
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err
        // the node does not answer now: the next pass goes on from here (every step is idempotent)
      }
    }
  }

  /** Gives back the slots of the reservation's deployments that ended on their own (stopped, completed, failed). */
  async #refreshUses(reservationId: string): Promise<void> {
    if (!this.#node) return
    for (const u of await this.#store.usesOf(reservationId)) {
      if (u.releasedAt !== null || u.deploymentId === null) continue
      const phase = await this.#phase(u.deploymentId)
      if (phase === null || FINAL_PHASES.has(phase)) await this.#store.release(u.holdKey, this.#now())
    }
  }

  /** An ending reservation: its deployments stopped, the minutes it lasted charged, its hold released, ended. */
  async #finish(id: string): Promise<void> {
    const r = (await this.#store.reservation(id))!
    if (r.state !== 'ending') return
    for (const u of await this.#store.usesOf(id)) {
      if (u.releasedAt !== null) continue
      if (u.deploymentId !== null) {
        const phase = await this.#phase(u.deploymentId)
        if (phase !== null && !FINAL_PHASES.has(phase)) await this.#call(() => this.#link().post(`/v1/deployments/${encodeURIComponent(u.deploymentId!)}/stop`))
      }
      await this.#store.release(u.holdKey, this.#now())
    }
    failpoint('gateway.capacity.stopped') // a crash here: the next pass charges once and releases once
    const amount = priceFor(r.pricePerHour, chargedSeconds(r.startsAt!, r.endedAt!, r.request.durationSeconds))
    const charge = amount > r.total ? r.total : amount
    const at = this.#now()
    await this.#books.charge(holdKeyOf(id), r.accountId, id, `capacity ${id}`, charge, new Date(r.startsAt!).toISOString().slice(0, 10), at, holdKeyOf(id))
    await this.#books.release(holdKeyOf(id), at)
    await this.#store.finishEnd(id, charge)
  }

  /** The deployment's phase on the node; null when the node does not know it. */
  async #phase(deploymentId: string): Promise<string | null> {
    try {
      return (await this.#call(() => this.#link().get<{ phase: string }>(`/v1/deployments/${encodeURIComponent(deploymentId)}`))).phase
    } catch (err) {
      if (err instanceof NodeRefusedError && err.status === 404) return null
      throw err
    }
  }

  #link(): NodeLink {
    if (!this.#node) throw new MeshUnavailableError('this gateway was started without a node to ask the mesh (noir gateway start --node HOME)')
    return this.#node
  }

  #call<T>(fn: () => Promise<T>): Promise<T> {
    return callNode(fn)
  }
}

/** The billing hold (and charge) of a reservation. */
export const holdKeyOf = (reservationId: string): string => `cap:${reservationId}`

function quoteView(q: QuoteRow): QuoteView {
  const { request: r } = q
  return {
    id: q.id, resources: r.resources, slots: r.slots, lane: r.lane, runtime: r.runtime, durationSeconds: r.durationSeconds,
    constraints: r.constraints as Record<string, unknown>, pricePerHour: String(q.pricePerHour), total: String(q.total), slotPriceCap: String(q.slotCap),
    quotedBy: q.detail, expiresAt: q.expiresAt,
  }
}
