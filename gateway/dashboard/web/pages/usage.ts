// Usage as a plot over time, per workload and per day. From the billing routes when the gateway has them
// (GET /v1/usage?from&to: amounts already by day and workload); otherwise summed here from each workload's
// metered usage records (GET /v1/workloads/:id/usage: each record's interval and claimed amount).
import { call, optional, units } from '../../../../appliance/web/kit/api.ts'
import { h, table } from '../../../../appliance/web/kit/dom.ts'
import { stackedBars, type StackedPoint } from '../../../../appliance/web/kit/plot.ts'

interface Day { day: string; workload: string; amount: string }
interface Record_ { record: { body: { from: number; amount: string } } }

const DAY_MS = 86_400_000

export async function usagePage(main: HTMLElement): Promise<void> {
  const to = new Date()
  const from = new Date(to.getTime() - 29 * DAY_MS)
  const iso = (d: Date) => d.toISOString().slice(0, 10)
  main.append(h('h1', {}, 'Usage'), h('p', { class: 'muted' }, `Per workload and per day, ${iso(from)} to ${iso(to)} (UTC), in µNLC.`))
  let days: Day[]
  const billed = await optional<{ days: Day[] }>('GET', `/v1/usage?from=${iso(from)}&to=${iso(to)}`)
  if (billed) days = billed.days
  else {
    const { workloads } = await call<{ workloads: Array<{ id: string; name: string }> }>('GET', '/v1/workloads')
    const sums = new Map<string, bigint>()
    for (const w of workloads) {
      const u = await call<{ records?: Record_[] }>('GET', `/v1/workloads/${encodeURIComponent(w.id)}/usage`)
      for (const r of u.records ?? []) {
        const k = `${new Date(r.record.body.from).toISOString().slice(0, 10)}\n${w.name}`
        sums.set(k, (sums.get(k) ?? 0n) + BigInt(r.record.body.amount))
      }
    }
    days = [...sums].map(([k, v]) => ({ day: k.split('\n')[0]!, workload: k.split('\n')[1]!, amount: String(v) }))
  }
  days.sort((a, b) => a.day.localeCompare(b.day) || a.workload.localeCompare(b.workload))
  if (days.length === 0) {
    main.append(h('p', { class: 'notice', id: 'usage-empty' }, 'No usage yet: it appears here once a workload has run.'))
    return
  }
  const points: StackedPoint[] = days.map((d) => ({ x: d.day, series: d.workload, y: Number(d.amount) }))
  const total = days.reduce((a, d) => a + BigInt(d.amount), 0n)
  main.append(
    h('p', {}, 'Total: ', h('strong', { id: 'usage-total' }, `${units(total, 6)} NLC`), ` (${total} µNLC)`),
    h('figure', {}, stackedBars(points, 'Usage per day and workload', 'µNLC', Array.from({ length: 30 }, (_x, i) => iso(new Date(from.getTime() + i * DAY_MS)))), h('figcaption', { class: 'muted' }, 'Bars per day, one colour per workload.')),
    h('div', { class: 'scroll' }, table(['Day', 'Workload', 'µNLC'], days.map((d) => [d.day, d.workload, d.amount]), 'Usage per day and workload')),
  )
}
