// The gateway's API (npm run bench -- gateway; spec/gateway.md): requests/s and latency p50/p99 over HTTP on
// loopback with 16 concurrent keep-alive clients, for
//   - a read (GET /v1/workloads/:id with an API key: key checked, ownership checked, the node asked) beside a
//     bare fastify route of the same framework and options in the same process (the framework's floor);
//   - deploy admission (POST /v1/workloads: key, body schema, workload validation, write-ahead record, node
//     asked) beside the same bare route taking the same body;
// with the node answering in-process (a fixed view), so the figures are the gateway's own cost; then the read
// end to end against a real node daemon beside a GET of the same deployment straight from that daemon's API;
// log-line latency from a container's stdout to the SDK's iterator beside a follow of the daemon's API;
// then the read and deploy admission with the gateway's state on PostgreSQL (a fresh local cluster, as several
// gateways share it) beside the same on the embedded node:sqlite file.
import { mkdtempSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { SMTPServer } from 'smtp-server'
import { percentile, printSection, type Figure } from './report.ts'
import { ApiKeys } from '../gateway/keys/api-keys.ts'
import { Sealer } from '../gateway/auth/sealed.ts'
import { AuthService } from '../gateway/auth/auth-service.ts'
import { gatewayApp } from '../gateway/http/app.ts'
import { Mailer } from '../gateway/mail/mailer.ts'
import { GatewayStore } from '../gateway/store/gateway-store.ts'
import { PostgresDatabase, SqliteDatabase, type GatewayDatabase } from '../gateway/store/database.ts'
import { postgresOnLoopback, postgresql } from '../scripts/testing/postgres.ts'
import { TenantStore } from '../gateway/store/tenant-store.ts'
import { AccountWallets } from '../gateway/wallets/account-wallets.ts'
import { TenantWorkloads, type NodeLink } from '../gateway/workloads/tenant-workloads.ts'
import { ApiClient } from '../appliance/daemon/api-client.ts'
import { NoirClient } from '../client/noir-client.ts'
import { DaemonCluster, eventually } from '../scripts/testing/daemons.ts'
import { docker, dockerImage } from '../scripts/testing/requirements.ts'

const CONCURRENCY = 16
const MS = 2000

interface Load { rps: number; p50: number; p99: number }

/** `CONCURRENCY` clients sending `make()` requests back to back for MS ms; requests/s and latency in ms. */
async function load(port: number, make: () => { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<Load> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  const one = () => new Promise<number>((resolve, reject) => {
    const r = make()
    const t0 = performance.now()
    const req = request({ host: '127.0.0.1', port, agent, method: r.method, path: r.path, headers: { ...r.headers, ...(r.body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(r.body) } : {}) } }, (res) => {
      res.resume()
      res.on('end', () => (res.statusCode! < 300 ? resolve(performance.now() - t0) : reject(new Error(`${r.method} ${r.path}: ${res.statusCode}`))))
    })
    req.on('error', reject)
    req.end(r.body)
  })
  for (let i = 0; i < 200; i++) await one() // warm-up
  const samples: number[] = []
  const end = performance.now() + MS
  const t0 = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) samples.push(await one())
  }))
  const secs = (performance.now() - t0) / 1000
  agent.destroy()
  return { rps: samples.length / secs, p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

const figures = (what: string, ours: Load, base: Load, baseName: string): Figure[] => [
  { name: `${what}: requests/s`, value: ours.rps, unit: 'req/s', better: 'higher', baseline: { name: baseName, value: base.rps } },
  { name: `${what}: p50`, value: ours.p50, unit: 'ms', better: 'lower', baseline: { name: baseName, value: base.p50 } },
  { name: `${what}: p99`, value: ours.p99, unit: 'ms', better: 'lower', baseline: { name: baseName, value: base.p99 } },
]

const workload = { apiVersion: 'noir/v1', kind: 'service', name: 'bench', runtime: { type: 'container', image: 'noir/busybox:latest', command: ['sleep', '600'] }, resources: { cpu: 0.1, memory: '16Mi' } }

async function gatewayWith(node: NodeLink, dir: string, smtpPort: number, db: GatewayDatabase = new SqliteDatabase(join(dir, 'gateway.db'))) {
  const store = await GatewayStore.open(db)
  const tenants = await TenantStore.open(store.database)
  const sealer = Sealer.fromFile(join(dir, 'secret.key'))
  const wallets = new AccountWallets({ store: tenants, sealer })
  const keys = new ApiKeys({ store: tenants, wallets })
  const workloads = new TenantWorkloads({ store: tenants, node })
  const mailer = new Mailer({ host: '127.0.0.1', port: smtpPort, from: 'bench@noir.test' })
  const auth = new AuthService({ store, mailer, sealer, publicUrl: 'https://gw.noir.test/' })
  const app = gatewayApp({ auth, tenants: { keys, workloads } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const account = (await store.createAccount('bench@example.org', 'x', Date.now()))!
  const key = (await keys.create(account.id, { name: 'bench', scopes: ['deploy', 'logs'], days: 1 })).token
  return { app, store, tenants, key, accountId: account.id, port: (app.server.address() as AddressInfo).port, close: async () => { await app.close(); mailer.close(); await store.close() } }
}

const smtp = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, onData: (s, _x, cb) => { s.resume(); s.on('end', () => cb()) } })
await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()))
const smtpPort = (smtp.server.address() as AddressInfo).port
const dir = mkdtempSync(join(tmpdir(), 'noir-bench-gateway-'))

// the bare floor: the same framework and options, a route answering a small object
const bare = Fastify({ logger: false, bodyLimit: 64 * 1024, ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } })
const VIEW = { id: 'bench-0001', name: 'bench', kind: 'service', lane: 'best-effort', phase: 'running', reason: null, desired: 1, replicas: [], events: [] }
bare.get('/v1/bare/:id', async () => VIEW)
bare.post('/v1/bare', { schema: { body: { type: 'object', required: ['workload'], properties: { workload: { type: 'object' }, idempotencyKey: { type: 'string' } } } } }, async (_req, reply) => reply.status(201).send(VIEW))
await bare.listen({ host: '127.0.0.1', port: 0 })
const barePort = (bare.server.address() as AddressInfo).port

let n = 0
const stub: NodeLink = {
  get: (async () => VIEW) as NodeLink['get'],
  post: (async () => ({ ...VIEW, id: `bench-${++n}` })) as NodeLink['post'],
  stream: (async function* () {}) as NodeLink['stream'],
}
const gw = await gatewayWith(stub, dir, smtpPort)
await gw.tenants.recordCreate(gw.accountId, 'fixed', '{}', Date.now())
await gw.tenants.settleCreate(gw.accountId, 'fixed', VIEW.id)
const auth = { authorization: `Bearer ${gw.key}` }
const baseRead = await load(barePort, () => ({ method: 'GET', path: `/v1/bare/${VIEW.id}` }))
const read = await load(gw.port, () => ({ method: 'GET', path: `/v1/workloads/${VIEW.id}`, headers: auth }))
const body = JSON.stringify({ workload })
const baseDeploy = await load(barePort, () => ({ method: 'POST', path: '/v1/bare', body }))
let k = 0
const deploy = await load(gw.port, () => ({ method: 'POST', path: '/v1/workloads', headers: auth, body: JSON.stringify({ workload, idempotencyKey: `k${++k}` }) }))
printSection(`gateway API, node answering in-process (${CONCURRENCY} clients, ${MS} ms each)`, [
  ...figures('read GET /v1/workloads/:id (API key)', read, baseRead, 'bare fastify route'),
  ...figures('deploy admission POST /v1/workloads', deploy, baseDeploy, 'bare fastify route'),
])
await gw.close()

// end to end: the read through the gateway against a real daemon, beside the daemon's own API
if (docker.missing() === undefined && dockerImage('noir/busybox:latest').missing() === undefined) {
  const cluster = new DaemonCluster()
  try {
    const d = await cluster.start({ config: { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0' } as never })
    const dir2 = mkdtempSync(join(tmpdir(), 'noir-bench-gateway2-'))
    const real = await gatewayWith(ApiClient.forHome(d.home), dir2, smtpPort)
    const view = await d.api.post<{ id: string }>('/v1/deployments', { workload })
    await real.tenants.recordCreate(real.accountId, 'real', '{}', Date.now())
    await real.tenants.settleCreate(real.accountId, 'real', view.id)
    await eventually(async () => (await d.api.get<{ phase: string }>(`/v1/deployments/${view.id}`)).phase === 'running', 60_000)
    const info = d.api.info!
    const direct = await load(Number(new URL(info.url).port), () => ({ method: 'GET', path: `/v1/deployments/${view.id}`, headers: { authorization: `Bearer ${info.token}` } }))
    const through = await load(real.port, () => ({ method: 'GET', path: `/v1/workloads/${view.id}`, headers: { authorization: `Bearer ${real.key}` } }))
    printSection('gateway API end to end, a real node daemon behind it', figures('read through the gateway', through, direct, 'the daemon\'s API directly'))
    await d.api.post(`/v1/deployments/${view.id}/stop`)

    // log-line latency: a container prints its clock (µs, read with busybox adjtimex) every 50 ms; the line's
    // arrival in the SDK's iterator (NoirClient.logs through the gateway) beside its arrival in a follow of
    // the daemon's own API. Both include the ~1-2 ms the container's awk takes to print the time it read.
    const ticks = await d.api.post<{ id: string }>('/v1/deployments', { workload: { ...workload, name: 'ticks', runtime: { type: 'container', image: 'noir/busybox:latest', command: ['sh', '-c', 'trap "exit 0" TERM; while true; do adjtimex | awk \'/tv_sec/{s=$2} /tv_usec/{u=$2} END{printf "t %d%06d\\n", s, u}\'; usleep 50000 & wait $!; done'] } } })
    await real.tenants.recordCreate(real.accountId, 'ticks', '{}', Date.now())
    await real.tenants.settleCreate(real.accountId, 'ticks', ticks.id)
    await eventually(async () => (await d.api.get<{ phase: string }>(`/v1/deployments/${ticks.id}`)).phase === 'running', 60_000)
    const LINES = 100
    /** Latency (ms) of the first LINES lines printed after the follow began. */
    const latencies = async (lines: (signal: AbortSignal) => AsyncIterable<{ line: string }>): Promise<number[]> => {
      const out: number[] = []
      const abort = new AbortController()
      const since = Date.now() * 1000
      try {
        for await (const l of lines(abort.signal)) {
          const m = /^t (\d+)/.exec(l.line)
          if (!m || Number(m[1]) < since) continue // the backlog a follow starts with
          out.push((performance.timeOrigin + performance.now()) - Number(m[1]) / 1000)
          if (out.length >= LINES) break
        }
      } finally {
        abort.abort()
      }
      return out
    }
    const viaDaemon = await latencies((signal) => d.api.stream<{ line: string }>(`/v1/deployments/${ticks.id}/logs?replica=0&follow=1`, { signal }))
    const sdk = new NoirClient({ url: `http://127.0.0.1:${real.port}`, apiKey: real.key })
    const viaSdk = await latencies((signal) => sdk.logs(ticks.id, { follow: true, signal }))
    printSection(`log-line latency, container stdout to the reader (${LINES} lines)`, [
      { name: 'SDK iterator through the gateway: p50', value: percentile(viaSdk, 50), unit: 'ms', better: 'lower', baseline: { name: 'a follow of the daemon\'s API', value: percentile(viaDaemon, 50) } },
      { name: 'SDK iterator through the gateway: p99', value: percentile(viaSdk, 99), unit: 'ms', better: 'lower', baseline: { name: 'a follow of the daemon\'s API', value: percentile(viaDaemon, 99) } },
    ])
    await d.api.post(`/v1/deployments/${ticks.id}/stop`)
    await real.close()
    rmSync(dir2, { recursive: true, force: true })
  } finally {
    await cluster.cleanup()
  }
} else console.log('\n(end-to-end figures skipped: Docker or the noir/busybox image is missing)')

// the state on PostgreSQL, beside node:sqlite (both with the node answering in-process)
if (postgresql.missing() === undefined) {
  const teardowns: (() => Promise<void> | void)[] = []
  try {
    const pg = await postgresOnLoopback({ teardown: (fn) => void teardowns.unshift(fn) }, { durable: true })
    const onPg = await gatewayWith(stub, dir, smtpPort, new PostgresDatabase(pg.url))
    await onPg.tenants.recordCreate(onPg.accountId, 'fixed', '{}', Date.now())
    await onPg.tenants.settleCreate(onPg.accountId, 'fixed', VIEW.id)
    const pgAuth = { authorization: `Bearer ${onPg.key}` }
    const pgRead = await load(onPg.port, () => ({ method: 'GET', path: `/v1/workloads/${VIEW.id}`, headers: pgAuth }))
    let j = 0
    const pgDeploy = await load(onPg.port, () => ({ method: 'POST', path: '/v1/workloads', headers: pgAuth, body: JSON.stringify({ workload, idempotencyKey: `p${++j}` }) }))
    printSection('gateway API with its state on PostgreSQL (several gateways share it)', [
      ...figures('read GET /v1/workloads/:id on PostgreSQL', pgRead, read, 'the same on node:sqlite'),
      ...figures('deploy admission on PostgreSQL', pgDeploy, deploy, 'the same on node:sqlite'),
    ])
    await onPg.close()
  } finally {
    for (const fn of teardowns) await fn()
  }
} else console.log(`\n(PostgreSQL figures skipped: ${postgresql.missing()})`)

await bare.close()
smtp.close()
rmSync(dir, { recursive: true, force: true })
