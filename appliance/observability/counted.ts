// Counters read from a source at scrape time: a hot path keeps a plain number (no metrics call per event) and
// the Prometheus counter catches up with it when scraped. The source must only grow.
import { Counter, type Registry } from 'prom-client'

export function countedFrom(registry: Registry, name: string, help: string, read: () => number): Counter {
  let seen = 0
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = read()
      if (now > seen) this.inc(now - seen)
      seen = Math.max(seen, now)
    },
  })
}

/** The same per label value: `read` gives the current total of each (labels seen once stay). */
export function countedByLabel<L extends string>(registry: Registry, name: string, help: string, label: L, read: () => ReadonlyMap<string, number>): Counter<L> {
  const seen = new Map<string, number>()
  return new Counter<L>({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      for (const [value, now] of read()) {
        const before = seen.get(value) ?? 0
        if (now > before) this.inc({ [label]: value } as Record<L, string>, now - before)
        seen.set(value, Math.max(before, now))
      }
    },
  })
}
