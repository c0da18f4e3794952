// The customer journey through the client SDK (NoirClient) against a gateway over HTTPS (its generated
// self-signed certificate, trusted as `ca`) in front of three real node daemons, with a real SMTP server on
// loopback: sign up, read the mail, verify, enrol TOTP, log in with it, make an API key, deploy a service
// and a job with the key, stream the service's logs as an async iterator, read the job's output, usage,
// stop. A create whose answer is lost on the wire (a proxy cuts the connection after the gateway handled
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
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
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
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const { nodes } = await startConnectedMesh(t, 3, { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 600 } })
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-client-journey-'))
  const tls = await gatewayCertificate({ dir, host: '127.0.0.1' })
  const gw = await openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/', nodeHome: nodes[0]!.home, https: { key: tls.key, cert: tls.cert } })
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
  const svc = await sdk.deploy({
    apiVersion: 'noir/v1', kind: 'service', name: 'counter',
    runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'trap "exit 0" TERM; i=0; while true; do echo count $i; i=$((i+1)); sleep 0.2 & wait $!; done'] },
    resources: { cpu: 0.2, memory: '32Mi' },
  })
  const job = await sdk.deploy('apiVersion: noir/v1\nkind: job\nname: once\nruntime: {type: container, image: noir/busybox:latest, command: [sh, -c, "echo the answer is 42"]}\nresources: {cpu: 0.2, memory: 32Mi}\n')
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

  for (const id of [svc.id, retried.id]) await sdk.stop(id)
  await eventually(() => runningCopies(running.replicas[0]!.slot) === 0, 30_000)
  t.pass('stopped: the container is gone')

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
  const deployed = (await noir(['deploy', join(home, 'w.yaml'), '--wait']))
  t.equal(deployed.status, 0, deployed.stderr)
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
