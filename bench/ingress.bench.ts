// The service ingress, measured in one run beside a direct request to the same workload port:
// - request latency p50/p99, one request at a time on a keep-alive connection: client -> ingress (HTTP
//   listener, Host routing) -> libp2p stream (TCP, Noise, yamux on loopback) -> provider forwarder -> the
//   container's published port, vs client -> the container's published port;
// - the same with a new connection per request (each one opens a stream and passes the provider's checks);
// - requests/s with 8 keep-alive connections in parallel;
// - HTTP/2 (h2c) through the ingress: each stream a request routed on its own over a mesh stream of its own,
//   one at a time and 8 at once on one connection, beside direct HTTP/1.1 keep-alive requests;
// - plain HTTP/1.1 balanced per request (`ingress.balance: "request"`: each request of a keep-alive connection
//   sent to a replica of its own) beside balanced per connection (the default), two replicas, same run.
// The workload is busybox httpd in a container (noir/busybox) when Docker is there, else a node:http server
// (printed). The ingress and the provider run in this process (appliance/ingress/test-mesh.ts); across
// daemons the path adds only the orchestrator's replica-set answer, cached for a second.
import { spawnSync } from 'node:child_process'
import { createServer } from 'node:http'
import { request, Agent } from 'node:http'
import { connect as h2connect, type ClientHttp2Session } from 'node:http2'
import { ingressPair } from '../appliance/ingress/test-mesh.ts'
import { percentile, printSection, type Figure } from './report.ts'

const ROUNDS = Number(process.env.INGRESS_BENCH_ROUNDS ?? 2000)

function get(port: number, host: string, agent: Agent | false): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/index.html', headers: { host }, agent }, (res) => {
      res.resume()
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))))
    })
    req.on('error', reject)
    req.end()
  })
}

async function latencies(port: number, host: string, keepAlive: boolean, n: number): Promise<number[]> {
  const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false
  const out: number[] = []
  for (let i = 0; i < n + 50; i++) {
    const t0 = performance.now()
    await get(port, host, agent)
    if (i >= 50) out.push(performance.now() - t0)
  }
  if (agent) agent.destroy()
  return out
}

async function throughput(port: number, host: string, ms: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  let n = 0
  const end = performance.now() + ms
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      await get(port, host, agent)
      n++
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: 8 }, worker))
  const s = (performance.now() - t0) / 1000
  agent.destroy()
  return n / s
}

function h2get(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/index.html', ':authority': 'web.localhost' }, { endStream: true })
    let status = 0
    req.on('response', (h) => (status = Number(h[':status'])))
    req.resume()
    req.on('end', () => (status === 200 ? resolve() : reject(new Error(`HTTP ${status}`))))
    req.on('error', reject)
  })
}

async function h2section(w: { port: number; what: string }): Promise<void> {
  const pair = await ingressPair([{ contractId: 'c1', hostPort: w.port }])
  const session = h2connect(`http://127.0.0.1:${pair.port}`)
  try {
    const direct = await latencies(w.port, 'x', true, ROUNDS)
    const via: number[] = []
    for (let i = 0; i < ROUNDS + 50; i++) {
      const t0 = performance.now()
      await h2get(session)
      if (i >= 50) via.push(performance.now() - t0)
    }
    const figures: Figure[] = []
    for (const p of [50, 99]) figures.push({ name: `HTTP/2 request p${p} via ingress (one connection)`, value: percentile(via, p), unit: 'ms', better: 'lower', baseline: { name: 'direct HTTP/1.1 keep-alive', value: percentile(direct, p) } })
    figures.push({ name: 'HTTP/2 p50 overhead of the ingress', value: percentile(via, 50) - percentile(direct, 50), unit: 'ms', better: 'lower', target: '<= 1 ms' })
    const directRps = await throughput(w.port, 'x', 3000)
    let n = 0
    const end = performance.now() + 3000
    const t0 = performance.now()
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (performance.now() < end) {
        await h2get(session)
        n++
      }
    }))
    figures.push({ name: 'HTTP/2 requests/s via ingress (8 streams on one connection)', value: n / ((performance.now() - t0) / 1000), unit: 'req/s', better: 'higher', baseline: { name: 'direct HTTP/1.1, 8 connections', value: directRps }, target: '>= 0.5 of direct' })
    printSection(`ingress HTTP/2 (h2c) to ${w.what} (each stream routed on its own, over kept-alive mesh streams per replica)`, figures)
  } finally {
    session.close()
    await pair.stop()
  }
}

async function balanceSection(w: { port: number; what: string }): Promise<void> {
  const replicas = [{ contractId: 'c1', hostPort: w.port }, { contractId: 'c2', hostPort: w.port }]
  const byConnection = await ingressPair(replicas)
  const byRequest = await ingressPair(replicas, { balance: 'request' })
  try {
    const figures: Figure[] = []
    const conn = await latencies(byConnection.port, 'web.localhost', true, ROUNDS)
    const req = await latencies(byRequest.port, 'web.localhost', true, ROUNDS)
    for (const p of [50, 99]) figures.push({ name: `request p${p}, balanced per request (keep-alive agent)`, value: percentile(req, p), unit: 'ms', better: 'lower', baseline: { name: 'per connection', value: percentile(conn, p) } })
    const connRps = await throughput(byConnection.port, 'web.localhost', 3000)
    const reqRps = await throughput(byRequest.port, 'web.localhost', 3000)
    figures.push({ name: 'requests/s, balanced per request (8 connections)', value: reqRps, unit: 'req/s', better: 'higher', baseline: { name: 'per connection', value: connRps } })
    printSection(`ingress HTTP/1.1 balanced per request to ${w.what} (two replicas)`, figures)
  } finally {
    await byConnection.stop()
    await byRequest.stop()
  }
}

/** The workload: busybox httpd in a container on a published loopback port, or node:http. */
async function workload(): Promise<{ port: number; what: string; stop: () => void }> {
  const img = spawnSync('docker', ['image', 'inspect', 'noir/busybox:latest'], { stdio: 'ignore' })
  if (img.status === 0) {
    const name = `noir-bench-ingress-${process.pid}`
    const run = spawnSync('docker', ['run', '-d', '--rm', '--name', name, '--label', 'noir.bench=ingress', '-p', '127.0.0.1::8080', 'noir/busybox:latest', 'sh', '-c', 'mkdir -p /tmp/www && echo hello > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www'], { encoding: 'utf8' })
    if (run.status === 0) {
      const port = Number(spawnSync('docker', ['port', name, '8080/tcp'], { encoding: 'utf8' }).stdout.trim().split(':').at(-1))
      for (let i = 0; i < 50; i++) {
        try {
          await get(port, 'x', false)
          break
        } catch {
          await new Promise((r) => setTimeout(r, 100))
        }
      }
      return { port, what: 'busybox httpd in a container (published port)', stop: () => void spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' }) }
    }
  }
  const srv = createServer({ keepAlive: true }, (_req, res) => res.end('hello\n'))
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()))
  return { port: (srv.address() as { port: number }).port, what: 'node:http (no Docker here)', stop: () => srv.close() }
}

async function section(w: { port: number; what: string }): Promise<void> {
  const pair = await ingressPair([{ contractId: 'c1', hostPort: w.port }])
  try {
    const figures: Figure[] = []
    for (const keepAlive of [true, false]) {
      // busybox httpd closes after each answer: its "keep-alive" rounds are new connections too
      const direct = await latencies(w.port, 'x', keepAlive, ROUNDS)
      const via = await latencies(pair.port, 'web.localhost', keepAlive, ROUNDS)
      const label = keepAlive ? 'keep-alive agent' : 'new connection each'
      for (const p of [50, 99]) {
        figures.push({ name: `request p${p} via ingress (${label})`, value: percentile(via, p), unit: 'ms', better: 'lower', baseline: { name: 'direct', value: percentile(direct, p) } })
      }
      const overhead = percentile(via, 50) - percentile(direct, 50)
      figures.push({ name: `p50 overhead of the ingress (${label})`, value: overhead, unit: 'ms', better: 'lower', target: '<= 1 ms' })
    }
    const directRps = await throughput(w.port, 'x', 3000)
    const viaRps = await throughput(pair.port, 'web.localhost', 3000)
    figures.push({ name: 'requests/s via ingress (8 connections)', value: viaRps, unit: 'req/s', better: 'higher', baseline: { name: 'direct', value: directRps }, target: '>= 0.5 of direct' })
    printSection(`ingress to ${w.what} (one process: ingress + provider over libp2p on loopback; ${ROUNDS} sequential requests per figure)`, figures)
  } finally {
    await pair.stop()
  }
}

const container = await workload()
try {
  await section(container)
} finally {
  container.stop()
}
// a workload that keeps its connections (as most web servers do): the keep-alive path crosses an open stream
const kept = createServer({ keepAlive: true }, (_req, res) => res.end('hello\n'))
await new Promise<void>((r) => kept.listen(0, '127.0.0.1', () => r()))
try {
  await section({ port: (kept.address() as { port: number }).port, what: 'node:http keep-alive server' })
  await h2section({ port: (kept.address() as { port: number }).port, what: 'node:http keep-alive server' })
  await balanceSection({ port: (kept.address() as { port: number }).port, what: 'node:http keep-alive server' })
} finally {
  kept.closeAllConnections()
  kept.close()
}
