// Capacity (spec/capacity.md): request capacity (resources per slot, slots, how long, the lane), see the quote
// the mesh's bids give, reserve it (its total is held from the wallet), and the account's reservations with
// their slots used and charge, each active one with a Cancel button. Deploys run inside a reservation from
// the workloads page. When the gateway keeps no books (no capacity routes), the page says so.
import { call, optional, units } from '../../../../appliance/web/kit/api.ts'
import { announce, field, form, h, input, table, when } from '../../../../appliance/web/kit/dom.ts'

export interface Reservation {
  id: string; state: 'active' | 'ending' | 'ended'; slots: number; slotsUsed: number; lane: string; runtime: string
  resources: { cpu: number; memoryBytes: number }; pricePerHour: string; total: string; charged: string | null; endsAt: number
}
interface Quote { id: string; pricePerHour: string; total: string; slots: number; expiresAt: number; quotedBy: { asked: number; bids: number } }

const nlc = (micro: string): string => `${units(micro, 6)} NLC`
const shape = (r: Reservation): string => `${r.slots} × ${r.resources.cpu} cpu, ${Math.round(r.resources.memoryBytes / 2 ** 20)} MiB (${r.lane}, ${r.runtime})`

export async function capacityPage(main: HTMLElement): Promise<void> {
  main.append(h('h1', {}, 'Capacity'))
  const first = await optional<{ reservations: Reservation[] }>('GET', '/v1/capacity')
  if (!first) {
    main.append(h('p', { class: 'notice', id: 'capacity-unavailable' }, 'This gateway takes no capacity reservations (it keeps no books).'))
    return
  }
  const list = h('div', { class: 'scroll' })
  const quoted = h('div', { id: 'quote', 'aria-live': 'polite' })
  const draw = async (rs?: Reservation[]) => {
    const reservations = rs ?? (await call<{ reservations: Reservation[] }>('GET', '/v1/capacity')).reservations
    list.replaceChildren(reservations.length === 0
      ? h('p', { class: 'muted', id: 'reservations-empty' }, 'No reservations yet: request capacity below.')
      : table(['Id', 'State', 'Shape', 'Slots used', 'Price', 'Total', 'Charged', 'Ends', ''], reservations.map((r) => [
        r.id, r.state, shape(r), `${r.slotsUsed}/${r.slots}`, `${nlc(r.pricePerHour)}/h`, nlc(r.total), r.charged === null ? '—' : nlc(r.charged), when(r.endsAt),
        r.state === 'active' ? cancelButton(r.id, draw) : '',
      ]), 'Your reservations'))
  }
  const lane = h('select', { name: 'lane' }, h('option', { value: 'best-effort' }, 'best-effort'), h('option', { value: 'protected' }, 'protected (replicas on distinct nodes, a standby)'))
  main.append(
    list,
    h('h2', {}, 'Request capacity'),
    h('p', { class: 'muted' }, 'Ask for capacity, not machines: the gateway asks the mesh for bids on this shape and quotes what they say.'),
    form('Request capacity', [
      field('CPU per slot (cores)', input('cpu', 'number', { required: true, value: '0.2', step: '0.05', min: '0.05' })),
      field('Memory per slot', input('memory', 'text', { required: true, value: '32Mi' }), 'For example 256Mi or 1Gi.'),
      field('Slots', input('slots', 'number', { required: true, value: '1', min: '1', max: '100', step: '1' }), 'Replicas that may run at once.'),
      field('Minutes', input('minutes', 'number', { required: true, value: '60', min: '1', step: '1' })),
      field('Lane', lane),
    ], 'Get a quote', async (v) => {
      const q = await call<Quote>('POST', '/v1/capacity/quotes', { resources: { cpu: Number(v.cpu), memory: v.memory }, slots: Number(v.slots), durationSeconds: Number(v.minutes) * 60, lane: v.lane })
      const reserve = h('button', { type: 'button' }, 'Reserve')
      reserve.addEventListener('click', () => {
        reserve.disabled = true
        call<Reservation>('POST', '/v1/capacity', { quoteId: q.id }).then(async (r) => {
          quoted.replaceChildren(h('p', {}, `Reserved: ${r.id}. Deploy inside it from the Workloads page.`))
          announce(`Reserved ${r.id}`)
          await draw()
        }).catch((err: unknown) => {
          quoted.append(h('p', { class: 'error', role: 'alert' }, `${(err as Error).name}: ${(err as Error).message}`))
          reserve.disabled = false
        })
      })
      quoted.className = 'notice'
      quoted.replaceChildren(
        h('h3', {}, 'Quote'),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Price'), h('dd', { id: 'quote-price' }, `${nlc(q.pricePerHour)} per hour`),
          h('dt', {}, 'Total'), h('dd', { id: 'quote-total' }, nlc(q.total)),
          h('dt', {}, 'From'), h('dd', {}, `${q.quotedBy.bids} bid(s) of ${q.quotedBy.asked} node(s) asked`),
          h('dt', {}, 'Keeps until'), h('dd', {}, when(q.expiresAt))),
        reserve)
      announce('Quoted')
    }),
    quoted,
  )
  await draw(first.reservations)
}

function cancelButton(id: string, redraw: () => Promise<void>): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'danger', 'aria-label': `Cancel reservation ${id}` }, 'Cancel')
  b.addEventListener('click', () => {
    b.disabled = true
    call('POST', `/v1/capacity/${encodeURIComponent(id)}/cancel`, {}).then(async () => {
      announce(`Cancelled ${id}`)
      await redraw()
    }).catch(() => {
      b.disabled = false
    })
  })
  return b
}
