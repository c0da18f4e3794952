// The customer journey through the client SDK (NoirClient) against a gateway over HTTPS (its generated
// self-signed certificate, trusted as `ca`) in front of three real node daemons, with a real SMTP server on
// loopback and a real local chain (Anvil): sign up, read the mail, verify, enrol TOTP, log in with it, make
// an API key, top up on the chain, request capacity (a quote from the mesh's bids, then a reservation that
// holds its total), deploy a service and a job inside it with the key, stream the service's logs as an async
// iterator, read the job's output, usage, cancel the reservation (what runs inside stops, the minutes it
// lasted are charged) and read the invoice. Another account reaches none of the reservation. A create whose answer is lost on the wire (a proxy cuts the connection after the gateway handled
// it) is retried with its idempotency key and makes exactly one deployment. A client that does not trust
// the gateway's certificate does not connect. Then the CLI: `noir login` (email, password and a recovery
// code; then an API key), and deploy, ps, status, logs and stop through the gateway; `noir logout`.
import t from 'tap'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { execFile } from 'node:child_process'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generate } from 'otplib'
import { eventually, NOIR_BIN, runningCopies, startConnectedMesh } from '../../scripts/testing/daemons.ts'
import { anvil, docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { localChain, NLC_UNITS } from '../../scripts/testing/chain.ts'
import { openGateway } from '../../gateway/gateway.ts'
import { gatewayCertificate } from '../../gateway/http/tls.ts'
import { linkToken, smtpOnLoopback } from '../../gateway/test/mail-rig.ts'
import { NoirApiError, NoirClient } from '../noir-client.ts'

const IMAGE = 'noir/busybox:latest'
const PASSWORD = 'correct horse battery staple'

/** A TCP proxy to `port` that, for the first `cut` connections, forwards the request but drops the answer. */
async function lossyProxy(t: { teardown(fn: () => Promise<void>): void }, port: number, cut: number): Promise<{ port: number; cuts: number }> {
  const state = { port: 0, cuts: 0 }
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    sockets.add(client)
    const drop = state.cuts < cut
    if (drop) state.cuts++
    const upstream = connect(port, '127.0.0.1')
    sockets.add(upstream)
    client.pipe(upstream)
    upstream.on('data', (c: Buffer) => (drop ? (client.destroy(), upstream.destroy()) : client.write(c)))
    upstream.on('end', () => client.end())
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  state.port = (server.address() as AddressInfo).port
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => server.close(() => r()))
  })
  return state
}

t.test('the customer journey through NoirClient', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE), anvil)) return
  const chain = await localChain(t)
  const { nodes } = await startConnectedMesh(t, 3, { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 600 } })
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-client-journey-'))
  const tls = await gatewayCertificate({ dir, host: '127.0.0.1' })
  const gw = await openGateway({
    dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/', nodeHome: nodes[0]!.home, https: { key: tls.key, cert: tls.cert },
    billing: { chain: { rpcUrl: chain.rpcUrl, contract: chain.settlement, startHeight: chain.startHeight, depth: 1, pollMs: 100_000 }, meterMs: 100_000 },
  })
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const port = (gw.app.server.address() as AddressInfo).port
  const url = `https://127.0.0.1:${port}`

  const stranger = new NoirClient({ url, retries: 0 })
  await t.rejects(stranger.signUp('eve@example.org', PASSWORD), { code: /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/ }, 'a client that does not trust the certificate does not connect')

  const me = new NoirClient({ url, ca: tls.cert })
  await me.signUp('ada@example.org', PASSWORD)
  await me.verifyEmail(linkToken(await mail.lastMailTo('ada@example.org'), 'verify'))
  const account = await me.login('ada@example.org', PASSWORD)
  t.same([account.email, account.verified, account.totp], ['ada@example.org', true, false])
  const { secret, uri } = await me.enrolTotp()
  t.match(uri, /^otpauth:\/\/totp\//)
  const codes = await me.confirmTotp(await generate({ secret }))
  t.equal(codes.length, 10, 'ten recovery codes')
  await me.logout()
  await t.rejects(me.login('ada@example.org', PASSWORD), { name: 'TotpRequiredError' }, 'a login without the code is refused, as a typed error')
  // a code is used once: wait for the next step so the login's code is fresh
  await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 200))
  t.equal((await me.login('ada@example.org', PASSWORD, await generate({ secret }))).totp, true, 'logged in with TOTP')
  const key = await me.createApiKey('sdk', ['deploy', 'logs', 'usage'], 7)
  t.same((await me.apiKeys()).map((k) => k.name), ['sdk'])

  const sdk = new NoirClient({ url, ca: tls.cert, apiKey: key.token })

  // ---- top up on the chain: the wallet says where and under which key ----
  const empty = await sdk.wallet()
  t.same([empty.available, empty.pending], ['0', '0'])
  await chain.deposit(empty.deposit!.accountKey, 20n * NLC_UNITS)
  await chain.mine(1)
  await gw.deposits!.poll()
  t.equal((await sdk.wallet()).available, '20000000', 'the deposit is credited: 20 NLC')

  // ---- request capacity: a quote from the mesh's signed bids, then a reservation holding its total ----
  const quote = await sdk.quoteCapacity({ resources: { cpu: 0.25, memory: '64Mi' }, slots: 2, durationSeconds: 3600 })
  const meshDids = new Set(await Promise.all(nodes.map(async (n) => (await n.api.get<{ did: string }>('/v1/status')).did)))
  t.equal(quote.quotedBy.slots.length, 2, 'two slots quoted')
  t.ok(quote.quotedBy.slots.every((s) => meshDids.has(s.node)), 'each by a node of the mesh')
  t.equal(quote.pricePerHour, String(quote.quotedBy.slots.reduce((a, s) => a + BigInt(s.pricePerHour), 0n)), 'the price: what the bids say for the slots')
  t.equal(quote.total, quote.pricePerHour, 'for one hour')
  t.ok(BigInt(quote.total) > 0n && quote.quotedBy.asked === 3, `the three nodes were asked; ${quote.total} µNLC for the hour`)
  await t.rejects(sdk.quoteCapacity({ resources: { cpu: 8, memory: '64Mi' }, slots: 1, durationSeconds: 3600 }), { name: 'CapacityUnavailableError', status: 409 }, 'more than any node has: no quote')
  await t.rejects(sdk.quoteCapacity({ resources: { cpu: 0.25, memory: 'lots' }, slots: 1, durationSeconds: 3600 }), { name: 'InvalidRequestError', status: 400 })
  const reservation = await sdk.reserveCapacity(quote.id)
  t.same([reservation.state, reservation.slots, reservation.slotsUsed], ['active', 2, 0])
  t.equal((await sdk.wallet()).pending, quote.total, 'its total is held')
  t.equal((await sdk.reserveCapacity(quote.id)).id, reservation.id, 'reserving the quote again: the same reservation')
  t.equal((await sdk.wallet()).pending, quote.total, 'held once')

  // another account reaches none of it
  const eve = new NoirClient({ url, ca: tls.cert })
  await eve.signUp('eve@example.org', PASSWORD)
  await eve.verifyEmail(linkToken(await mail.lastMailTo('eve@example.org'), 'verify'))
  await eve.login('eve@example.org', PASSWORD)
  await t.rejects(eve.reservation(reservation.id), { name: 'NotFoundError', status: 404 }, 'another account: not its reservation')
  await t.rejects(eve.cancelReservation(reservation.id), { name: 'NotFoundError', status: 404 }, 'nor can it cancel it')
  await t.rejects(eve.reserveCapacity(quote.id), { name: 'NotFoundError', status: 404 }, 'nor reserve its quote')
  await t.rejects(eve.deploy({ apiVersion: 'noir/v1', kind: 'service', name: 'squat', runtime: { type: 'container', image: IMAGE, command: ['sleep', '60'] }, resources: { cpu: 0.2, memory: '32Mi' } }, { reservation: reservation.id }), { name: 'NotFoundError', status: 404 }, 'nor deploy into it')
  t.same(await eve.reservations(), [], 'and lists none')

  // ---- a service and a job inside the reservation ----
  const svc = await sdk.deploy({
    apiVersion: 'noir/v1', kind: 'service', name: 'counter',
    runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'trap "exit 0" TERM; i=0; while true; do echo count $i; i=$((i+1)); sleep 0.2 & wait $!; done'] },
    resources: { cpu: 0.2, memory: '32Mi' },
  }, { reservation: reservation.id })
  const job = await sdk.deploy('apiVersion: noir/v1\nkind: job\nname: once\nruntime: {type: container, image: noir/busybox:latest, command: [sh, -c, "echo the answer is 42"]}\nresources: {cpu: 0.2, memory: 32Mi}\n', { reservation: reservation.id })
  t.equal((await sdk.reservation(reservation.id)).slotsUsed, 2, 'the two fill its two slots')
  t.equal((await sdk.wallet()).pending, quote.total, 'deploys inside hold nothing of their own')
  await t.rejects(sdk.deploy({ apiVersion: 'noir/v1', kind: 'service', name: 'big', runtime: { type: 'container', image: IMAGE }, resources: { cpu: 0.5, memory: '32Mi' } }, { reservation: reservation.id }), { name: 'ReservationExceededError', status: 409 }, 'a replica bigger than a slot does not get in')
  const running = await eventually(async () => {
    const v = await sdk.status(svc.id)
    return v.phase === 'running' && v
  }, 60_000)
  t.equal(running.replicas.length, 1)
  const done = await eventually(async () => {
    const v = await sdk.status(job.id)
    return (v.phase === 'completed' || v.phase === 'failed') && v
  }, 60_000)
  t.equal(done.phase, 'completed', 'the job completed')

  // logs follow as an async iterator; three consecutive lines, then we stop listening
  const abort = new AbortController()
  const seen: string[] = []
  for await (const l of sdk.logs(svc.id, { follow: true, signal: abort.signal })) {
    seen.push(l.line)
    if (seen.length === 3) abort.abort()
  }
  t.same(seen, ['count 0', 'count 1', 'count 2'], 'the first three lines, in order, once each')
  const out: string[] = []
  for await (const l of sdk.logs(job.id)) out.push(l.line)
  t.same(out, ['the answer is 42'], 'the job\'s output')
  const usage = await sdk.usage(svc.id)
  t.ok(usage && typeof usage === 'object', 'usage answers')
  t.same((await sdk.workloads()).map((d) => d.id).sort(), [svc.id, job.id].sort())

  // a lost answer: the gateway made the deployment, the client saw the connection drop, retried with the key
  const proxy = await lossyProxy(t, port, 1)
  const lossy = new NoirClient({ url: `https://127.0.0.1:${proxy.port}`, ca: tls.cert, apiKey: key.token })
  const retried = await lossy.deploy({ apiVersion: 'noir/v1', kind: 'service', name: 'retried', runtime: { type: 'container', image: IMAGE, command: ['sleep', '600'] }, resources: { cpu: 0.2, memory: '32Mi' } })
  t.equal(proxy.cuts, 1, 'the first answer was lost')
  t.equal((await sdk.workloads()).filter((d) => d.name === 'retried').length, 1, 'one deployment, not two')
  t.equal((await sdk.status(retried.id)).id, retried.id)

  const e = await sdk.createApiKey('more', ['deploy']).catch((err: unknown) => err)
  t.ok(e instanceof NoirApiError && e.name === 'ScopeDeniedError' && e.status === 403, 'a key cannot make keys (a typed NoirApiError)')
  await t.rejects(sdk.status('someone-elses'), { name: 'NotFoundError', status: 404 })

  // ---- cancel the reservation: the service inside stops, the minutes it lasted are charged, the rest released ----
  await sdk.stop(retried.id)
  const cancelled = await sdk.cancelReservation(reservation.id)
  t.equal(cancelled.state, 'ended')
  await eventually(async () => (await sdk.status(svc.id)).phase === 'stopped', 30_000)
  t.pass('the service inside was stopped')
  await eventually(() => runningCopies(running.replicas[0]!.slot) === 0, 30_000)
  t.pass('stopped: the container is gone')
  const minutes = Math.max(1, Math.ceil((cancelled.endedAt! - cancelled.startsAt) / 60_000))
  t.equal(cancelled.charged, String((BigInt(quote.pricePerHour) * BigInt(minutes * 60) + 3599n) / 3600n), `charged for the ${minutes} minute(s) begun`)
  const invoice = (await sdk.invoices())[0]!
  const line = invoice.lines.find((l) => l.deploymentId === reservation.id)
  t.equal(line?.amount, cancelled.charged, 'the invoice has the reservation\'s line')
  t.equal(line?.workload, `capacity ${reservation.id}`)

  // ---- the CLI against the gateway: noir login, then deploy/ps/status/logs/stop go there ----
  const home = mkdtempSync(join(tmpdir(), 'noir-cli-login-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  writeFileSync(join(home, 'ca.pem'), tls.cert)
  writeFileSync(join(home, 'w.yaml'), 'apiVersion: noir/v1\nkind: job\nname: from-cli\nruntime: {type: container, image: noir/busybox:latest, command: [sh, -c, "echo hello from the cli"]}\nresources: {cpu: 0.2, memory: 32Mi}\n')
  // the gateway runs in this process: the CLI is run without blocking its event loop
  const noir = (args: string[], env: Record<string, string> = {}) => new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { encoding: 'utf8', env: { ...process.env, NOIR_PASSWORD: '', NOIR_API_KEY: '', ...env } }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
    })
  })
  t.equal((await noir(['login', '--gateway', url, '--ca', join(home, 'ca.pem'), '--email', 'ada@example.org'])).status, 2, 'no password in the environment: a usage error')
  const wrong = (await noir(['login', '--gateway', url, '--ca', join(home, 'ca.pem'), '--email', 'ada@example.org'], { NOIR_PASSWORD: 'not the password at all' }))
  t.match(wrong.stderr, /InvalidCredentialsError|wrong|TotpRequired/i, 'a wrong password is refused')
  t.notOk(existsSync(join(home, 'gateway-login.json')), 'and nothing is kept')
  const viaEmail = (await noir(['login', '--gateway', url, '--ca', join(home, 'ca.pem'), '--email', 'ada@example.org', '--totp', codes[0]!], { NOIR_PASSWORD: PASSWORD }))
  t.equal(viaEmail.status, 0, viaEmail.stderr)
  t.match(viaEmail.stdout, /logged in to https:\/\/127\.0\.0\.1:\d+ as ada@example\.org/, 'logged in with a recovery code as the second factor')
  t.equal(statSync(join(home, 'gateway-login.json')).mode & 0o777, 0o600, 'the login is kept 0600')
  t.equal((await noir(['logout'])).status, 0)
  const viaKey = (await noir(['login', '--gateway', url, '--ca', join(home, 'ca.pem'), '--api-key'], { NOIR_API_KEY: key.token }))
  t.equal(viaKey.status, 0, viaKey.stderr)
  const reserved = await noir(['capacity', 'quote', '--cpu', '0.2', '--memory', '32Mi', '--slots', '1', '--minutes', '30', '--reserve', '--json'])
  t.equal(reserved.status, 0, reserved.stderr)
  const cliReservation = (JSON.parse(reserved.stdout) as { reservation: { id: string; state: string } }).reservation
  t.equal(cliReservation.state, 'active', 'noir capacity quote --reserve: quoted and reserved')
  t.match((await noir(['capacity'])).stdout, new RegExp(`${cliReservation.id}  active  1 slot\\(s\\) of 0.2 cpu, 32 MiB`), 'noir capacity lists it')
  const deployed = (await noir(['deploy', join(home, 'w.yaml'), '--wait', '--reservation', cliReservation.id]))
  t.equal(deployed.status, 0, deployed.stderr)
  const cliJob = /deployment (\S+) \(through the gateway/.exec(deployed.stdout)?.[1]
  const shown = (await noir(['capacity', 'show', cliReservation.id])).stdout
  t.match(shown, new RegExp(`0/1 slots used[^]*${cliJob}  1 slot\\(s\\)  ended`), 'the job ran inside it; completed, its slot is free again')
  t.match((await noir(['capacity', 'cancel', cliReservation.id])).stdout, new RegExp(`${cliReservation.id}  ended .*\\n.*charged`), 'noir capacity cancel ends it and says the charge')
  const cliId = /deployment (\S+) \(through the gateway/.exec(deployed.stdout)?.[1]
  t.ok(cliId, 'noir deploy went through the gateway')
  const ps = JSON.parse((await noir(['ps', '--json'])).stdout) as { deployments: { id: string }[] }
  t.ok(ps.deployments.some((d) => d.id === cliId) && ps.deployments.some((d) => d.id === svc.id), 'noir ps lists the account\'s deployments')
  t.match((await noir(['status', cliId!])).stdout, /phase: completed/)
  t.match((await noir(['logs', cliId!])).stdout, /hello from the cli/, 'noir logs reads them through the gateway')
  const usageCli = await noir(['usage', svc.id])
  t.equal(usageCli.status, 0, usageCli.stderr)
  t.match(usageCli.stdout, /record\(s\): claimed \d+ µNLC|no usage records for/, 'noir usage reads it through the gateway')
  t.equal((await noir(['stop', cliId!])).status, 0)
  t.equal((await noir(['logout'])).status, 0)
  const local = (await noir(['ps']))
  t.match(local.stderr, /no daemon is running/, 'after logout, the commands go to the local daemon again')
})
