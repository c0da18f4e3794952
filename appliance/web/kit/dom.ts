// Small DOM helpers for the pages (no framework): elements built with text nodes only (never innerHTML, so a
// value from the API cannot become markup), labelled form fields, a live region for what just happened.
export type Child = Node | string | number | null | undefined | false

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue
    el.setAttribute(k, v === true ? '' : v)
  }
  append(el, ...children)
  return el
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c)
  }
}

let ids = 0
/** A label and its input, tied by id; `hint` is read out with the input (aria-describedby). */
export function field(label: string, input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, hint?: string): HTMLDivElement {
  const id = input.id || `f${++ids}`
  input.id = id
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input)
  if (hint) {
    const hid = `${id}-hint`
    input.setAttribute('aria-describedby', hid)
    wrap.append(h('p', { class: 'hint', id: hid }, hint))
  }
  return wrap
}

export function input(name: string, type = 'text', attrs: Record<string, string | boolean | undefined> = {}): HTMLInputElement {
  return h('input', { name, type, ...attrs })
}

/** A form whose submit runs `onSubmit` with its values; the button is disabled while it runs, errors are shown in the form. */
export function form(label: string, fields: Node[], submit: string, onSubmit: (values: Record<string, string>, form: HTMLFormElement) => Promise<void>): HTMLFormElement {
  const error = h('p', { class: 'error', role: 'alert' })
  const button = h('button', { type: 'submit' }, submit)
  const f = h('form', { 'aria-label': label }, ...fields, error, button)
  f.addEventListener('submit', (ev) => {
    ev.preventDefault()
    error.textContent = ''
    const values: Record<string, string> = {}
    for (const [k, v] of new FormData(f)) values[k] = typeof v === 'string' ? v : ''
    button.disabled = true
    onSubmit(values, f).catch((err: unknown) => {
      error.textContent = messageOf(err)
    }).finally(() => {
      button.disabled = false
    })
  })
  return f
}

export function messageOf(err: unknown): string {
  if (err && typeof err === 'object' && 'name' in err && 'message' in err) return `${String((err as { name: unknown }).name)}: ${String((err as { message: unknown }).message)}`
  return String(err)
}

/** Tells screen-reader users (and tests) what just happened, in the page's polite live region. */
export function announce(text: string): void {
  const live = document.getElementById('status')
  if (live) live.textContent = text
}

export function table(headers: string[], rows: Child[][], caption: string): HTMLTableElement {
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))))
}

export function when(ms: number | string | null | undefined): string {
  if (ms === null || ms === undefined) return '—'
  const d = new Date(typeof ms === 'string' && /^\d+$/.test(ms) ? Number(ms) : ms)
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
}
