// Plots drawn as inline SVG by the page's own code (no library, no inline style: presentation attributes
// only, which the Content-Security-Policy allows): stacked bars per day and series, or a line over time.
// Each plot has a title and a description for screen readers, and its numbers are also in a table beside it.
const NS = 'http://www.w3.org/2000/svg'
const PALETTE = ['#1f5fbf', '#b3501a', '#2e7d32', '#7b3fa0', '#a0312f', '#00707a']

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(NS, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  return el
}

function frame(title: string, description: string, width: number, height: number): SVGSVGElement {
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'plot', 'aria-label': title })
  const t = svg('title', {})
  t.textContent = title
  const d = svg('desc', {})
  d.textContent = description
  root.append(t, d)
  return root
}

function text(x: number, y: number, s: string, anchor = 'start'): SVGTextElement {
  const el = svg('text', { x, y, 'font-size': 11, fill: '#222', 'text-anchor': anchor })
  el.textContent = s
  return el
}

export interface StackedPoint { x: string; series: string; y: number }

/** Bars per `x` (e.g. a day), stacked by `series` (e.g. a workload), with a legend; `axis`: every x to show, in order (default: those with points). */
export function stackedBars(points: StackedPoint[], title: string, unit: string, axis?: string[]): SVGSVGElement {
  const W = 640
  const H = 240
  const pad = { l: 56, r: 8, t: 10, b: 48 }
  const xs = axis ?? [...new Set(points.map((p) => p.x))].sort()
  const series = [...new Set(points.map((p) => p.series))].sort()
  const total = (x: string) => points.filter((p) => p.x === x).reduce((a, p) => a + p.y, 0)
  const max = Math.max(1, ...xs.map(total))
  const root = frame(title, `${xs.length} day(s), ${series.length} series; the largest day is ${max} ${unit}`, W, H)
  const plotW = W - pad.l - pad.r
  const plotH = H - pad.t - pad.b
  root.append(svg('line', { x1: pad.l, y1: pad.t + plotH, x2: W - pad.r, y2: pad.t + plotH, stroke: '#444' }))
  root.append(text(pad.l - 4, pad.t + 10, String(max), 'end'), text(pad.l - 4, pad.t + plotH, '0', 'end'))
  const bw = xs.length > 0 ? Math.max(2, plotW / xs.length - 4) : 0
  xs.forEach((x, i) => {
    let y0 = pad.t + plotH
    const bx = pad.l + i * (plotW / xs.length) + 2
    for (const [si, s] of series.entries()) {
      const v = points.filter((p) => p.x === x && p.series === s).reduce((a, p) => a + p.y, 0)
      if (v <= 0) continue
      const bh = (v / max) * plotH
      y0 -= bh
      const r = svg('rect', { x: bx, y: y0, width: bw, height: bh, fill: PALETTE[si % PALETTE.length]!, 'data-series': s, 'data-x': x })
      const tip = svg('title', {})
      tip.textContent = `${x} ${s}: ${v} ${unit}`
      r.append(tip)
      root.append(r)
    }
    if (xs.length <= 14 || i % Math.ceil(xs.length / 14) === 0) root.append(text(bx + bw / 2, pad.t + plotH + 14, x.slice(5), 'middle'))
  })
  series.forEach((s, si) => {
    const lx = pad.l + (si % 3) * 190
    const ly = H - 20 + Math.floor(si / 3) * 12
    root.append(svg('rect', { x: lx, y: ly - 8, width: 10, height: 10, fill: PALETTE[si % PALETTE.length]! }), text(lx + 14, ly, s.length > 26 ? `${s.slice(0, 25)}…` : s))
  })
  return root
}

export interface TimePoint { t: number; y: number }

/** A step line of a running total over time (e.g. NLR earned). */
export function stepLine(points: TimePoint[], title: string, unit: string): SVGSVGElement {
  const W = 640
  const H = 200
  const pad = { l: 56, r: 8, t: 10, b: 24 }
  const sorted = [...points].sort((a, b) => a.t - b.t)
  const t0 = sorted[0]?.t ?? 0
  const t1 = Math.max(t0 + 1, sorted.at(-1)?.t ?? 1)
  const max = Math.max(1, ...sorted.map((p) => p.y))
  const root = frame(title, `${sorted.length} point(s), reaching ${sorted.at(-1)?.y ?? 0} ${unit}`, W, H)
  const X = (t: number) => pad.l + ((t - t0) / (t1 - t0)) * (W - pad.l - pad.r)
  const Y = (y: number) => pad.t + (1 - y / max) * (H - pad.t - pad.b)
  root.append(svg('line', { x1: pad.l, y1: Y(0), x2: W - pad.r, y2: Y(0), stroke: '#444' }))
  root.append(text(pad.l - 4, pad.t + 10, String(max), 'end'), text(pad.l - 4, Y(0), '0', 'end'))
  let d = `M ${X(t0)} ${Y(0)}`
  for (const p of sorted) d += ` H ${X(p.t).toFixed(1)} V ${Y(p.y).toFixed(1)}`
  root.append(svg('path', { d, fill: 'none', stroke: PALETTE[0]!, 'stroke-width': 2, class: 'series' }))
  if (sorted.length > 0) root.append(text(pad.l, H - 6, new Date(t0).toISOString().slice(0, 16).replace('T', ' ')), text(W - pad.r, H - 6, new Date(t1).toISOString().slice(0, 16).replace('T', ' '), 'end'))
  return root
}
