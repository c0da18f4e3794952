// Migration downtime between real daemons (spec/migration.md), each beside a baseline measured here, now:
// - an SDK actor: from the last answer of the old replica to the first answer of the new one, across
//   `POST /v1/deployments/:id/migrate`, vs a plain restart of the same bundle on one node (its allocation
//   stopped, then a fresh allocation of it answering);
// - a container with a state directory of STATE_MIB MiB: the gap the orchestrator measures (old instance
//   stopped and archived -> new one started from the archive) vs a plain restart on one node (the same
//   allocation's stop and a fresh one of the same image running);
// - a microVM with a state disk (QEMU save and resume): the orchestrator's gap and the whole migrate call vs a
//   fresh boot of the same guest on one node (the allocation's stop and a new one running its workload).
// - a container under gVisor's runsc counting in memory (runtime.checkpoint: process), where runsc is
//   installed: the orchestrator's gap (sandbox checkpointed, archived, fetched, restored on the new node) vs a
//   restart of the same sandbox on one node (stopped, a fresh one running: the count starts again from 1).
// NOIR_BENCH_MIGRATION=microvm (a comma list of actor, container, microvm, runsc) runs only those sections.
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { execFile } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DaemonCluster, NOIR_BIN, eventually, type DaemonHandle } from '../scripts/testing/daemons.ts'
import { removeNodeContainers } from '../cli/commands/demo.ts'
import type { DeploymentView } from '../actors/orchestrator/orchestrator.ts'
import type { MigrationRecord } from '../actors/deployment/model.ts'
import { printSection, type Figure } from './report.ts'
import { defaultMicrovmImage } from '../appliance/executor/microvm/index.ts'
import { runsc } from '../scripts/testing/requirements.ts'

const ROUNDS = 5
const STATE_MIB = 100
const IMAGE = 'noir/busybox:latest'
const VM_MEMORY_MIB = 128
const VM_DISK_MIB = 16
/** Which sections run: NOIR_BENCH_MIGRATION=actor,container,microvm,runsc (default all). */
const parts = (process.env.NOIR_BENCH_MIGRATION ?? 'actor,container,microvm,runsc').split(',').map((x) => x.trim())
const tally = fileURLToPath(new URL('../appliance/test/fixtures/actor/tally.ts', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'noir-migration-bench-'))
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function noir(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { timeout: 600_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

const cluster = new DaemonCluster()
try {
  const cfg = (role: string) => ({ config: { share: 'cpu=2,memory=2GiB,disk=4GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 500, labels: { role } } } as never })
  const a = await cluster.start(cfg('consumer'))
  const b = await cluster.start({ ...cfg('worker'), bootstrap: a.multiaddrs })
  const c = await cluster.start({ ...cfg('worker'), bootstrap: a.multiaddrs })
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 2, 60_000)
  await new Promise((r) => setTimeout(r, 1500))
  const ask = async (to: string): Promise<boolean> => {
    try {
      await a.api.post('/v1/actor/send', { to, behavior: '/tally/get', body: null, ask: true, timeoutMs: 1000 })
      return true
    } catch {
      return false
    }
  }
  const addressOf = (v: DeploymentView): string => `${v.replicas[0]!.node}/alloc/c-${v.replicas[0]!.contractId}/workload`

  if (parts.includes('actor')) {
    // 1. SDK actor: last answer from the old replica -> first from the new
    writeFileSync(join(work, 'tally.yaml'), [
      'apiVersion: noir/v1', 'kind: service', 'name: tally', `runtime: { type: actor, bundle: ${JSON.stringify(tally)} }`,
      'resources: { cpu: 0.3, memory: 192Mi }', 'constraints: { labels: { role: worker } }', '',
    ].join('\n'))
    const dep = await noir(a.home, 'deploy', join(work, 'tally.yaml'), '--wait', '--json')
    let v = JSON.parse(dep.stdout) as DeploymentView
    await eventually(() => ask(addressOf(v)), 60_000, 200)
    const actorDown: number[] = []
    const actorGap: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      const old = addressOf(v)
      let lastOld = performance.now()
      const state = { moving: true }
      const poll = (async () => {
        while (state.moving) if (await ask(old)) lastOld = performance.now()
      })()
      let m: MigrationRecord | undefined
      for (let tries = 0; !m && tries < 5; tries++) {
        m = await a.api.post<MigrationRecord>(`/v1/deployments/${v.id}/migrate`, {}).catch(async (err: Error) => {
          const s = await a.api.get<DeploymentView>(`/v1/deployments/${v.id}`)
          console.log(`  actor migration ${i} refused (try ${tries + 1}): ${err.name}: ${err.message}\n  ${JSON.stringify(s.events.slice(-4))}`)
          await new Promise((r) => setTimeout(r, 3000))
          return undefined
        })
      }
      if (!m) throw new Error('no migration')
      v = await a.api.get<DeploymentView>(`/v1/deployments/${v.id}`)
      const next = addressOf(v)
      while (!(await ask(next)));
      const firstNew = performance.now()
      state.moving = false
      await poll
      actorDown.push(firstNew - lastOld)
      if (m.gapMs !== null) actorGap.push(m.gapMs)
    }
    await noir(a.home, 'stop', v.id)

    // baseline: a plain restart on one node (stop the allocation, start a fresh one of the same bundle, first answer)
    const actorRestart: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      const id = `bench-restart-${i}`
      const to = `${b.did}/alloc/${id}/workload`
      await b.api.post('/v1/allocations', { id, runtime: { kind: 'actor', bundle: tally }, resources: { cpu: 0.3, memory: '192MiB' } })
      await eventually(() => ask(to), 60_000, 100)
      const t0 = performance.now()
      await b.api.post(`/v1/allocations/${id}/stop`, { graceMs: 2000 })
      const id2 = `${id}-again`
      await b.api.post('/v1/allocations', { id: id2, runtime: { kind: 'actor', bundle: tally }, resources: { cpu: 0.3, memory: '192MiB' } })
      while (!(await ask(`${b.did}/alloc/${id2}/workload`)));
      actorRestart.push(performance.now() - t0)
      for (const x of [id, id2]) await b.api.request('DELETE', `/v1/allocations/${x}`).catch(() => undefined)
    }

    printSection('Migration of an SDK actor (real daemons, same run)', [
      { name: 'SDK actor migration downtime p50', value: median(actorDown), unit: 'ms', baseline: { name: 'restart on one node', value: median(actorRestart) }, better: 'lower', target: '< 200 ms' },
      { name: 'SDK actor migration gap (orchestrator) p50', value: median(actorGap), unit: 'ms', baseline: { name: 'restart on one node', value: median(actorRestart) }, better: 'lower' },
    ])
    console.log(`  (downtime of each round, ms: ${actorDown.map((x) => Math.round(x)).join(', ')})`)

  }
  if (parts.includes('container')) {
    // 2. container with a STATE_MIB MiB state directory: the orchestrator's gap
    writeFileSync(join(work, 'box.yaml'), [
      'apiVersion: noir/v1', 'kind: service', 'name: box',
      `runtime: { type: container, image: ${JSON.stringify(IMAGE)}, command: [sh, -c, "trap 'exit 0' TERM; [ -f /state/blob ] || head -c ${STATE_MIB * 1024 * 1024} /dev/urandom > /state/blob; touch /state/ready; while true; do sleep 0.1; done"] }`,
      'resources: { cpu: 0.3, memory: 64Mi }', 'constraints: { labels: { role: worker } }', 'stateDir: /state', '',
    ].join('\n'))
    const box = JSON.parse((await noir(a.home, 'deploy', join(work, 'box.yaml'), '--wait', '--json')).stdout) as DeploymentView
    const readyOn = async (d: DaemonHandle, contractId: string): Promise<boolean> => {
      const all = (await d.api.get<{ allocations: { id: string; spec: { stateDir: string } }[] }>('/v1/allocations')).allocations
      const al = all.find((x) => x.id === `c-${contractId}`)
      if (!al) return false
      return existsSync(join(al.spec.stateDir, 'ready'))
    }
    const byDid = (did: string | null): DaemonHandle => [b, c].find((d) => d.did === did)!
    await eventually(() => readyOn(byDid(box.replicas[0]!.node), box.replicas[0]!.contractId!), 120_000, 300)
    const boxGap: number[] = []
    const boxWall: number[] = []
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now()
      const m = await a.api.post<MigrationRecord>(`/v1/deployments/${box.id}/migrate`, {}).catch(async (err: Error & { data?: unknown }) => {
        const s = await a.api.get<DeploymentView>(`/v1/deployments/${box.id}`)
        console.log(`  container migration ${i} refused: ${err.name}: ${err.message}\n  ${JSON.stringify(s.events.slice(-6))}`)
        return undefined
      })
      if (!m) continue
      boxWall.push(performance.now() - t0)
      if (m.gapMs !== null) boxGap.push(m.gapMs)
    }
    await noir(a.home, 'stop', box.id)
    // baseline: the same container stopped and a fresh one started on one node (no state moved)
    const boxRestart: number[] = []
    for (let i = 0; i < 3; i++) {
      const id = `bench-box-${i}`
      const spec = { runtime: { kind: 'docker', image: IMAGE, command: ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 0.1; done"] }, resources: { cpu: 0.3, memory: '64MiB' } }
      await b.api.post('/v1/allocations', { id, ...spec })
      await eventually(async () => (await b.api.get<{ state: string }>(`/v1/allocations/${id}`)).state === 'running', 60_000, 100)
      const t0 = performance.now()
      await b.api.post(`/v1/allocations/${id}/stop`, { graceMs: 2000 })
      await b.api.post('/v1/allocations', { id: `${id}-again`, ...spec })
      await eventually(async () => (await b.api.get<{ state: string }>(`/v1/allocations/${id}-again`)).state === 'running', 60_000, 20)
      boxRestart.push(performance.now() - t0)
      for (const x of [id, `${id}-again`]) await b.api.request('DELETE', `/v1/allocations/${x}`).catch(() => undefined)
    }

    const figures: Figure[] = [
      { name: `container ${STATE_MIB} MiB stateDir gap p50`, value: median(boxGap), unit: 'ms', baseline: { name: 'restart on one node (no state)', value: median(boxRestart) }, better: 'lower' },
      { name: `container ${STATE_MIB} MiB migrate call p50`, value: median(boxWall), unit: 'ms', baseline: { name: 'restart on one node (no state)', value: median(boxRestart) }, better: 'lower' },
    ]
    printSection(`Migration of a container with a ${STATE_MIB} MiB stateDir (real daemons, same run)`, figures)
  }

  // 3. microVM with a state disk: QEMU save on the old node, the disk and the memory as one artifact, -incoming
  //    and cont on the new one; vs a fresh boot of the same guest on one node (its allocation stopped, a new one
  //    running its workload)
  if (parts.includes('microvm')) {
    const image = defaultMicrovmImage()
    if (!existsSync(image.kernel) || !existsSync(image.initrd)) {
      console.log('  microVM section skipped: no image (scripts/ci/images/microvm.sh)')
    } else {
      copyFileSync(image.kernel, join(work, 'kernel'))
      copyFileSync(image.initrd, join(work, 'initramfs.cpio.gz'))
      const counter = 'i=0; while :; do i=$((i+1)); echo "count $i"; sleep 0.5; done'
      writeFileSync(join(work, 'vm.yaml'), [
        'apiVersion: noir/v1', 'kind: service', 'name: vm-counter',
        `runtime: { type: microvm, kernel: ./kernel, initrd: ./initramfs.cpio.gz, stateDisk: ${VM_DISK_MIB}Mi, command: [sh, -c, ${JSON.stringify(counter)}] }`,
        `resources: { cpu: 1, memory: ${VM_MEMORY_MIB}Mi }`, 'constraints: { labels: { role: worker } }', '',
      ].join('\n'))
      const vm = JSON.parse((await noir(a.home, 'deploy', join(work, 'vm.yaml'), '--wait', '--json')).stdout) as DeploymentView
      const vmGap: number[] = []
      const vmWall: number[] = []
      const vmBytes: number[] = []
      for (let i = 0; i < 3; i++) {
        let m: MigrationRecord | undefined
        let t0 = 0
        // a bid can miss the short bid window on this loaded machine: asked again, as the actor rounds do
        for (let tries = 0; !m && tries < 5; tries++) {
          t0 = performance.now()
          m = await a.api.post<MigrationRecord>(`/v1/deployments/${vm.id}/migrate`, {}).catch(async (err: Error) => {
            console.log(`  microVM migration ${i} refused (try ${tries + 1}): ${err.name}: ${err.message}`)
            await new Promise((r) => setTimeout(r, 3000))
            return undefined
          })
        }
        if (!m) continue
        vmWall.push(performance.now() - t0)
        if (m.gapMs !== null) vmGap.push(m.gapMs)
        vmBytes.push(m.checkpoint?.bytes ?? 0)
      }
      await noir(a.home, 'stop', vm.id)
      const vmBoot: number[] = []
      const vmRuntime = { kind: 'microvm', kernel: image.kernel, initrd: image.initrd, command: ['sh', '-c', counter], stateDiskBytes: VM_DISK_MIB * 1024 * 1024 }
      for (let i = 0; i < 3; i++) {
        const id = `bench-vm-${i}`
        const spec = { runtime: vmRuntime, resources: { cpu: 1, memory: `${VM_MEMORY_MIB}MiB` } }
        await b.api.post('/v1/allocations', { id, ...spec })
        await eventually(async () => (await b.api.get<{ state: string }>(`/v1/allocations/${id}`)).state === 'running', 180_000, 100)
        const t0 = performance.now()
        await b.api.post(`/v1/allocations/${id}/stop`, { graceMs: 2000 })
        await b.api.post('/v1/allocations', { id: `${id}-again`, ...spec })
        await eventually(async () => (await b.api.get<{ state: string }>(`/v1/allocations/${id}-again`)).state === 'running', 180_000, 20)
        vmBoot.push(performance.now() - t0)
        for (const x of [id, `${id}-again`]) await b.api.request('DELETE', `/v1/allocations/${x}`).catch(() => undefined)
      }
      printSection(`Migration of a microVM (${VM_MEMORY_MIB} MiB guest, ${VM_DISK_MIB} MiB state disk; real daemons, same run)`, [
        { name: 'microVM migration gap (orchestrator) p50', value: median(vmGap), unit: 'ms', baseline: { name: 'fresh boot on one node (memory lost)', value: median(vmBoot) }, better: 'lower' },
        { name: 'microVM migrate call p50', value: median(vmWall), unit: 'ms', baseline: { name: 'fresh boot on one node (memory lost)', value: median(vmBoot) }, better: 'lower' },
      ])
      console.log(`  (gap of each round, ms: ${vmGap.map((x) => Math.round(x)).join(', ')}; fresh boots, ms: ${vmBoot.map((x) => Math.round(x)).join(', ')}; checkpoint bytes: ${vmBytes.join(', ')})`)
    }
  }

  // 4. a container under runsc counting in memory: the orchestrator's gap, its memory carried
  const noRunsc = runsc.missing()
  if (parts.includes('runsc') && noRunsc) console.log(`  runsc section skipped: ${noRunsc}`)
  if (parts.includes('runsc') && !noRunsc) {
    const script = "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i > /state/count; sleep 0.1; done"
    writeFileSync(join(work, 'counter.yaml'), [
      'apiVersion: noir/v1', 'kind: service', 'name: counter',
      `runtime: { type: container, image: ${JSON.stringify(IMAGE)}, checkpoint: process, command: [sh, -c, ${JSON.stringify(script)}] }`,
      'resources: { cpu: 0.5, memory: 128Mi }', 'constraints: { labels: { role: worker } }', 'stateDir: /state', '',
    ].join('\n'))
    const ctr = JSON.parse((await noir(a.home, 'deploy', join(work, 'counter.yaml'), '--wait', '--json')).stdout) as DeploymentView
    const runscGap: number[] = []
    const runscWall: number[] = []
    const runscBytes: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now()
      const m = await a.api.post<MigrationRecord>(`/v1/deployments/${ctr.id}/migrate`, {}).catch(async (err: Error) => {
        const s = await a.api.get<DeploymentView>(`/v1/deployments/${ctr.id}`)
        console.log(`  runsc migration ${i} refused: ${err.name}: ${err.message}\n  ${JSON.stringify(s.events.slice(-6))}`)
        return undefined
      })
      if (!m) continue
      runscWall.push(performance.now() - t0)
      if (m.gapMs !== null) runscGap.push(m.gapMs)
      runscBytes.push(m.checkpoint?.bytes ?? 0)
    }
    await noir(a.home, 'stop', ctr.id)
    // baseline: the same sandbox stopped and a fresh one running on one node (its count lost)
    const runscRestart: number[] = []
    for (let i = 0; i < 3; i++) {
      const id = `bench-runsc-${i}`
      const spec = { runtime: { kind: 'docker', image: IMAGE, runtime: 'runsc', command: ['sh', '-c', script] }, resources: { cpu: 0.5, memory: '128MiB' } }
      await b.api.post('/v1/allocations', { id, ...spec })
      await eventually(async () => (await b.api.get<{ state: string }>(`/v1/allocations/${id}`)).state === 'running', 60_000, 100)
      const t0 = performance.now()
      await b.api.post(`/v1/allocations/${id}/stop`, { graceMs: 2000 })
      await b.api.post('/v1/allocations', { id: `${id}-again`, ...spec })
      await eventually(async () => (await b.api.get<{ state: string }>(`/v1/allocations/${id}-again`)).state === 'running', 60_000, 20)
      runscRestart.push(performance.now() - t0)
      for (const x of [id, `${id}-again`]) await b.api.request('DELETE', `/v1/allocations/${x}`).catch(() => undefined)
    }
    printSection('Migration of a container under runsc with its memory (real daemons, same run)', [
      { name: 'runsc container migration gap p50 (memory carried)', value: median(runscGap), unit: 'ms', baseline: { name: 'runsc restart on one node (memory lost)', value: median(runscRestart) }, better: 'lower' },
      { name: 'runsc container migrate call p50', value: median(runscWall), unit: 'ms', baseline: { name: 'runsc restart on one node (memory lost)', value: median(runscRestart) }, better: 'lower' },
    ])
    console.log(`  (gap of each round, ms: ${runscGap.map((x) => Math.round(x)).join(', ')}; restarts, ms: ${runscRestart.map((x) => Math.round(x)).join(', ')}; checkpoint bytes: ${runscBytes.join(', ')})`)
  }
} finally {
  const dids = cluster.daemons.map((d) => d.did)
  await cluster.cleanup()
  await removeNodeContainers(dids)
  rmSync(work, { recursive: true, force: true })
}
