// The dashboard's security as an attacker would try it, in headless Chromium against a gateway over HTTPS
// with a real SMTP server on loopback: a person signs up, verifies and logs in through the pages; then the
// Content-Security-Policy stops an injected inline script and inline event handler, a page of another origin
// cannot frame the dashboard, and a cross-origin form POST carrying the victim's cookie changes nothing (the
// Origin/Sec-Fetch-Site check holds even when the cookie is sent, as a non-browser attacker could). The pages
// work at 375 px width without horizontal scrolling, and every input has a label.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { createServer as createHttpServer } from 'node:http'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openGateway } from '../gateway.ts'
import { gatewayCertificate } from '../http/tls.ts'
import { smtpOnLoopback } from './mail-rig.ts'
import { chromium, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { contrastOf, fitsWidth, freePort, openBrowser, unlabelled } from '../../scripts/testing/browser.ts'

const PASSWORD = 'correct horse battery staple'

t.test('the dashboard refuses injected scripts, framing and cross-site writes', async (t) => {
  if (!requireOrSkip(t, chromium)) return
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-dashboard-sec-'))
  const tls = await gatewayCertificate({ dir, host: '127.0.0.1' })
  const port = await freePort()
  const url = `https://127.0.0.1:${port}`
  const gw = await openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: `${url}/`, https: { key: tls.key, cert: tls.cert } })
  await gw.app.listen({ host: '127.0.0.1', port })
  t.teardown(async () => {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const rig = await openBrowser(t, { width: 375, height: 800 })
  const { page } = rig
  rig.expect({ method: 'GET', path: /^\/v1\/account$/, status: 401 })
  // this gateway keeps no books: the workloads page asks for capacity reservations and is told there are none to offer
  rig.expect({ method: 'GET', path: /^\/v1\/capacity$/, status: 404 })
  const first = await page.goto(`${url}/`)
  const headers = first!.headers()
  t.match(headers['content-security-policy'], /default-src 'self'/)
  t.notMatch(headers['content-security-policy'], /unsafe-inline|unsafe-eval/, 'no inline script or style is allowed')
  t.match(headers['content-security-policy'], /frame-ancestors 'none'/)
  t.equal(headers['x-frame-options'], 'DENY')
  t.equal(headers['referrer-policy'], 'no-referrer')
  await page.getByRole('heading', { name: 'Log in' }).waitFor()
  t.equal(new URL(page.url()).pathname, '/app/login', 'no session: / leads to the login page')

  // keyboard: a new page's heading has the focus, so Tab goes to its first field; from the top, the skip link
  t.equal(await page.evaluate<string>('document.activeElement.tagName'), 'H1', 'the page\'s heading has the focus')
  await page.keyboard.press('Tab')
  t.equal(await page.evaluate<string>('document.activeElement.name'), 'email', 'the next Tab is the first field')
  const stops: string[] = []
  for (let i = 0; i < 3; i++) {
    await page.keyboard.press('Shift+Tab')
    stops.push(await page.evaluate<string>('document.activeElement.textContent'))
  }
  t.same(stops, ['Sign up', 'Log in', 'Skip to content'], 'Shift+Tab goes back through the navigation to the skip link, the first stop')
  await page.keyboard.press('Enter')
  const landed = await page.waitForFunction('document.activeElement.id === "main"', undefined, { timeout: 5000 }).then(() => 'main', async () => page.evaluate<string>('document.activeElement.outerHTML.slice(0, 80) + " " + location.href'))
  t.equal(landed, 'main', 'and Enter moves the focus to the content')
  for (const [what, sel] of [['body text', 'main p'], ['a label', 'label'], ['a link', 'nav a'], ['the primary button', 'button[type=submit]'], ['a hint', '.hint']] as const) {
    t.ok(await contrastOf(page, sel) >= 4.5, `${what} has WCAG AA contrast (${(await contrastOf(page, sel)).toFixed(1)}:1)`)
  }

  // sign up, the mailed link, log in: through the pages, at phone width
  await page.getByRole('link', { name: 'Sign up' }).first().click()
  await page.getByLabel('Email', { exact: true }).fill('mallory-target@example.org')
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD)
  t.same(await unlabelled(page), [], 'every input of the sign-up page has a label')
  await page.getByRole('button', { name: 'Sign up' }).click()
  await page.locator('main').getByText('Check your mail').waitFor()
  t.ok(await fitsWidth(page, 375), 'no horizontal scrolling at 375 px')
  const link = /https:\/\/\S+\/verify\?token=[A-Za-z0-9_-]+/.exec(await mail.lastMailTo('mallory-target@example.org'))![0]
  await page.goto(link)
  await page.locator('main').getByText('Your email address is verified.').waitFor()
  t.equal(new URL(page.url()).search, '', 'the token is taken out of the address bar')
  await page.getByRole('link', { name: 'Log in' }).last().click()
  const login = page.getByRole('form', { name: 'Log in' })
  await login.getByLabel('Email', { exact: true }).fill('mallory-target@example.org')
  await login.getByLabel('Password', { exact: true }).fill(PASSWORD)
  await login.getByRole('button', { name: 'Log in' }).click()
  await page.getByRole('heading', { name: 'Workloads' }).waitFor()
  const cookie = (await rig.context.cookies()).find((c) => c.name === 'noir_session')!
  t.ok(cookie.httpOnly && cookie.secure && cookie.sameSite === 'Strict', 'the session is an HttpOnly, Secure, SameSite=Strict cookie')
  t.equal(await page.evaluate<string>('document.cookie'), '', 'the page cannot read it')
  t.equal(await page.evaluate<number>('localStorage.length + sessionStorage.length'), 0, 'nothing is kept in web storage')
  t.ok(await fitsWidth(page, 375), 'the workloads page fits 375 px')
  await rig.shot('signed-in-375px')

  // an injected inline script and an inline event handler do not run
  rig.expectConsole(/Refused to execute inline (script|event handler)|Content Security Policy/)
  await page.evaluate(`{
    const s = document.createElement('script')
    s.textContent = 'window.__injected = "script"'
    document.body.append(s)
    const div = document.createElement('div')
    div.innerHTML = '<img src="data:," onload="window.__injected2 = 1" alt="">'
    document.body.append(div)
  }`)
  await page.waitForTimeout(300)
  t.same(await page.evaluate<unknown[]>('[window.__injected ?? null, window.__injected2 ?? null]'), [null, null], 'neither injected script ran')

  // another origin's page: frames the dashboard, and posts a form to make an API key with the victim's cookie
  const attacker = createHttpServer((req, res) => {
    if (req.url === '/frame') {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(`<!doctype html><iframe id="f" src="${url}/app/keys"></iframe>`)
      return
    }
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(`<!doctype html><form id="f" method="POST" action="${url}/v1/keys" enctype="text/plain"><input name='{"name":"evil","scopes":["deploy"],"x":"' value='"}'></form><script>document.getElementById('f').submit()</script>`)
  })
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => new Promise<void>((r) => attacker.close(() => r())))
  const evil = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`

  rig.expectConsole(/Refused to display|frame-ancestors|X-Frame-Options/)
  rig.expectFailedRequest(/^GET \S+\/app\/keys \(net::ERR_BLOCKED_BY_RESPONSE\)$/)
  const framing = await rig.context.newPage()
  await framing.goto(`${evil}/frame`)
  await framing.waitForTimeout(500)
  const inner = framing.frames().find((f) => f !== framing.mainFrame())
  t.equal(inner ? await inner.$('#main').catch(() => null) : null, null, 'the dashboard does not render inside another origin\'s frame')
  await framing.close()

  rig.expect({ method: 'POST', path: /^\/v1\/keys$/, status: 400 })
  const forged = await rig.context.newPage()
  const answer = forged.waitForResponse((r) => r.url() === `${url}/v1/keys`)
  await forged.goto(evil)
  const refused = await answer
  t.equal(refused.status(), 400, 'the cross-origin form POST is refused')
  t.match(await refused.text(), /InvalidRequestError.*may not change state here/)
  await forged.close()

  // the same forged write sent with the victim's cookie attached (as if SameSite did not hold) is still refused
  const send = (headers: Record<string, string>, body: string) => new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(`${url}/v1/keys`, { method: 'POST', ca: tls.cert, headers: { 'content-type': 'application/json', cookie: `noir_session=${cookie.value}`, ...headers } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c.toString('utf8')))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    req.on('error', reject)
    req.end(body)
  })
  const body = JSON.stringify({ name: 'evil', scopes: ['deploy'] })
  t.equal((await send({ origin: evil, 'sec-fetch-site': 'cross-site' }, body)).status, 400, 'a foreign Origin with the cookie is refused')
  t.equal((await send({ 'sec-fetch-site': 'cross-site' }, body)).status, 400, 'Sec-Fetch-Site: cross-site without an Origin is refused')
  t.equal((await send({ origin: 'null' }, body)).status, 400, 'an opaque origin (null) is refused')
  t.equal((await send({ origin: url, 'sec-fetch-site': 'same-site' }, body)).status, 400, 'our Origin but from a sibling site is refused')

  await page.getByRole('link', { name: 'API keys' }).click()
  await page.getByRole('heading', { name: 'API keys' }).waitFor()
  t.equal(await page.getByText('evil').count(), 0, 'no key was made by any forged request')
  t.equal((await send({}, body)).status, 201, 'a client that is not a browser (no Origin, no Sec-Fetch-Site) may, with the session')
  t.same(rig.problems, [], 'no console error, failed request or unexpected answer')
})
