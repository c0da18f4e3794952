// The worker console's door on the node's loopback API (spec/dashboard.md "Worker console"): `noir console`
// asks for a one-time code with the API's bearer token (POST /v1/console/codes) and opens
// http://127.0.0.1:PORT/console/login?code=...; that code, good once and for 60 s, becomes a console session
// in an HttpOnly, SameSite=Strict cookie, so the bearer token never reaches the page. A console session may
// call only the read routes the console shows and PUT /v1/node/share; the API server's own checks (its
// loopback Host, no foreign Origin, no cross-site Sec-Fetch-Site) hold for every console request too.
import { createHash, randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ApiRoute } from '../daemon/service.ts'
import type { PageGate } from '../daemon/api-server.ts'
import { KIT_DIR, loadBrowserAssets, PAGE_SECURITY_HEADERS, withModulePreloads, type BrowserAsset } from '../web/browser-assets.ts'

export const CONSOLE_COOKIE = 'noir_console'
export const CODE_TTL_MS = 60_000
export const SESSION_TTL_MS = 12 * 3600_000
const MAX_LIVE = 64

/** What a console session may call: the console's reads and the share change, nothing else. */
const ALLOWED: Array<[string, RegExp]> = [
  ['GET', /^\/v1\/status$/], ['GET', /^\/v1\/node\/info$/], ['GET', /^\/v1\/node\/heartbeats$/], ['GET', /^\/v1\/node\/contracts$/],
  ['GET', /^\/v1\/allocations$/], ['GET', /^\/v1\/wallet$/], ['GET', /^\/v1\/wallet\/history$/], ['GET', /^\/v1\/peers$/],
  ['GET', /^\/v1\/trust$/], ['GET', /^\/v1\/trust\/nodes\/[^/]+$/], ['PUT', /^\/v1\/node\/share$/],
]

const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), 'web')
const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

function cookieOf(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === CONSOLE_COOKIE) return v.join('=')
  }
  return undefined
}

export class ConsoleGate implements PageGate {
  /** sha256(code) -> expiry; sha256(session) -> expiry (only digests are kept). */
  readonly #codes = new Map<string, number>()
  readonly #sessions = new Map<string, number>()
  readonly #now: () => number
  #assets: Map<string, BrowserAsset> | undefined
  #shell: BrowserAsset | undefined

  constructor(o: { now?: () => number } = {}) {
    this.#now = o.now ?? Date.now
  }

  /** A new one-time code (the route below hands it to `noir console`). */
  issueCode(): { code: string; expiresAt: number } {
    this.#sweep()
    const code = randomBytes(32).toString('base64url')
    const expiresAt = this.#now() + CODE_TTL_MS
    this.#codes.set(digest(code).toString('hex'), expiresAt)
    while (this.#codes.size > MAX_LIVE) this.#codes.delete(this.#codes.keys().next().value!)
    return { code, expiresAt }
  }

  routes(): ApiRoute[] {
    return [{ method: 'POST', path: '/v1/console/codes', handler: () => ({ ...this.issueCode(), path: '/console/login' }) }]
  }

  /** Paths the gate answers itself (the page, its assets, login and logout). */
  serves(pathname: string): boolean {
    return pathname === '/console' || pathname.startsWith('/console/')
  }

  /** True when the request carries a live console session and asks for a route a console may call. */
  allows(req: IncomingMessage, method: string, pathname: string): boolean {
    if (!ALLOWED.some(([m, p]) => m === method && p.test(pathname))) return false
    return this.#session(req) !== undefined
  }

  serve(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const send = (status: number, a: BrowserAsset | undefined, extra: Record<string, string> = {}) => {
      const body = a?.body ?? Buffer.from(`<!doctype html><html lang="en"><meta charset="utf-8"><title>NoirLedger console</title><link rel="stylesheet" href="/console/assets/kit/kit.css"><main><h1>NoirLedger console</h1><p>${status === 401 ? 'This console link has expired or was used already. Run <code>noir console</code> again for a new one.' : 'Not found.'}</p></main></html>`)
      res.writeHead(status, { ...PAGE_SECURITY_HEADERS, 'cache-control': 'no-store', 'content-type': a?.contentType ?? 'text/html; charset=utf-8', 'content-length': body.length, ...extra })
      res.end(req.method === 'HEAD' ? undefined : body)
    }
    const assets = (this.#assets ??= loadBrowserAssets([{ dir: KIT_DIR, url: '/console/assets/kit/' }, { dir: WEB_DIR, url: '/console/assets/console/' }]))
    const p = url.pathname
    if (p === '/console/login' && req.method === 'GET') {
      if (!this.#takeCode(url.searchParams.get('code') ?? '')) return send(401, undefined)
      this.#sweep()
      const session = randomBytes(32).toString('base64url')
      this.#sessions.set(digest(session).toString('hex'), this.#now() + SESSION_TTL_MS)
      while (this.#sessions.size > MAX_LIVE) this.#sessions.delete(this.#sessions.keys().next().value!)
      // the code leaves the address bar at once (303 to the page); Referrer-Policy keeps it from any Referer
      res.writeHead(303, { ...PAGE_SECURITY_HEADERS, location: '/console/', 'cache-control': 'no-store', 'set-cookie': `${CONSOLE_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_TTL_MS / 1000}`, 'content-length': 0 })
      return void res.end()
    }
    if (p === '/console/logout' && req.method === 'POST') {
      const s = this.#session(req)
      if (s) this.#sessions.delete(s)
      res.writeHead(204, { 'set-cookie': `${CONSOLE_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`, 'cache-control': 'no-store' })
      return void res.end()
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(404, undefined)
    if (p === '/console' || p === '/console/') {
      if (!this.#session(req)) return send(401, undefined)
      return send(200, (this.#shell ??= withModulePreloads(assets.get('/console/assets/console/index.html')!, assets)))
    }
    const a = assets.get(p)
    return a && !p.endsWith('.html') ? send(200, a) : send(404, undefined)
  }

  #takeCode(code: string): boolean {
    if (!/^[A-Za-z0-9_-]{43}$/.test(code)) return false
    const key = digest(code).toString('hex')
    const until = this.#codes.get(key)
    this.#codes.delete(key) // once, whether or not it is still fresh
    return until !== undefined && until > this.#now()
  }

  #session(req: IncomingMessage): string | undefined {
    const given = cookieOf(req)
    if (!given || !/^[A-Za-z0-9_-]{43}$/.test(given)) return undefined
    const key = digest(given).toString('hex')
    const until = this.#sessions.get(key)
    if (until === undefined) return undefined
    if (until <= this.#now()) {
      this.#sessions.delete(key)
      return undefined
    }
    return key
  }

  #sweep(): void {
    const now = this.#now()
    for (const [k, until] of this.#codes) if (until <= now) this.#codes.delete(k)
    for (const [k, until] of this.#sessions) if (until <= now) this.#sessions.delete(k)
  }
}

