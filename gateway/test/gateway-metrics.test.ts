// The gateway's requests counted by route pattern and status in a Prometheus registry (spec/observability.md):
// over real HTTP (fastify on 127.0.0.1), scraped from the loopback endpoint `noir gateway start --metrics` opens.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { AuthService } from '../auth/auth-service.ts'
import { gatewayApp } from '../http/app.ts'
import { Mailer } from '../mail/mailer.ts'
import { GatewayStore } from '../store/gateway-store.ts'
import { Sealer } from '../auth/sealed.ts'
import { NodeMetrics } from '../../appliance/observability/node-metrics.ts'
import { MetricsServer } from '../../appliance/observability/metrics-server.ts'
import { silentLog } from '../../p2p/log.ts'

t.test('gateway requests by route and status, scraped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-gateway-metrics-'))
  const store = await GatewayStore.openFile(join(dir, 'gateway.db'))
  const mailer = new Mailer({ host: '127.0.0.1', port: 9, from: 'NoirLedger <noreply@noir.test>' })
  const metrics = new NodeMetrics('gateway')
  const scrape = new MetricsServer(metrics, silentLog)
  const url = await scrape.listen({ host: '127.0.0.1', port: 0 })
  const auth = new AuthService({ store, mailer, sealer: Sealer.fromFile(join(dir, 'secret.key')), publicUrl: 'https://gateway.noir.test/' })
  const app = gatewayApp({ auth, allowedOrigins: ['https://gateway.noir.test'], onRequest: (m, r, s, ms) => metrics.apiRequest(m, r, s, ms) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await app.close()
    await scrape.close()
    mailer.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  t.equal((await fetch(`${base}/v1/account`)).status, 401, 'no session')
  t.equal((await fetch(`${base}/v1/account`)).status, 401)
  t.equal((await fetch(`${base}/v1/secret-admin-panel?x=1`)).status, 404)
  t.equal((await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { origin: 'https://evil.test', 'content-type': 'application/json' }, body: '{}' })).status, 400, 'cross-site write refused')
  const text = await (await fetch(url)).text()
  const value = (labels: string): number => Number(new RegExp(`noir_api_requests_total\\{${labels.replace(/[/.?]/g, '\\$&')}\\} (\\d+)`).exec(text)?.[1] ?? NaN)
  t.equal(value('method="GET",route="/v1/account",status="401",node="gateway"'), 2, 'the account route, twice refused')
  t.equal(value('method="GET",route="unmatched",status="404",node="gateway"'), 1, 'a path no route serves is "unmatched"')
  t.equal(value('method="POST",route="/v1/auth/login",status="400",node="gateway"'), 1, 'the refused cross-site write')
  t.notMatch(text, /secret-admin-panel/, 'the caller\'s path is in no label')
  t.match(text, /noir_api_request_duration_seconds_count\{node="gateway",method="GET",route="\/v1\/account"\} 2/, "timed")
})

t.test('`noir gateway start --metrics` serves the scrape endpoint on loopback, and refuses a public address', async (t) => {
  const { spawn, spawnSync } = await import('node:child_process')
  const https = await import('node:https')
  const { NOIR_BIN } = await import('../../scripts/testing/daemons.ts')
  const home = mkdtempSync(join(tmpdir(), 'noir-gateway-home-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const args = ['--home', home, 'gateway', 'start', '--smtp', '127.0.0.1:9', '--from', 'noreply@noir.test', '--public-url', 'https://gw.noir.test/']
  const refused = spawnSync(process.execPath, [NOIR_BIN, ...args, '--listen', '127.0.0.1:0', '--metrics', '0.0.0.0:9464'], { encoding: 'utf8', timeout: 60_000 })
  t.not(refused.status, 0, 'a public metrics address is refused')
  t.match(refused.stderr + refused.stdout, /--metrics: .*not a loopback address/)
  t.notOk((await import('node:fs')).existsSync(join(home, 'gateway')), 'before anything was written')
  const port = 20_000 + Math.floor(Math.random() * 20_000)
  const proc = spawn(process.execPath, [NOIR_BIN, ...args, '--listen', `127.0.0.1:${port}`, '--metrics', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL')
  })
  let out = ''
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()))
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()))
  for (let i = 0; i < 600 && !/fingerprint/.test(out); i++) await new Promise((r) => setTimeout(r, 50))
  const url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(out)?.[1]
  t.ok(url, `the scrape URL is printed (${out.trim()})`)
  const status = await new Promise<number>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/v1/account', rejectUnauthorized: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    }).on('error', reject)
  })
  t.equal(status, 401)
  const text = await (await fetch(url!)).text()
  t.match(text, /noir_api_requests_total\{method="GET",route="\/v1\/account",status="401",node="gateway"\} 1/, 'the HTTPS request counted')
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)))
  proc.kill('SIGTERM')
  t.equal(await exited, 0, 'stops cleanly on SIGTERM')
})
