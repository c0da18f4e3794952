// The customer journey through the dashboard's pages in headless Chromium, against a gateway over HTTPS in
// front of three real node daemons, with a real SMTP server on loopback: sign up, open the verification mail
// and follow its link, log in, enrol TOTP (reading the secret off the page), log out, log in again with a
// code, top up (a deposit on a real local chain, Anvil, naming the key the wallet page shows) and see it
// credited, deploy a service from the form and watch its logs
// arrive as they are written, make and revoke an API key, deploy a job from YAML and read its output, see the
// usage plot fill in, stop the service (its container goes), and read the month's invoice on the wallet page. Then the owner of the node that ran it opens
// `noir console`'s one-time URL: the console shows the node, its earnings, and changes its share. Any console
// error, failed request or unexpected answer fails the test; screenshots are saved (the path is printed).
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generate } from 'otplib'
import { eventually, NOIR_BIN, runningCopies, startConnectedMesh } from '../../scripts/testing/daemons.ts'
import { anvil, chromium, docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { localChain, NLC_UNITS } from '../../scripts/testing/chain.ts'
import { fitsWidth, freePort, openBrowser, unlabelled } from '../../scripts/testing/browser.ts'
import { openGateway } from '../gateway.ts'
import { gatewayCertificate } from '../http/tls.ts'
import { smtpOnLoopback } from './mail-rig.ts'

const IMAGE = 'noir/busybox:latest'
const PASSWORD = 'correct horse battery staple'
const EMAIL = 'grace@example.org'

t.test('a customer\'s journey through the dashboard, and an owner\'s console', async (t) => {
  if (!requireOrSkip(t, chromium, docker, dockerImage(IMAGE), anvil)) return
  const chain = await localChain(t)
  const { nodes } = await startConnectedMesh(t, 3, { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 600 }, ledger: { usageIntervalMs: 2000 } })
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-dashboard-journey-'))
  const tls = await gatewayCertificate({ dir, host: '127.0.0.1' })
  const port = await freePort()
  const url = `https://127.0.0.1:${port}`
  const gw = await openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: `${url}/`, nodeHome: nodes[0]!.home, https: { key: tls.key, cert: tls.cert },
    billing: { chain: { rpcUrl: chain.rpcUrl, contract: chain.settlement, startHeight: chain.startHeight, depth: 1, pollMs: 300 }, meterMs: 1000, releaseGraceMs: 3000 } })
  await gw.app.listen({ host: '127.0.0.1', port })
  t.teardown(async () => {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const rig = await openBrowser(t)
  const { page } = rig
  const main = page.locator('main')
  rig.expect({ method: 'GET', path: /^\/v1\/account$/, status: 401 }) // before signing in: the page asks who is there
  // the secrets routes may not be on this gateway: the page shows "not available" on their 404
  rig.expect({ method: 'GET', path: /^\/v1\/secrets$/, status: 404 })

  // ---- sign up, the mail, verify, log in ----
  await page.goto(`${url}/`)
  await page.getByRole('link', { name: 'Sign up' }).first().click()
  await page.getByLabel('Email', { exact: true }).fill(EMAIL)
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD)
  await page.keyboard.press('Enter') // the keyboard submits the form
  await main.getByText('Check your mail').waitFor()
  const link = /https:\/\/\S+\/verify\?token=[A-Za-z0-9_-]+/.exec(await mail.lastMailTo(EMAIL))
  t.ok(link, 'the mail carries a verification link to the dashboard')
  await page.goto(link![0])
  await main.getByText('Your email address is verified.').waitFor()
  const login = async (code?: string) => {
    await page.goto(`${url}/app/login`)
    const f = page.getByRole('form', { name: 'Log in' })
    await f.getByLabel('Email', { exact: true }).fill(EMAIL)
    await f.getByLabel('Password', { exact: true }).fill(PASSWORD)
    if (code) await f.getByLabel('Authentication code').fill(code)
    await f.getByRole('button', { name: 'Log in' }).click()
  }
  await login()
  await page.getByRole('heading', { name: 'Workloads' }).waitFor()
  t.same(await unlabelled(page), [], 'every input of the workloads page has a label')

  // ---- TOTP enrolment on the security page ----
  await page.getByRole('link', { name: 'Security' }).click()
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click()
  const secret = (await page.locator('#totp-secret').textContent())!.trim()
  t.match(secret, /^[A-Z2-7]{16,}$/, 'the page shows the base32 secret')
  t.match(await page.locator('#totp-uri').getAttribute('href'), /^otpauth:\/\/totp\//, 'and the otpauth link')
  await page.waitForFunction("(() => { const img = document.querySelector('#totp-qr'); return img !== null && img.complete && img.naturalWidth > 0 })()")
  t.pass('and the QR code to scan, loaded as an image from the gateway')
  await page.getByRole('form', { name: 'Confirm two-factor authentication' }).getByLabel('Authentication code').fill(await generate({ secret }))
  await page.getByRole('button', { name: 'Confirm' }).click()
  await page.locator('#recovery-codes li').first().waitFor()
  t.equal(await page.locator('#recovery-codes li').count(), 10, 'ten recovery codes, shown once')
  await rig.shot('totp-enrolled')
  await page.getByRole('button', { name: 'Log out' }).click()
  await page.getByRole('heading', { name: 'Log in' }).waitFor()

  rig.expect({ method: 'POST', path: /^\/v1\/auth\/login$/, status: 401 })
  await login()
  await main.getByText(/TotpRequiredError/).waitFor()
  t.pass('a login without the code is refused, and the page says why')
  // a code is used once: wait for the next step so the login's code is fresh
  await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 200))
  await login(await generate({ secret }))
  await page.getByRole('heading', { name: 'Workloads' }).waitFor()
  t.pass('logged in with TOTP')

  // ---- wallet: top up on the chain with the key the page shows ----
  await page.getByRole('link', { name: 'Wallet' }).click()
  await page.getByRole('heading', { name: 'Wallet' }).waitFor()
  t.equal((await page.locator('#wallet-available').textContent())?.trim(), '0 NLC', 'a new account has nothing')
  const key = (await page.locator('#deposit-key').textContent())!.trim()
  t.match(key, /^[0-9a-f]{64}$/, 'the page shows the account key to name in a deposit')
  t.equal((await page.locator('#deposit-contract').textContent())!.trim().toLowerCase(), chain.settlement.toLowerCase(), 'and the contract')
  await chain.deposit(key, 5n * NLC_UNITS)
  await chain.mine(1)
  const credited = await eventually(async () => {
    await page.reload()
    await page.locator('#wallet-available').waitFor()
    const a = (await page.locator('#wallet-available').textContent())!.trim()
    return a !== '0 NLC' && a
  }, 60_000, 1000)
  t.equal(credited, '5 NLC', 'the deposit is credited once confirmed')
  t.equal(await page.getByRole('table', { name: 'Top-ups' }).getByRole('row').count(), 2, 'and listed as a top-up (a header and one row)')
  await rig.shot('wallet')

  // ---- a service from the form; its logs arrive as it writes them ----
  await page.getByRole('link', { name: 'Workloads' }).click()
  const small = page.getByRole('form', { name: 'Deploy a container' })
  await small.getByLabel('Name').fill('counter')
  await small.getByLabel('Kind').selectOption('service')
  await small.getByLabel('Command').fill('trap "exit 0" TERM; i=0; while true; do echo count $i; i=$((i+1)); sleep 0.5 & wait $!; done')
  await small.getByRole('button', { name: 'Deploy' }).click()
  await page.getByRole('heading', { name: 'Workload counter' }).waitFor({ timeout: 30_000 })
  const serviceUrl = page.url()
  await page.locator('#phase', { hasText: 'running' }).waitFor({ timeout: 90_000 })
  await page.locator('pre.logs', { hasText: 'count 2' }).waitFor({ timeout: 30_000 })
  const before = (await page.locator('pre.logs span').count())
  await page.locator('pre.logs', { hasText: `count ${before + 1}` }).waitFor({ timeout: 30_000 })
  const lines = (await page.locator('pre.logs').textContent())!.trim().split('\n')
  t.same(lines.slice(0, 3), ['count 0', 'count 1', 'count 2'], 'the first lines in order, once each')
  t.ok(lines.length > before, 'and more keep arriving while the page follows')
  t.ok(await page.locator('ol.timeline li').count() > 0, 'the event timeline is shown')
  await rig.shot('service-logs')

  // ---- API keys ----
  await page.getByRole('link', { name: 'API keys' }).click()
  const keyForm = page.getByRole('form', { name: 'Make an API key' })
  await keyForm.getByLabel('Name').fill('ci')
  await keyForm.getByRole('button', { name: 'Make the key' }).click()
  const token = (await page.locator('#new-token').textContent())!.trim()
  t.ok(token.length > 40, 'the token is shown once')
  await page.getByRole('button', { name: 'Revoke ci' }).click()
  await page.getByRole('button', { name: 'Revoke ci' }).waitFor({ state: 'detached' })
  t.equal(await page.getByRole('row', { name: /^ci deploy, logs, usage .* revoked$/ }).count(), 1, 'the key is listed as revoked')
  t.equal(await page.evaluate<number>('localStorage.length + sessionStorage.length'), 0, 'no token kept in web storage')

  // ---- secrets: names only (when the gateway has the secrets routes) ----
  await page.getByRole('link', { name: 'Secrets' }).click()
  await page.getByRole('heading', { name: 'Secrets' }).waitFor()
  await page.locator('#secrets-unavailable, form[aria-label="Set a secret"]').first().waitFor()
  if (await page.locator('#secrets-unavailable').count() === 0) {
    const secretForm = page.getByRole('form', { name: 'Set a secret' })
    await secretForm.getByLabel('Name').fill('DB_PASSWORD')
    await secretForm.getByLabel('Value').fill('hunter2-not-shown')
    await secretForm.getByRole('button', { name: 'Save' }).click()
    await page.getByRole('cell', { name: 'DB_PASSWORD', exact: true }).waitFor()
    t.notOk((await page.content()).includes('hunter2-not-shown'), 'the secret is listed by name; its value is nowhere in the page')
  } else t.comment('this gateway has no secrets routes: the secrets page says so')

  // ---- capacity: a quote from the mesh's bids, reserved ----
  await page.getByRole('link', { name: 'Capacity' }).click()
  await page.getByRole('heading', { name: 'Capacity', exact: true }).waitFor()
  t.same(await unlabelled(page), [], 'every input of the capacity page has a label')
  const request = page.getByRole('form', { name: 'Request capacity' })
  await request.getByLabel('Minutes').fill('30')
  await request.getByRole('button', { name: 'Get a quote' }).click()
  const quoteTotal = (await page.locator('#quote-total').textContent({ timeout: 30_000 }))!.trim()
  t.match(quoteTotal, /^\d+(\.\d+)? NLC$/, `the quote's total for 30 minutes of one slot: ${quoteTotal}`)
  await rig.shot('capacity-quote')
  await page.getByRole('button', { name: 'Reserve' }).click()
  const reservedRow = page.getByRole('table', { name: 'Your reservations' }).getByRole('row').nth(1)
  await reservedRow.getByRole('cell', { name: 'active', exact: true }).waitFor({ timeout: 30_000 })
  const reservationId = (await reservedRow.getByRole('cell').first().textContent())!.trim()
  t.match(reservationId, /^cap-[0-9a-f]{24}$/, 'the reservation is listed, active')

  // ---- a job from YAML, inside the reservation ----
  await page.getByRole('link', { name: 'Workloads' }).click()
  await page.getByLabel('Workload (YAML)').fill('apiVersion: noir/v1\nkind: job\nname: answer\nruntime: {type: container, image: noir/busybox:latest, command: [sh, -c, "echo the answer is 42"]}\nresources: {cpu: 0.2, memory: 32Mi}\n')
  await page.getByLabel('Run inside reservation').selectOption(reservationId)
  await page.getByRole('form', { name: 'Deploy from YAML' }).getByRole('button', { name: 'Deploy' }).click()
  await page.getByRole('heading', { name: 'Workload answer' }).waitFor({ timeout: 30_000 })
  await page.locator('#phase', { hasText: 'completed' }).waitFor({ timeout: 90_000 })
  await page.locator('pre.logs', { hasText: 'the answer is 42' }).waitFor({ timeout: 30_000 })
  t.pass('the job\'s output is on its page')
  const inside = await (await page.request.get(`${url}/v1/capacity/${reservationId}`)).json() as { deployments: { deploymentId: string }[] }
  t.equal(inside.deployments.length, 1, 'it ran inside the reservation')
  // ---- cancel the reservation from its row: ended, the minutes it lasted charged ----
  await page.getByRole('link', { name: 'Capacity' }).click()
  await page.getByRole('button', { name: `Cancel reservation ${reservationId}` }).click()
  await page.getByRole('table', { name: 'Your reservations' }).getByRole('row').nth(1).getByRole('cell', { name: 'ended', exact: true }).waitFor({ timeout: 30_000 })
  t.pass('cancelled from the page: the reservation has ended')

  // ---- usage fills in as the service runs ----
  const total = await eventually(async () => {
    await page.goto(`${url}/app/usage`)
    await page.getByRole('heading', { name: 'Usage' }).waitFor()
    await page.locator('#usage-total, #usage-empty').first().waitFor()
    return (await page.locator('#usage-total').count()) > 0 && (await page.locator('#usage-total').textContent())
  }, 90_000, 3000)
  t.match(total, /^\d+(\.\d+)? NLC$/, `usage is shown: ${total}`)
  t.ok(await page.locator('svg.plot rect[data-series="counter"]').count() > 0, 'the plot has a bar for the service')
  await rig.shot('usage')

  // ---- what is held for it, on the wallet page ----
  await page.goto(`${url}/app/wallet`)
  const holdRow = page.getByRole('table', { name: 'Holds' }).getByRole('row', { name: /counter/ })
  await holdRow.waitFor()
  t.match(await holdRow.textContent(), /counter.*NLC.*NLC.*covered/, 'the wallet page lists the running service\'s hold, covered')

  // ---- stop the service from its page ----
  await page.goto(serviceUrl)
  await page.locator('#phase', { hasText: 'running' }).waitFor()
  const id = decodeURIComponent(new URL(serviceUrl).pathname.split('/').at(-1)!)
  const status = await (await page.request.get(`${url}/v1/workloads/${encodeURIComponent(id)}`)).json() as { replicas: Array<{ slot: string; node: string }> }
  const slot = status.replicas[0]!.slot
  const provider = status.replicas[0]!.node
  await page.getByRole('button', { name: 'Stop' }).click()
  await page.locator('#phase', { hasText: 'stopped' }).waitFor({ timeout: 60_000 })
  await eventually(() => runningCopies(slot) === 0, 30_000)
  t.pass('stopped from the page: the container is gone')
  // ---- the month's invoice on the wallet page ----
  const invoiced = await eventually(async () => {
    await page.goto(`${url}/app/wallet`)
    await page.locator('#wallet-pending').waitFor()
    const pending = (await page.locator('#wallet-pending').textContent())!.trim()
    return pending === '0 NLC' && (await page.getByRole('table', { name: 'Invoices' }).count()) > 0
  }, 90_000, 2000)
  t.ok(invoiced, 'stopped, nothing is held any more, and the invoices list has the month')
  t.match(await page.getByRole('table', { name: 'Invoices' }).textContent(), /inv-\d{4}-\d{2}/, 'the invoice, by its id')
  t.not((await page.locator('#wallet-posted').textContent())!.trim(), '5 NLC', 'the usage was charged')
  await rig.shot('invoice')
  await page.getByRole('link', { name: 'Security' }).click()
  await page.getByText('this session').waitFor()
  t.same(rig.problems, [], 'the customer\'s pages: no console error, failed request or unexpected answer')

  // ---- the owner of the node that ran the service opens its console ----
  const owner = nodes.find((n) => n.did === provider)!
  t.ok(owner, 'the provider is one of the three daemons')
  const printed = await new Promise<string>((resolve, reject) => execFile(process.execPath, [NOIR_BIN, '--home', owner.home, 'console'], { encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))))
  const consoleUrl = /^http:\/\/127\.0\.0\.1:\d+\/console\/login\?code=[A-Za-z0-9_-]{43}$/m.exec(printed)?.[0]
  t.ok(consoleUrl, 'noir console prints a one-time URL')
  t.notOk(printed.includes(owner.api.info!.token), 'which does not carry the API token')
  const owned = await rig.context.newPage()
  await owned.goto(consoleUrl!)
  t.equal(new URL(owned.url()).pathname, '/console/', 'the code is exchanged for a session and leaves the address bar')
  await owned.locator('#node-did', { hasText: owner.did }).waitFor()
  const earned = await eventually(async () => {
    await owned.reload()
    await owned.locator('#nlr-posted').waitFor()
    return (await owned.locator('svg.plot path.series').count()) > 0 && (await owned.locator('#nlr-posted').textContent())
  }, 60_000, 2000)
  t.match(earned, /^\d+(\.\d+)? NLR$/, `the console shows what the node earned: ${earned}`)
  t.not(earned, '0 NLR', 'more than nothing')
  const shareForm = owned.getByRole('form', { name: 'Change the share' })
  await shareForm.getByLabel('New share').fill('cpu=0.5,memory=512MiB,disk=1GiB,gpu=0')
  await shareForm.getByRole('button', { name: 'Change the share' }).click()
  await owned.locator('#share-now', { hasText: 'cpu=0.5' }).waitFor()
  t.match(JSON.parse(readFileSync(join(owner.home, 'config.json'), 'utf8')).share, /^cpu=0\.5,memory=512MiB/, 'the new share is kept in config.json')
  t.same(await unlabelled(owned), [], 'every input of the console has a label')
  await rig.shot('console', owned)
  const again = await rig.context.newPage()
  rig.expect({ method: 'GET', path: /^\/console\/login$/, status: 401 })
  t.equal((await again.goto(consoleUrl!))!.status(), 401, 'the code works once')
  await again.close()
  t.ok(await fitsWidth(owned, 1100), 'the console fits its window')
  await owned.setViewportSize({ width: 375, height: 800 })
  t.ok(await fitsWidth(owned, 375), 'and a phone\'s')
  await rig.shot('console-375px', owned)
  await owned.getByRole('button', { name: 'End this console session' }).click()
  await owned.getByRole('heading', { name: 'Console session ended' }).waitFor()
  rig.expect({ method: 'GET', path: /^\/console\/$/, status: 401 })
  t.equal((await owned.goto(consoleUrl!.replace(/login\?code=.*$/, '')))!.status(), 401, 'after ending it, the console is closed')
  t.same(rig.problems, [], 'no console error, failed request or unexpected answer anywhere')
})
