// Per-route traffic at one ingress: how many routed connections are open and when one last opened or closed.
// The idle clock that scale to zero needs (spec/ingress.md "Scale declaration"): a route is idle only while
// no connection is open, counted from the last one's end.

export interface RouteTraffic {
  route: string
  /** Routed connections open now. */
  active: number
  /** Epoch ms of the last routed connection's open or close. */
  lastTrafficAt: number
}

export class TrafficClock {
  readonly #routes = new Map<string, { active: number; lastTrafficAt: number }>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  opened(route: string): void {
    const r = this.#routes.get(route) ?? { active: 0, lastTrafficAt: 0 }
    r.active++
    r.lastTrafficAt = this.#now()
    this.#routes.set(route, r)
  }

  closed(route: string): void {
    const r = this.#routes.get(route)
    if (!r || r.active === 0) return
    r.active--
    r.lastTrafficAt = this.#now()
  }

  /** Ms since the route last carried traffic: 0 while a connection is open; undefined if it never carried any. */
  idleMs(route: string): number | undefined {
    const r = this.#routes.get(route)
    if (!r) return undefined
    return r.active > 0 ? 0 : Math.max(0, this.#now() - r.lastTrafficAt)
  }

  snapshot(): RouteTraffic[] {
    return [...this.#routes].map(([route, r]) => ({ route, active: r.active, lastTrafficAt: r.lastTrafficAt }))
  }
}
