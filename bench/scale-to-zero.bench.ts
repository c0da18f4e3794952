// Scale to zero with real daemons (spec/ingress.md "Scale to zero"): an owner node with an ingress and a worker,
// a container service (busybox httpd, an HTTP health check every 0.5 s) with `scale.min: 0, idleSeconds: 10`.
// Figures, each beside a baseline measured in the same run:
// - the first request at zero, held through the cold start, vs a request to the running service;
// - wake to every replica running (the deployment's recorded cold start) vs a fresh deploy of the same workload
//   to running (what a cold start would cost without the deployment kept).
// - a wasm service (a WASI module that runs until stopped): deploy to running, beside the container's. A WASI module
//   has no network (it cannot declare a port), so no ingress traffic can wake one at zero: its cold start is a
//   start from nothing, and that is what is printed.
import { request } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { wasmFixture } from '../appliance/test/wasm-fixtures.ts'
import { spawnSync } from 'node:child_process'
import { DaemonCluster, NOIR_BIN, eventually } from '../scripts/testing/daemons.ts'
import { removeNodeContainers } from '../cli/commands/demo.ts'
import type { DeploymentView } from '../actors/orchestrator/orchestrator.ts'
import { printSection, type Figure } from './report.ts'

const ROUNDS = 3
const IMAGE = 'noir/busybox:latest'
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function get(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.setTimeout(150_000, () => req.destroy(new Error('no answer')))
    req.on('error', reject)
    req.end()
  })
}

const cluster = new DaemonCluster()
const scratch = mkdtempSync(join(tmpdir(), 'noir-bench-zero-'))
try {
  const orchestration = { beatMs: 200, bidWindowMs: 500 }
  const owner = await cluster.start({ config: { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { ...orchestration, labels: { role: 'owner' } }, ingress: { listen: '127.0.0.1:0' } } as never })
  const worker = await cluster.start({ bootstrap: owner.multiaddrs, config: { share: 'cpu=2,memory=2GiB,disk=4GiB,gpu=0', orchestration: { ...orchestration, labels: { role: 'worker' } } } as never })
  await eventually(async () => (await owner.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 1, 60_000)
  await new Promise((r) => setTimeout(r, 1500))
  const workload = (name: string, scale?: object) => ({
    apiVersion: 'noir/v1', kind: 'service', name,
    runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www'] },
    resources: { cpu: 0.1, memory: '16Mi' }, constraints: { labels: { role: 'worker' } }, ports: [{ port: 8080, public: true }],
    service: { replicas: 1, healthCheck: { type: 'http', port: 8080, path: '/', intervalSeconds: 0.5, timeoutSeconds: 1, failureThreshold: 2 }, ...(scale ? { scale } : {}) },
  })
  const view = (id: string) => owner.api.get<DeploymentView>(`/v1/deployments/${id}`)
  const running = (id: string) => eventually(async () => (await view(id)).phase === 'running' && (await view(id)), 120_000, 50)

  // baseline 1: a fresh deploy of the same workload to running
  const fresh: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now()
    const d = await owner.api.post<DeploymentView>('/v1/deployments', { workload: workload(`fresh-${i}`) })
    await running(d.id)
    fresh.push(performance.now() - t0)
    await owner.api.post(`/v1/deployments/${d.id}/stop`)
  }

  const z = await owner.api.post<DeploymentView>('/v1/deployments', { workload: workload('zero', { min: 0, max: 1, idleSeconds: 10 }) })
  await running(z.id)
  const { endpoint } = await owner.api.post<{ endpoint: { host: string; listen: string } }>('/v1/ingress/expose', { deploymentId: z.id, port: 8080 })
  const port = Number(endpoint.listen.split(':').at(-1))
  await eventually(async () => (await get(port, endpoint.host)) === 200, 60_000, 100)
  // baseline 2: requests to the running service through the same ingress
  const warm: number[] = []
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now()
    await get(port, endpoint.host)
    warm.push(performance.now() - t0)
  }
  const held: number[] = []
  const cold: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    // at zero for good: every replica stopped (its container gone), as a user arriving later finds it
    await eventually(async () => {
      const v = await view(z.id)
      return v.phase === 'idle' && v.replicas.every((x) => x.state === 'stopped')
    }, 120_000, 100)
    await new Promise((r) => setTimeout(r, 1000))
    const t0 = performance.now()
    const status = await get(port, endpoint.host)
    if (status !== 200) throw new Error(`the first request at zero answered ${status}`)
    held.push(performance.now() - t0)
    cold.push((await view(z.id)).coldStarts.at(-1)!.ms)
  }
  const figures: Figure[] = [
    { name: 'first request at zero (held through the cold start) p50', value: median(held), unit: 'ms', baseline: { name: 'a request to the running service', value: median(warm) }, better: 'lower' },
    { name: 'wake to running (container) p50', value: median(cold), unit: 'ms', baseline: { name: 'a fresh deploy to running', value: median(fresh) }, better: 'lower' },
  ]
  printSection(`Scale to zero (real daemons, container, ${ROUNDS} rounds, same run)`, figures)

  // wasm: a module that sleeps in a loop until stopped, in the worker's catalog (its owner added it)
  const modPath = join(scratch, 'sleeper.wasm')
  writeFileSync(modPath, wasmFixture('sleep'))
  const added = spawnSync(process.execPath, [NOIR_BIN, '--home', worker.home, 'catalog', 'add', 'wasm', 'sleeper', modPath], { encoding: 'utf8' })
  if (added.status !== 0) throw new Error(`noir catalog add: ${added.stderr}`)
  const wasm = (name: string) => ({
    apiVersion: 'noir/v1', kind: 'service', name, runtime: { type: 'wasm', module: 'sleeper' },
    resources: { cpu: 0.1, memory: '64Mi' }, constraints: { labels: { role: 'worker' } }, service: { replicas: 1 },
  })
  const wasmFresh: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now()
    const d = await owner.api.post<DeploymentView>('/v1/deployments', { workload: wasm(`wasm-fresh-${i}`) })
    await running(d.id)
    wasmFresh.push(performance.now() - t0)
    await owner.api.post(`/v1/deployments/${d.id}/stop`)
  }
  printSection(`Cold start of a wasm service (real daemons, ${ROUNDS} rounds, same run)`, [
    { name: 'wasm: deploy to running (its cold start) p50', value: median(wasmFresh), unit: 'ms', baseline: { name: 'the same for the container', value: median(fresh) }, better: 'lower' },
  ])
} finally {
  rmSync(scratch, { recursive: true, force: true })
  const dids = cluster.daemons.map((d) => d.did)
  await cluster.cleanup()
  await removeNodeContainers(dids)
}
