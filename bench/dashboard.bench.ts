// The dashboard's first load in headless Chromium (npm run bench -- dashboard; spec/dashboard.md): bytes
// transferred, first paint, first contentful paint and "ready" (the login page drawn by the modules), median
// of LOADS cold loads (a fresh browser context each: nothing cached), beside a baseline in the same run: a bare
// fastify serving one flat page (HTML, one script, one style sheet) holding the same number of bytes, so the
// ratio is the cost of the gateway's hooks, the module graph (no bundler) and the first API call.
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { chromium as playwright, type Browser } from 'playwright-core'
import { printSection, type Figure } from './report.ts'
import { openGateway } from '../gateway/gateway.ts'
import { CHROMIUM, chromium } from '../scripts/testing/requirements.ts'
import { loadBrowserAssets, KIT_DIR, PAGE_SECURITY_HEADERS } from '../appliance/web/browser-assets.ts'

const LOADS = 10

interface Load { bytes: number; requests: number; firstPaint: number; fcp: number; ready: number }

async function coldLoad(browser: Browser, url: string): Promise<Load> {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(url)
  await page.waitForFunction('document.querySelector("main h1")?.textContent === "Log in"', undefined, { polling: 'raf' })
  const ready = await page.evaluate<number>('performance.now()')
  await page.waitForLoadState('load')
  const m = await page.evaluate<{ bytes: number; requests: number; firstPaint: number; fcp: number }>(`(() => {
    const nav = performance.getEntriesByType('navigation')[0]
    const res = performance.getEntriesByType('resource')
    const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]))
    return { bytes: nav.transferSize + res.reduce((a, r) => a + r.transferSize, 0), requests: 1 + res.length, firstPaint: paint['first-paint'] ?? 0, fcp: paint['first-contentful-paint'] ?? 0 }
  })()`)
  await context.close()
  return { ...m, ready }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function measure(browser: Browser, url: string): Promise<Load> {
  await coldLoad(browser, url) // warm-up (the server's first answers, Chromium's own start)
  const loads: Load[] = []
  for (let i = 0; i < LOADS; i++) loads.push(await coldLoad(browser, url))
  return { bytes: median(loads.map((l) => l.bytes)), requests: median(loads.map((l) => l.requests)), firstPaint: median(loads.map((l) => l.firstPaint)), fcp: median(loads.map((l) => l.fcp)), ready: median(loads.map((l) => l.ready)) }
}

const why = chromium.missing()
if (why !== undefined) {
  console.log(`\n## dashboard first load: skipped (${why})`)
} else {
  const dir = mkdtempSync(join(tmpdir(), 'noir-bench-dashboard-'))
  const gw = await openGateway({ dir, smtp: { host: '127.0.0.1', port: 9, from: 'bench@noir.test' }, publicUrl: 'http://127.0.0.1/' })
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  const gwUrl = `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}/`

  // the baseline: the same bytes as the dashboard's assets, as one flat page with one script and one sheet
  const assets = [...loadBrowserAssets([{ dir: KIT_DIR, url: '/k/' }, { dir: join(import.meta.dirname, '../gateway/dashboard/web'), url: '/a/' }]).values()]
  const size = (kind: string) => assets.filter((a) => a.contentType.startsWith(kind)).reduce((n, a) => n + a.body.length, 0)
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>baseline</title><link rel="stylesheet" href="/s.css"><script type="module" src="/s.js"></script></head><body><main><h1>Log in</h1></main></body></html>`
  const script = `// ${'x'.repeat(Math.max(0, size('text/javascript') - 3))}`
  const sheet = `/* ${'x'.repeat(Math.max(0, size('text/css') + size('text/html') - html.length - 6))} */`
  const bare = Fastify()
  bare.get('/', async (_q, r) => r.headers(PAGE_SECURITY_HEADERS).type('text/html; charset=utf-8').send(html))
  bare.get('/s.js', async (_q, r) => r.headers(PAGE_SECURITY_HEADERS).type('text/javascript; charset=utf-8').send(script))
  bare.get('/s.css', async (_q, r) => r.headers(PAGE_SECURITY_HEADERS).type('text/css; charset=utf-8').send(sheet))
  await bare.listen({ host: '127.0.0.1', port: 0 })
  const bareUrl = `http://127.0.0.1:${(bare.server.address() as AddressInfo).port}/`

  const browser = await playwright.launch({ executablePath: CHROMIUM, headless: true, args: ['--disable-dev-shm-usage', '--disable-gpu', ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])] })
  try {
    const base = await measure(browser, bareUrl)
    const ours = await measure(browser, gwUrl)
    const f = (name: string, key: keyof Load, unit: string): Figure => ({ name, value: ours[key], unit, baseline: { name: 'flat page, bare fastify', value: base[key] }, better: 'lower' })
    printSection(`dashboard first load, headless Chromium, cold, median of ${LOADS} (${ours.requests} requests vs ${base.requests})`, [
      f('bytes transferred', 'bytes', 'B'),
      f('first paint', 'firstPaint', 'ms'),
      f('first contentful paint', 'fcp', 'ms'),
      f('ready (login form drawn)', 'ready', 'ms'),
    ])
  } finally {
    await browser.close()
    await bare.close()
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
