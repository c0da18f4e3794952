// Appliance benchmarks, each beside a baseline measured in the same run:
//  - allocation create -> running for a trivial container, vs `docker run -d` of the same image (and vs raw
//    dockerode create+start): the overhead of the allocator, the record, the actor and the executor;
//  - wasm start latency (prepare + start + first output) vs raw in-process WASI;
//  - heartbeat CPU cost (build + sign) per beat and per minute at the default 5 s interval;
//  - actor executor start latency vs a bare `node -e 0`; microVM boot to first console line vs raw QEMU.
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { WASI } from 'node:wasi'
import Docker from 'dockerode'
import { Level } from 'level'
import { printSection, percentile, type Figure } from './report.ts'
import { ActorSystem, LevelKvStore } from '../core/index.ts'
import { NodeKey } from '../identity/keys.ts'
import { encodeBroadcast } from '../p2p/pubsub.ts'
import { Allocator } from '../appliance/allocator/allocator.ts'
import { AllocationManager } from '../appliance/allocation/allocation-manager.ts'
import { DockerExecutor } from '../appliance/executor/docker/docker-executor.ts'
import { WasmExecutor } from '../appliance/executor/wasm/wasm-executor.ts'
import { wasmApi } from '../appliance/executor/wasm/wasm-api.ts'
import { HeartbeatPublisher, HEARTBEAT_TOPIC, type HeartbeatBody } from '../appliance/heartbeat/heartbeat.ts'
import { parseShare } from '../appliance/share/share.ts'
import { wasmFixture } from '../appliance/test/wasm-fixtures.ts'
import { docker as dockerReq, dockerImage } from '../scripts/testing/requirements.ts'

const IMAGE = 'noir/busybox:latest'
const MiB = 1024 * 1024
const N = 10
const median = (xs: number[]): number => percentile(xs, 50)
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6

const home = mkdtempSync(join(tmpdir(), 'noir-bench-appliance-'))
const key = NodeKey.generate()
const db = new Level<string, unknown>(join(home, 'data'), { valueEncoding: 'json' })
await db.open()
const system = new ActorSystem({ key })
await system.start()
const allocator = new Allocator({
  store: new LevelKvStore(db.sublevel<string, unknown>('svc:appliance', { valueEncoding: 'json' })),
  share: parseShare('cpu=2,memory=2GiB,disk=1GiB,gpu=0'),
})
await allocator.open()
const nodeId = `bench-${randomUUID().slice(0, 8)}`
const dockerEx = new DockerExecutor({ nodeId })
const wasmEx = new WasmExecutor({ warm: true })
const haveDocker = dockerImage(IMAGE).missing() === undefined
const manager = new AllocationManager({
  system,
  executors: haveDocker ? { docker: dockerEx, wasm: wasmEx } : { wasm: wasmEx },
  allocator,
  store: new LevelKvStore(db.sublevel<string, unknown>('svc:appliance', { valueEncoding: 'json' })),
  stateRoot: join(home, 'allocations'),
})
await manager.start()

try {
  // ---- containers -------------------------------------------------------------------------------------
  if (haveDocker) {
    const cmd = ['sleep', '30']
    const dockerRun: number[] = []
    const raw: number[] = []
    const ours: number[] = []
    const dk = new Docker()
    for (let i = 0; i < N; i++) {
      // docker CLI: create + start, returns once the container runs
      let t0 = process.hrtime.bigint()
      const id = execFileSync('docker', ['run', '-d', '--network', 'none', '-m', '32m', IMAGE, ...cmd], { encoding: 'utf8' }).trim()
      dockerRun.push(ms(t0))
      execFileSync('docker', ['rm', '-f', id], { stdio: 'ignore' })

      t0 = process.hrtime.bigint()
      const c = await dk.createContainer({ Image: IMAGE, Cmd: cmd, HostConfig: { NetworkMode: 'none', Memory: 32 * MiB } })
      await c.start()
      raw.push(ms(t0))
      await c.remove({ force: true })

      t0 = process.hrtime.bigint()
      const rec = await manager.create({ runtime: { kind: 'docker', image: IMAGE, command: cmd }, resources: { cpu: 0.1, memoryBytes: 32 * MiB } })
      await manager.waitFor(rec.id, (s) => s === 'running' || s === 'failed')
      ours.push(ms(t0))
      await manager.remove(rec.id)
    }
    const figures: Figure[] = [
      { name: 'allocation create -> running (median)', value: median(ours), unit: 'ms', baseline: { name: 'docker run -d', value: median(dockerRun) }, better: 'lower', target: 'overhead <= 50 ms' },
      { name: 'allocation create -> running (median)', value: median(ours), unit: 'ms', baseline: { name: 'dockerode create+start', value: median(raw) }, better: 'lower' },
      { name: 'overhead vs docker run (median)', value: median(ours) - median(dockerRun), unit: 'ms', better: 'lower', target: '<= 50 ms' },
      { name: 'overhead vs dockerode create+start (median)', value: median(ours) - median(raw), unit: 'ms', better: 'lower' },
    ]
    printSection(`container allocation, ${N} runs each`, figures)
  } else {
    console.log(`\n## container allocation: skipped (${dockerReq.missing() ?? 'image missing'})`)
  }

  // ---- wasm -------------------------------------------------------------------------------------------
  const modPath = join(home, 'hello.wasm')
  const bytes = wasmFixture('exit-zero')
  writeFileSync(modPath, bytes)
  const devNull = openSync('/dev/null', 'w')
  const rawWasi: number[] = []
  const exec: number[] = []
  const alloc: number[] = []
  for (let i = 0; i < 20; i++) {
    let t0 = process.hrtime.bigint()
    const wasi = new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true, stdout: devNull })
    const inst = await wasmApi!.instantiate(await wasmApi!.compile(bytes), { ...(wasi.getImportObject() as Record<string, Record<string, unknown>>), noir: { stop_requested: () => 0 } })
    wasi.start(inst as Parameters<WASI['start']>[0])
    rawWasi.push(ms(t0))

    t0 = process.hrtime.bigint()
    const h = await wasmEx.prepare({ allocationId: `w${i}`, runtime: { kind: 'wasm', module: modPath }, env: {}, limits: { cpu: 1, memoryBytes: 16 * MiB }, network: 'none', stateDir: join(home, 'w', String(i)) })
    await wasmEx.start(h)
    await wasmEx.wait(h)
    exec.push(ms(t0))
    await wasmEx.remove(h)

    t0 = process.hrtime.bigint()
    const rec = await manager.create({ runtime: { kind: 'wasm', module: modPath }, resources: { cpu: 0.1, memoryBytes: 16 * MiB } })
    await manager.waitFor(rec.id, (s) => s === 'exited' || s === 'failed')
    alloc.push(ms(t0))
    await manager.remove(rec.id)
  }
  closeSync(devNull)
  printSection('wasm start latency (a module that prints and exits), 20 runs', [
    { name: 'wasm executor prepare+start+exit (median)', value: median(exec), unit: 'ms', baseline: { name: 'raw in-process WASI', value: median(rawWasi) }, better: 'lower' },
    { name: 'wasm allocation create -> exited (median)', value: median(alloc), unit: 'ms', baseline: { name: 'wasm executor alone', value: median(exec) }, better: 'lower' },
  ])

  // ---- heartbeat --------------------------------------------------------------------------------------
  const beats = 500
  let bodyOnly = 0
  const hbBuild = new HeartbeatPublisher({
    node: key.did,
    intervalMs: 5000,
    publish: async () => undefined,
    source: async () => {
      const s = manager.summary()
      return { capacity: await allocator.capacity(), allocations: { total: s.total, byState: s.byState, running: [] }, load: { cpuNanos: s.cpuNanos, memoryBytes: s.memoryBytes } }
    },
  })
  let c0 = process.cpuUsage()
  for (let i = 0; i < beats; i++) await hbBuild.build()
  let c1 = process.cpuUsage(c0)
  bodyOnly = (c1.user + c1.system) / 1000 / beats
  c0 = process.cpuUsage()
  for (let i = 0; i < beats; i++) encodeBroadcast(key, HEARTBEAT_TOPIC, (await hbBuild.build()) as unknown as HeartbeatBody as never)
  c1 = process.cpuUsage(c0)
  const signed = (c1.user + c1.system) / 1000 / beats
  printSection(`heartbeat CPU cost (${beats} beats; gossip fan-out not included)`, [
    { name: 'build + sign one heartbeat', value: signed, unit: 'ms CPU', baseline: { name: 'build only', value: bodyOnly }, better: 'lower' },
    { name: 'per minute at 5 s interval (12 beats)', value: signed * 12, unit: 'ms CPU', better: 'lower' },
    { name: 'share of one core', value: (signed * 12) / 60_000 * 100, unit: '%', better: 'lower' },
  ])
} finally {
  await manager.stop()
  await wasmEx.close()
  for (const h of haveDocker ? await dockerEx.list() : []) await dockerEx.remove(h)
  await system.stop()
  await db.close()
  rmSync(home, { recursive: true, force: true })
}

// ---- microvm and actor executors --------------------------------------------------------------------------
// microVM: start() -> the workload's first console line, beside raw QEMU (same kernel, initramfs and command
// line, spawned by hand) -> the init's start line. Actor: prepare+start (sandboxed Node child, bundle loaded,
// proxy addressable) beside a bare `node -e 0` spawn-to-exit.
{
  const { spawn } = await import('node:child_process')
  const { existsSync } = await import('node:fs')
  const { fileURLToPath } = await import('node:url')
  const { ActorExecutor } = await import('../appliance/executor/actor/index.ts')
  const { MicrovmExecutor, defaultMicrovmImage } = await import('../appliance/executor/microvm/index.ts')
  const { qemu } = await import('../scripts/testing/requirements.ts')
  const lat = (xs: number[]): number => percentile(xs, 50)
  const t = (): bigint => process.hrtime.bigint()
  const since = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6
  const dir = mkdtempSync(join(tmpdir(), 'noir-bench-h5-'))
  const system = new ActorSystem({ key: NodeKey.generate() })
  try {
    const nodeSpawn: number[] = []
    for (let i = 0; i < 5; i++) {
      const t0 = t()
      await new Promise<void>((resolve) => spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }).on('exit', () => resolve()))
      nodeSpawn.push(since(t0))
    }
    const actorStart: number[] = []
    const actorEx = new ActorExecutor({ system })
    const counter = fileURLToPath(new URL('../examples/counter/counter.ts', import.meta.url))
    for (let i = 0; i < 5; i++) {
      const stateDir = mkdtempSync(join(dir, 'actor-'))
      const t0 = t()
      const h = await actorEx.prepare({ allocationId: `bench-actor-${i}`, runtime: { kind: 'actor', bundle: counter }, env: {}, limits: { cpu: 1, memoryBytes: 256 * MiB }, network: 'none', stateDir })
      await actorEx.start(h)
      actorStart.push(since(t0))
      await system.ask(actorEx.addressOf(h)!, '/counter/get')
      await actorEx.stop(h, { graceMs: 5000 })
      await actorEx.remove(h)
    }
    printSection('actor executor start latency, 5 runs', [
      { name: 'sandboxed SDK actor prepare+start (median)', value: lat(actorStart), unit: 'ms', baseline: { name: 'bare `node -e 0` spawn to exit', value: lat(nodeSpawn) }, better: 'lower' },
    ])

    const image = defaultMicrovmImage()
    if (qemu.missing() === undefined && existsSync(image.kernel) && existsSync(image.initrd)) {
      const mvEx = new MicrovmExecutor({ workDir: join(dir, 'microvm') })
      const { accel } = await mvEx.accelerator(image.kernel)
      const { qemuArgs, kernelCommandLine } = await import('../appliance/executor/microvm/qemu-args.ts')
      const runs = 2
      const firstLine: number[] = []
      const raw: number[] = []
      for (let i = 0; i < runs; i++) {
        const stateDir = mkdtempSync(join(dir, 'vm-'))
        const spec = { allocationId: `bench-vm-${i}`, runtime: { kind: 'microvm' as const, kernel: image.kernel, initrd: image.initrd, command: ['sh', '-c', 'echo ready'] }, env: {}, limits: { cpu: 1, memoryBytes: 128 * MiB }, network: 'none' as const, stateDir }
        const h = await mvEx.prepare(spec)
        const t0 = t()
        const first = (async () => {
          for await (const _ of mvEx.logs(h, { follow: true })) return since(t0)
          return NaN
        })()
        await mvEx.start(h)
        firstLine.push(await first)
        await mvEx.wait(h)
        await mvEx.remove(h)
        // Raw QEMU with the image's initramfs as is (its init says it has no workload, then powers off).
        const args = qemuArgs(spec, { accel, kernel: image.kernel, initrd: image.initrd, append: kernelCommandLine(spec, accel), memoryMiB: 128, cpus: 1 })
        const r0 = t()
        await new Promise<void>((resolve) => {
          const q = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'ignore'] })
          let seen = false
          q.stdout.on('data', (d: Buffer) => {
            if (!seen && d.toString().includes('noir-init')) {
              seen = true
              raw.push(since(r0))
            }
          })
          q.on('exit', () => resolve())
        })
      }
      printSection(`microVM boot (${accel}), ${runs} runs`, [
        { name: 'executor start -> first console line (median)', value: lat(firstLine), unit: 'ms', baseline: { name: 'raw QEMU -> init\'s first line', value: lat(raw) }, better: 'lower' },
      ])
    } else {
      console.log('\n## microVM boot: skipped (qemu-system-x86_64 or the image from scripts/ci/images/microvm.sh is missing)')
    }
  } finally {
    await system.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
