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
  const store = new GatewayStore(join(dir, 'gateway.db'))
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
    store.close()
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
