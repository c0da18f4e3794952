// The worker console's door, attacked as another page or process on the machine would: a code works once and
// for 60 s only, a console session reaches only the console's routes (never stopping the node or moving money),
// a foreign Host or a cross-site request never gets the page or a session, the unix socket serves no page,
// and every page answer carries the CSP with no inline script.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ApiServer } from '../daemon/api-server.ts'
import { ConsoleGate, CODE_TTL_MS, CONSOLE_COOKIE } from '../console/console-gate.ts'

const TOKEN = 'b'.repeat(43)

t.test('a one-time code becomes a narrow console session', async (t) => {
  let now = 1_000_000
  const gate = new ConsoleGate({ now: () => now })
  const api = new ApiServer({ token: TOKEN, pages: gate })
  const hits: string[] = []
  for (const [method, path] of [['GET', '/v1/status'], ['GET', '/v1/node/info'], ['PUT', '/v1/node/share'], ['POST', '/v1/node/stop'], ['POST', '/v1/wallet/topup'], ['GET', '/v1/ledger/accounts']] as const) {
    api.add({ method, path, handler: () => (hits.push(`${method} ${path}`), { ok: true }) })
  }
  for (const r of gate.routes()) api.add(r)
  const base = await api.listen(0)
  const dir = mkdtempSync(join(tmpdir(), 'noir-console-gate-'))
  await api.listenSocket(join(dir, 'api.sock'))
  t.teardown(async () => {
    await api.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const go = (path: string, o: { method?: string; cookie?: string; headers?: Record<string, string>; body?: string } = {}) =>
    fetch(`${base}${path}`, { method: o.method ?? 'GET', redirect: 'manual', headers: { ...(o.cookie ? { cookie: `${CONSOLE_COOKIE}=${o.cookie}` } : {}), ...(o.body ? { 'content-type': 'application/json' } : {}), ...o.headers }, ...(o.body ? { body: o.body } : {}) })

  t.equal((await go('/v1/console/codes', { method: 'POST' })).status, 401, 'a code needs the API token')
  const issue = async () => (await (await go('/v1/console/codes', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { code: string; path: string }
  const { code, path } = await issue()
  t.match(code, /^[A-Za-z0-9_-]{43}$/)
  t.equal((await go('/console/')).status, 401, 'no page without a session')
  t.equal((await go(`${path}?code=${code}`, { headers: { 'sec-fetch-site': 'cross-site' } })).status, 403, 'a link from another site is refused (and spends nothing)')
  const login = await go(`${path}?code=${code}`)
  t.equal(login.status, 303)
  t.equal(login.headers.get('location'), '/console/', 'the code leaves the address bar')
  const set = login.headers.get('set-cookie') ?? ''
  t.match(set, /HttpOnly/)
  t.match(set, /SameSite=Strict/)
  const session = /noir_console=([A-Za-z0-9_-]{43})/.exec(set)![1]!
  t.equal((await go(`${path}?code=${code}`)).status, 401, 'the code works once')

  const page = await go('/console/', { cookie: session })
  t.equal(page.status, 200)
  t.match(page.headers.get('content-security-policy'), /script-src 'self'/)
  t.notMatch(page.headers.get('content-security-policy'), /unsafe-inline/)
  t.equal(page.headers.get('x-frame-options'), 'DENY')
  const html = await page.text()
  t.notOk(html.includes(TOKEN), 'the page never carries the API token')
  t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script in the page')
  t.equal((await go('/console/assets/console/console.js', { cookie: session })).headers.get('content-type'), 'text/javascript; charset=utf-8', 'the modules are served as JavaScript')

  t.equal((await go('/v1/status', { cookie: session })).status, 200, 'the console reads status')
  t.equal((await go('/v1/node/share', { method: 'PUT', cookie: session, body: '{}', headers: { origin: base, 'sec-fetch-site': 'same-origin' } })).status, 200, 'and changes the share from its own page')
  for (const [method, p] of [['POST', '/v1/node/stop'], ['POST', '/v1/wallet/topup'], ['GET', '/v1/ledger/accounts'], ['POST', '/v1/console/codes']] as const) {
    t.equal((await go(p, { method, cookie: session })).status, 401, `a console session may not ${method} ${p}`)
  }
  t.equal((await go('/v1/node/share', { method: 'PUT', cookie: session, body: '{}', headers: { origin: 'http://evil.test' } })).status, 403, 'a page of another origin may not change the share with the cookie')
  const rebound = await new Promise<number>((resolve, reject) => {
    const req = request(`${base}/v1/status`, { headers: { host: 'evil.test', cookie: `${CONSOLE_COOKIE}=${session}` } }, (res) => (res.resume(), resolve(res.statusCode ?? 0)))
    req.on('error', reject)
    req.end()
  })
  t.equal(rebound, 421, 'a DNS-rebound name is refused (ForeignHostError)')
  t.equal((await go('/v1/status', { cookie: 'c'.repeat(43) })).status, 401, 'a made-up session is nothing')
  t.same(hits.filter((h) => !/status|share/.test(h)), [], 'none of the refused routes ran')

  const viaSocket = await new Promise<number>((resolve, reject) => {
    const req = request({ socketPath: join(dir, 'api.sock'), path: '/console/', method: 'GET', headers: { cookie: `${CONSOLE_COOKIE}=${session}` } }, (res) => (res.resume(), resolve(res.statusCode ?? 0)))
    req.on('error', reject)
    req.end()
  })
  t.equal(viaSocket, 401, 'the unix socket serves no page, even with a live session (only the bearer API)')

  const late = await issue()
  now += CODE_TTL_MS + 1
  t.equal((await go(`${path}?code=${late.code}`)).status, 401, 'a code older than 60 s is refused')

  const logout = await go('/console/logout', { method: 'POST', cookie: session, headers: { origin: base } })
  t.equal(logout.status, 204)
  t.equal((await go('/v1/status', { cookie: session })).status, 401, 'after logout the session is gone')

})
