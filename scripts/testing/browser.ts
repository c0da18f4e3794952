// A real browser for tests: Debian's headless chromium driven by playwright-core, with a watch that fails the
// test on any console error, uncaught page error, failed request, or answer >= 400 the test did not say it
// expects; screenshots go to a temporary folder whose path the test prints.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'
import { chromium as playwright, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { CHROMIUM } from './requirements.ts'

export interface ExpectedAnswer {
  method?: string
  path: RegExp
  status: number
}

export interface BrowserRig {
  browser: Browser
  context: BrowserContext
  page: Page
  /** Everything that went wrong so far (the test asserts it is empty). */
  problems: string[]
  /** Answers >= 400 the page is meant to meet (e.g. 401 on GET /v1/account before logging in). */
  expect(answer: ExpectedAnswer): void
  /** Console errors matching `pattern` are expected (e.g. the CSP refusing an injected script). */
  expectConsole(pattern: RegExp): void
  /** Failed requests matching `pattern` ("METHOD URL (error)") are expected (e.g. a frame the page refused). */
  expectFailedRequest(pattern: RegExp): void
  /** Saves a full-page screenshot (of `of`, default the first page) as NN-name.png in the folder; returns its path. */
  shot(name: string, of?: Page): Promise<string>
  shots: string
}

interface TestLike {
  teardown(fn: () => Promise<void> | void): void
  comment(...args: unknown[]): void
}

export async function openBrowser(t: TestLike, o: { width?: number; height?: number } = {}): Promise<BrowserRig> {
  const args = ['--disable-dev-shm-usage', '--disable-gpu', ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])]
  const browser = await playwright.launch({ executablePath: CHROMIUM, headless: true, args })
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: o.width ?? 1100, height: o.height ?? 900 } })
  // waits are for conditions, not budgets: a loaded 2-core machine may take long to start a container
  context.setDefaultTimeout(60_000)
  const page = await context.newPage()
  const shots = mkdtempSync(join(tmpdir(), 'noir-browser-shots-'))
  t.comment(`screenshots in ${shots}`)
  const problems: string[] = []
  const expected: ExpectedAnswer[] = []
  const consoleOk: RegExp[] = []
  const failuresOk: RegExp[] = []
  const failedLoads: string[] = []
  let n = 0
  context.on('console', (m) => {
    if (m.type() !== 'error') return
    const text = m.text()
    // Chromium logs every answer >= 400 as "Failed to load resource": judged with the answer itself below
    if (/^Failed to load resource: the server responded with a status of \d+/.test(text)) return void failedLoads.push(text)
    if (consoleOk.some((p) => p.test(text))) return
    problems.push(`console error: ${text}`)
  })
  context.on('weberror', (e) => problems.push(`page error: ${e.error().message}`))
  context.on('requestfailed', (r) => {
    const why = r.failure()?.errorText ?? ''
    // a stream the page closed itself (an EventSource on leaving a page) is aborted, not failed
    if (why === 'net::ERR_ABORTED' && r.resourceType() === 'eventsource') return
    const line = `${r.method()} ${r.url()} (${why})`
    if (!failuresOk.some((p) => p.test(line))) problems.push(`request failed: ${line}`)
  })
  context.on('response', (r) => {
    if (r.status() < 400) return
    const path = new URL(r.url()).pathname
    const method = r.request().method()
    if (expected.some((e) => e.status === r.status() && e.path.test(path) && (e.method === undefined || e.method === method))) return
    problems.push(`unexpected answer: ${method} ${path} -> ${r.status()}`)
  })
  t.teardown(async () => {
    await browser.close()
  })
  return {
    browser, context, page, problems, shots,
    expect: (a) => void expected.push(a),
    expectConsole: (p) => void consoleOk.push(p),
    expectFailedRequest: (p) => void failuresOk.push(p),
    async shot(name, of) {
      const path = join(shots, `${String(++n).padStart(2, '0')}-${name}.png`)
      await (of ?? page).screenshot({ path, fullPage: true })
      return path
    },
  }
}

/** A port free on 127.0.0.1 now (a gateway's public URL must be known before it listens). */
export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

// (page scripts are given as text: the tests are type-checked without the DOM's types)
/** Inputs without a label (neither <label for>, a wrapping label, nor aria-label). */
export const unlabelled = (page: Page): Promise<string[]> => page.evaluate<string[]>(`[...document.querySelectorAll('input, textarea, select')]
  .filter((i) => i.labels?.length === 0 && !i.getAttribute('aria-label')).map((i) => i.outerHTML)`)

/** True when the page needs no horizontal scrolling at `px` wide. */
export const fitsWidth = (page: Page, px: number): Promise<boolean> => page.evaluate<boolean>(`document.documentElement.scrollWidth <= ${px}`)

/**
 * WCAG contrast ratio of the text of the first element matching `selector` against the first opaque background
 * behind it (computed styles; solid colours only, as the pages use).
 */
export const contrastOf = (page: Page, selector: string): Promise<number> => page.evaluate<number>(`(() => {
  const el = document.querySelector(${JSON.stringify(selector)})
  if (!el) return 0
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number)
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4 }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b) }
  let bgEl = el
  let bg = getComputedStyle(bgEl).backgroundColor
  while (bgEl && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) { bgEl = bgEl.parentElement; bg = bgEl ? getComputedStyle(bgEl).backgroundColor : 'rgb(255, 255, 255)' }
  const a = lum(rgb(getComputedStyle(el).color)), b = lum(rgb(bg))
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)
})()`)
