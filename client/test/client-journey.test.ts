// The customer journey through the client SDK (NoirClient) against a gateway over HTTPS (its generated
// self-signed certificate, trusted as `ca`) in front of three real node daemons, with a real SMTP server on
// loopback: sign up, read the mail, verify, enrol TOTP, log in with it, make an API key, deploy a service
// and a job with the key, stream the service's logs as an async iterator, read the job's output, usage,
// stop. A create whose answer is lost on the wire (a proxy cuts the connection after the gateway handled
// it) is retried with its idempotency key and makes exactly one deployment. A client that does not trust
// the gateway's certificate does not connect.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generate } from 'otplib'
import { eventually, runningCopies, startConnectedMesh } from '../../scripts/testing/daemons.ts'
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
  const gw = openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/', nodeHome: nodes[0]!.home, https: { key: tls.key, cert: tls.cert } })
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
})
