// A real Prometheus (Debian's `prometheus`, run here on a loopback port with a temp storage folder) scrapes
// three real daemons (separate processes, libp2p over TCP) after a deploy of a Docker service, and PromQL over
// its HTTP API returns the series the deploy must have moved: a placement counted by the orchestrating node,
// an allocation running and an executor start on the worker, envelopes received by every node, ask
// latencies, API requests by route and status; then the worker is killed and the failover and second placement
// are counted. Also: the scrape endpoint serves /metrics only.
import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DaemonCluster, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { removeNodeContainers } from '../../cli/commands/demo.ts'
import { docker, dockerImage, requireOrSkip, type Requirement } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'

const IMAGE = 'noir/busybox:latest'
const PROMETHEUS = process.env.NOIR_PROMETHEUS ?? '/usr/bin/prometheus'

const prometheus: Requirement = {
  name: 'prometheus',
  missing: () => (spawnSync(PROMETHEUS, ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0 ? undefined : `${PROMETHEUS} does not run (Debian package prometheus; see scripts/ci/setup-system.sh)`),
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

interface Sample { metric: Record<string, string>; value: [number, string] }

async function query(base: string, promql: string): Promise<Sample[]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`)
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Sample[] } }
  if (body.status !== 'success') throw new Error(`PromQL ${promql}: ${body.error}`)
  return body.data!.result
}

const service = {
  apiVersion: 'noir/v1', kind: 'service', name: 'scraped',
  runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1 & wait $!; done'] },
  resources: { cpu: 0.2, memory: '32Mi' },
  constraints: { labels: { role: 'worker' } },
}

t.test('a real Prometheus scrapes a 3-daemon mesh after a deploy', async (t) => {
  if (!requireOrSkip(t, prometheus, docker, dockerImage(IMAGE))) return
  const cluster = new DaemonCluster()
  t.teardown(async () => {
    const dids = cluster.daemons.map((d) => d.did)
    await cluster.cleanup()
    await removeNodeContainers(dids)
  })
  const share = 'cpu=1,memory=1GiB,disk=2GiB,gpu=0'
  // port 0: each daemon binds an ephemeral port and names it in its status (no free-port race with other tests)
  const config = (labels: Record<string, string>) => ({
    config: { share, metrics: { listen: '127.0.0.1:0' }, orchestration: { beatMs: 200, bidWindowMs: 1000, labels } } as never,
  })
  const a = await cluster.start(config({}))
  const [b, c] = await Promise.all([cluster.start({ ...config({ role: 'worker' }), bootstrap: a.multiaddrs }), cluster.start({ ...config({ role: 'worker' }), bootstrap: a.multiaddrs })]) as [DaemonHandle, DaemonHandle]
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 2, 20_000)
  const ports = await Promise.all([a, b, c].map(async (d) => {
    const scrape = (await d.api.get<{ services: { metrics: { scrape: string } } }>('/v1/status')).services.metrics.scrape
    return Number(new URL(scrape).port)
  }))
  t.ok(ports.every((p) => p > 0), `each daemon names its scrape port (${ports.join(', ')})`)
  await new Promise((r) => setTimeout(r, 1500))

  await t.test('the scrape endpoint serves /metrics and nothing else', async (t) => {
    const base = `http://127.0.0.1:${ports[0]}`
    const ok = await fetch(`${base}/metrics`)
    t.equal(ok.status, 200)
    t.match(ok.headers.get('content-type') ?? '', /text\/plain/)
    const text = await ok.text()
    t.match(text, /# TYPE noir_messages_received_total counter/)
    t.match(text, new RegExp(`noir_actors\\{node="${a.did}"\\} [1-9]`), 'actors counted, labelled with the node')
    t.equal((await fetch(`${base}/v1/status`)).status, 404, 'the node API is not served here')
    t.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405)
    const status = await a.api.get<{ services: { metrics: { scrape: string } } }>('/v1/status')
    t.equal(status.services.metrics.scrape, `${base}/metrics`, 'the status names the scrape URL')
  })

  const dep = await a.api.post<DeploymentView>('/v1/deployments', { workload: service })
  const v = await eventually(async () => {
    const x = await a.api.get<DeploymentView>(`/v1/deployments/${dep.id}`)
    return (x.phase === 'running' || x.phase === 'failed') && x
  }, 60_000, 200)
  t.equal(v.phase, 'running', `the service runs (${v.reason ?? ''})`)
  const worker = v.replicas[0]?.node === b.did ? b : c
  const other = worker === b ? c : b
  t.equal(v.replicas[0]?.node, worker.did, 'on a worker')

  const refused = await a.api.get('/v1/no-such-route').then(() => 'answered', (err: Error) => err.name)
  t.equal(refused, 'RouteNotFoundError', 'a request for no route is refused')

  const dir = mkdtempSync(join(tmpdir(), 'noir-prometheus-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const promPort = await freePort()
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    '  - job_name: noir',
    '    static_configs:',
    `      - targets: [${ports.map((p) => `"127.0.0.1:${p}"`).join(', ')}]`,
    '',
  ].join('\n'))
  const prom: ChildProcess = spawn(PROMETHEUS, [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let promLog = ''
  prom.stderr?.on('data', (d: Buffer) => (promLog += d.toString('utf8')))
  t.teardown(() => {
    if (prom.exitCode === null) prom.kill('SIGTERM')
  })
  const base = `http://127.0.0.1:${promPort}`
  await eventually(async () => (await fetch(`${base}/-/ready`).catch(() => undefined))?.ok, 60_000, 200).catch((err: Error) => {
    throw new Error(`prometheus not ready: ${err.message}\n${promLog}`)
  })

  // the three targets are up
  const up = await eventually(async () => {
    const r = await query(base, 'up{job="noir"} == 1')
    return r.length === 3 && r
  }, 30_000, 500)
  t.equal(up.length, 3, 'three targets up')

  const one = async (promql: string): Promise<Sample[]> => eventually(async () => {
    const r = await query(base, promql)
    return r.length > 0 && r
  }, 30_000, 500)

  const placements = await one('noir_placements_total >= 1')
  t.same(placements.map((s) => s.metric.node), [a.did], 'the orchestrating node counted its placement, and only it')

  const running = await one('noir_allocations{state="running"} >= 1')
  t.same(running.map((s) => s.metric.node), [worker.did], 'an allocation runs on the worker, on no other node')
  t.equal(Number(running[0]!.value[1]), 1, 'exactly one')

  const starts = await one('noir_executor_starts_total{kind="docker"} >= 1')
  t.same(starts.map((s) => s.metric.node), [worker.did], 'the docker executor started it on the worker')

  const received = await one('noir_messages_received_total > 0')
  t.same(received.map((s) => s.metric.node).sort(), [a.did, b.did, c.did].sort(), 'every node received envelopes')

  const asks = await one('sum by (node) (noir_ask_duration_seconds_count{outcome="ok"}) > 0')
  t.ok(asks.some((s) => s.metric.node === a.did), 'the orchestrator\'s asks are timed')

  const api = await one('noir_api_requests_total{route="/v1/deployments",method="POST",status="200"}')
  t.same(api.map((s) => s.metric.node), [a.did], 'the deploy request is counted by route and status on the node that took it')
  const notFound = await one('noir_api_requests_total{route="unmatched",status="404"} >= 1')
  t.same(notFound.map((s) => s.metric.node), [a.did], 'a request for no route is counted under "unmatched", never under the path it named')
  t.same(await query(base, 'noir_api_requests_total{route="/v1/no-such-route"}'), [], 'no series carries a caller\'s path')

  const transfers = await one('noir_ledger_transfers_total > 0')
  t.ok(transfers.some((s) => s.metric.node === a.did), 'the orchestrating node\'s ledger moved (top-up, escrow hold)')

  const failovers = await query(base, 'noir_failovers_total')
  t.equal(failovers.length, 3, 'failovers are exported by every node')
  t.ok(failovers.every((s) => Number(s.value[1]) === 0), 'and none happened')

  // the worker dies: the orchestrator places the slot again on the other worker, and counts a failover
  await worker.kill()
  const moved = await eventually(async () => {
    const x = await a.api.get<DeploymentView>(`/v1/deployments/${dep.id}`)
    return x.phase === 'running' && x.replicas[0]?.node === other.did && x
  }, 60_000, 200)
  t.equal(moved.replicas[0]?.node, other.did, 'the slot runs again on the other worker')
  const failedOver = await one('noir_failovers_total >= 1')
  t.same(failedOver.map((s) => [s.metric.node, Number(s.value[1])]), [[a.did, 1]], 'one failover, counted by the orchestrating node')
  const placedAgain = await one('noir_placements_total >= 2')
  t.same(placedAgain.map((s) => [s.metric.node, Number(s.value[1])]), [[a.did, 2]], 'and a second placement')
  const runningNow = await one(`noir_allocations{state="running",node="${other.did}"} >= 1`)
  t.equal(Number(runningNow[0]!.value[1]), 1, 'the allocation runs on the other worker now')
  t.same(await query(base, `up{job="noir",instance="127.0.0.1:${ports[worker === b ? 1 : 2]}"} == 0`).then((r) => r.length), 1, 'Prometheus sees the dead worker down')
})
