// The appliance inside real node daemons (separate `noir node start` processes): node info, the share
// enforced through the API, signed heartbeats on noir/heartbeat/v1 seen by another node, the owner CLI,
// and a daemon restart (kill -9) that re-attaches a running container without running it twice.
import t from 'tap'
import { execFile } from 'node:child_process'
import Docker from 'dockerode'
import { DaemonCluster, eventually, NOIR_BIN, TEST_PASSPHRASE, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { LABEL_ALLOCATION, LABEL_NODE } from '../executor/docker/docker-executor.ts'
import { parseCapacityReport } from '../../actors/placement/capacity-report.ts'

const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

function noir(home: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { env: { ...process.env, NOIR_PASSPHRASE: TEST_PASSPHRASE } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

interface Alloc {
  id: string
  state: string
  handle: { ref: string } | null
  lastExit: { code: number | null; reason: string } | null
}

let a: DaemonHandle

t.before(async () => {
  a = await cluster.start({ config: { share: 'cpu=1,memory=256MiB,disk=1GiB,gpu=0', heartbeatMs: 300, ports: '43000-43049' } })
})

t.test('noir node info shows the hardware, the share, free capacity and the enrollment benchmark', async (t) => {
  const r = await noir(a.home, ['node', 'info', '--json'])
  t.equal(r.code, 0, r.stderr)
  const info = JSON.parse(r.stdout) as { did: string; share: { cpu: number; memoryBytes: number; text: string }; capacity: { free: { cpu: number } }; enrollment: { cpuSha256MBps: number }; hardware: { cpu: { cores: number } }; executors: Record<string, { ok: boolean }> }
  t.equal(info.did, a.did)
  t.equal(info.share.text, 'cpu=1,memory=256MiB,disk=1GiB,gpu=0')
  t.equal(info.capacity.free.cpu, 1)
  t.ok(info.enrollment.cpuSha256MBps > 0, 'the enrollment benchmark was recorded')
  t.ok(info.hardware.cpu.cores >= 1)
  t.equal(info.executors.wasm?.ok, true)
  const text = await noir(a.home, ['node', 'info'])
  t.match(text.stdout, /share\s+cpu=1,memory=256MiB/)
})

t.test('a request beyond the share is refused through the API with InsufficientCapacityError', async (t) => {
  const { wasmFixture } = await import('./wasm-fixtures.ts')
  const { writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const mod = join(a.home, 'exit.wasm')
  writeFileSync(mod, wasmFixture('exit-zero'))
  const err = await a.api
    .post('/v1/allocations', { runtime: { kind: 'wasm', module: mod }, resources: { cpu: 2, memory: '64MiB' } })
    .catch((e: unknown) => e as { name: string; status: number; data: { resource: string; requested: number; free: number } })
  t.equal((err as { name: string }).name, 'InsufficientCapacityError')
  t.equal((err as { status: number }).status, 409)
  t.same((err as { data: unknown }).data, { resource: 'cpu', requested: 2, free: 1 })
  const bad = await a.api.post('/v1/allocations', { runtime: { kind: 'nope' }, resources: { cpu: 1, memory: 1 } }).catch((e: unknown) => e as { name: string })
  t.equal((bad as { name: string }).name, 'InvalidAllocationError')
  const missing = await a.api.post('/v1/allocations', { runtime: { kind: 'wasm', module: join(a.home, 'missing.wasm') }, resources: { cpu: 0.1, memory: '8MiB' } }).catch((e: unknown) => e as { name: string })
  t.equal((missing as { name: string }).name, 'InvalidExecSpecError', 'a module that cannot be read is refused before anything is reserved')
  t.same((await a.api.get<{ allocations: unknown[] }>('/v1/allocations')).allocations, [], 'no allocation was recorded for refused requests')
})

t.test('an expired reservation made through the API frees its capacity', async (t) => {
  const r = await a.api.post<{ id: string }>('/v1/reservations', { resources: { cpu: 1, memory: '16MiB' }, ttlMs: 300 })
  const refused = await a.api.post('/v1/reservations', { resources: { cpu: 0.5, memory: '16MiB' } }).catch((e: unknown) => e as { name: string })
  t.equal((refused as { name: string }).name, 'InsufficientCapacityError', 'held while it lives')
  await eventually(async () => (await a.api.get<{ reservations: unknown[] }>('/v1/reservations')).reservations.length === 0, 10_000)
  const commit = await a.api.post(`/v1/reservations/${r.id}/commit`).catch((e: unknown) => e as { name: string })
  t.equal((commit as { name: string }).name, 'ReservationNotFoundError', 'and it can no longer be committed')
})

t.test('another node receives signed heartbeats with capacity and allocations on noir/heartbeat/v1', async (t) => {
  const b = await cluster.start({ bootstrap: a.multiaddrs })
  const ac = new AbortController()
  t.teardown(() => ac.abort())
  type Beat = { from: string; body: { v: number; node: string; seq: number; at: number; capacity: { share: { cpu: number } }; allocations: { total: number } } }
  const beats: Beat[] = []
  for await (const m of b.api.stream<{ from?: string; body?: Beat['body'] }>('/v1/pubsub/subscribe?topic=noir/heartbeat/v1', { signal: ac.signal })) {
    if (m.from === a.did && m.body) beats.push({ from: m.from, body: m.body })
    if (beats.length === 2) break
  }
  ac.abort()
  const beat = beats[0]
  t.equal(beats[1]!.body.seq, beat!.body.seq + 1, 'consecutive heartbeats carry consecutive sequence numbers')
  t.ok(beats[1]!.body.at > beat!.body.at, 'and later times')
  t.ok(beat, 'a heartbeat arrived')
  t.equal(beat?.from, a.did, 'signed by the publishing node (verified by the mesh)')
  t.equal(beat?.body.v, 1)
  t.equal(beat?.body.node, a.did)
  t.equal(beat?.body.capacity.share.cpu, 1)
  t.type(beat?.body.allocations.total, 'number')
  // the facts placement reads from it (spec/orchestration.md "Placement at scale"), as another node's index takes them
  const report = parseCapacityReport(beat?.body, a.did)
  t.equal(report.facts?.owner, a.did, 'no owner configured: the node itself')
  t.equal(report.facts?.region, 'local')
  t.ok(report.facts?.runtimes.includes('wasm'), 'the runtimes whose executors answer')
  t.ok(report.facts?.price, 'and the price policy')
  type Status = { services: { orchestration: { capacityIndex: { nodes: number; withoutFacts: number } } } }
  const indexed = await eventually(async () => {
    const ci = (await b.api.get<Status>('/v1/status')).services.orchestration.capacityIndex
    return ci.nodes >= 1 && ci
  }, 10_000)
  t.equal(indexed.withoutFacts, 0, "the other node's orchestration service indexed the heartbeat, with its facts")
  await b.stop()
})

t.test('a wasm allocation runs through the API and its logs are read with noir node logs', async (t) => {
  // A module from the fixtures, written into the node's home.
  const { wasmFixture } = await import('./wasm-fixtures.ts')
  const { writeFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const mod = join(a.home, 'hello.wasm')
  writeFileSync(mod, wasmFixture('log-stream'))
  const created = await a.api.post<Alloc>('/v1/allocations', { id: 'wasm-hello', runtime: { kind: 'wasm', module: mod }, resources: { cpu: 0.2, memory: '16MiB' } })
  t.equal(created.id, 'wasm-hello')
  const follow = await noir(a.home, ['node', 'logs', 'wasm-hello', '-f', '--json'])
  t.equal(follow.code, 0, follow.stderr)
  const lines = follow.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ts: number; line: string })
  t.same(lines.map((l) => l.line), ['tick 1', 'tick 2', 'tick 3', 'tick 4', 'tick 5'], '-f followed until the workload ended')
  const list = await noir(a.home, ['node', 'allocations', '--json'])
  const doc = JSON.parse(list.stdout) as { allocations: Alloc[] }
  t.equal(doc.allocations.find((x) => x.id === 'wasm-hello')?.state, 'exited')
  const text = await noir(a.home, ['node', 'allocations'])
  t.match(text.stdout, /wasm-hello\s+wasm\s+exited/, 'the text listing shows id, kind and state')
  const plain = await noir(a.home, ['node', 'logs', 'wasm-hello'])
  t.match(plain.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z stdout tick 1$/m, 'text logs carry an ISO timestamp and the stream')
  const unknown = await noir(a.home, ['node', 'logs', 'nope'])
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, /AllocationNotFoundError/, 'an unknown allocation is a typed error')
  await a.api.request('DELETE', '/v1/allocations/wasm-hello')
})

t.test('a daemon restart (kill -9) re-attaches the running container: same container, tracked, none duplicated', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage('noir/busybox:latest'))) return
  const dk = new Docker()
  const containersOf = async (node: string, alloc: string) => dk.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${node}`, `${LABEL_ALLOCATION}=${alloc}`] } })
  t.teardown(async () => {
    for (const c of await dk.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${a.did}`] } })) await dk.getContainer(c.Id).remove({ force: true }).catch(() => {})
  })
  const created = await a.api.post<Alloc>('/v1/allocations', {
    id: 'svc-1',
    runtime: { kind: 'docker', image: 'noir/busybox:latest', command: ['/bin/sh', '-c', 'echo started; while :; do sleep 0.2; done'] },
    resources: { cpu: 0.2, memory: '32MiB' },
    restart: { policy: 'always' },
    graceMs: 500,
  })
  const running = await eventually(async () => {
    const x = await a.api.get<Alloc>(`/v1/allocations/${created.id}`)
    return x.state === 'running' ? x : undefined
  })
  t.ok(running.handle?.ref, 'it runs in a container')

  await a.kill() // kill -9: no clean shutdown at all
  const after = (await containersOf(a.did, 'svc-1'))[0]
  t.equal(after?.State, 'running', 'the container outlives the daemon')

  a = await cluster.start({ home: a.home })
  const again = await eventually(async () => {
    const x = await a.api.get<Alloc>(`/v1/allocations/${created.id}`)
    return x.state === 'running' ? x : undefined
  })
  t.equal(again.handle?.ref, running.handle?.ref, 'the restarted daemon tracks the same container')
  const all = await containersOf(a.did, 'svc-1')
  t.equal(all.length, 1, 'exactly one container for the allocation')
  const logs = await noir(a.home, ['node', 'logs', 'svc-1', '--json'])
  t.equal(logs.stdout.trim().split('\n').filter((l) => l.includes('"started"')).length, 1, 'it started once')
  const info = JSON.parse((await noir(a.home, ['node', 'info', '--json'])).stdout) as { capacity: { used: { cpu: number } } }
  t.equal(info.capacity.used.cpu, 0.2, 'its resources are still held after the restart')

  const stopped = await a.api.post<Alloc>(`/v1/allocations/${created.id}/stop`, { graceMs: 500 })
  t.equal(stopped.state, 'stopped', 'the new daemon controls it')
  await a.api.request('DELETE', `/v1/allocations/${created.id}`)
  t.equal((await containersOf(a.did, 'svc-1')).length, 0, 'remove deletes the container')
})
