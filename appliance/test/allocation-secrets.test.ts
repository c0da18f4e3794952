// Allocations with secrets (spec/appliance.md, spec/secrets.md) on a real ActorSystem, level store and Docker:
// a secret reaches the container (as a variable, and as a file on a tmpfs that Docker's own store never holds)
// but never the allocation's record; it is asked again at each launch; RESTART relaunches in place without
// using the restart policy's budget; after a daemon restart (no source in memory) a launch fails instead of
// starting without its secrets.
import t, { type Test } from 'tap'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { ActorSystem, LevelKvStore } from '../../core/index.ts'
import { NodeKey } from '../../identity/keys.ts'
import { Allocator } from '../allocator/allocator.ts'
import { AllocationManager } from '../allocation/allocation-manager.ts'
import { DockerExecutor } from '../executor/docker/docker-executor.ts'
import { secretFilesDir } from '../executor/docker/secret-files.ts'
import { WasmExecutor } from '../executor/wasm/wasm-executor.ts'
import { wasmFixture } from './wasm-fixtures.ts'
import { writeFileSync } from 'node:fs'
import { parseShare } from '../share/share.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'

const MiB = 1024 * 1024
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

async function node(t: Test, ex: DockerExecutor | WasmExecutor, home: string, key: NodeKey) {
  const db = new Level<string, unknown>(join(home, 'data'), { valueEncoding: 'json' })
  await db.open()
  const system = new ActorSystem({ key })
  await system.start()
  const allocator = new Allocator({ store: new LevelKvStore(db.sublevel<string, unknown>('svc:allocator', { valueEncoding: 'json' })), share: parseShare('cpu=2,memory=512MiB,disk=1GiB,gpu=0'), portRange: [42100, 42199] })
  await allocator.open()
  const manager = new AllocationManager({ system, executors: ex instanceof WasmExecutor ? { wasm: ex } : { docker: ex }, allocator, store: new LevelKvStore(db.sublevel<string, unknown>('svc:allocations', { valueEncoding: 'json' })), stateRoot: join(home, 'allocations') })
  await manager.start()
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await manager.stop()
    await system.stop()
    await db.close()
  }
  t.teardown(close)
  return { manager, close }
}

const logText = async (m: AllocationManager, id: string): Promise<string> => {
  let out = ''
  for await (const l of m.logs(id, { follow: false })) out += `${l.line}\n`
  return out
}

async function until(fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  // a container being replaced answers its logs with an error for a moment: that is "not yet"
  while (!(await fn().catch(() => false))) {
    if (Date.now() > end) throw new Error('condition not met')
    await new Promise((r) => setTimeout(r, 200))
  }
}

t.test('docker: secrets reach the container at each launch and never the record; files stay off Docker\'s store; RESTART relaunches in place', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage('noir/busybox:latest'))) return
  const ex = new DockerExecutor({ nodeId: `alloc-secret-${randomUUID().slice(0, 8)}` })
  t.teardown(async () => {
    for (const h of await ex.list()) await ex.remove(h)
  })
  const home = mkdtempSync(join(tmpdir(), 'noir-alloc-secrets-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const key = NodeKey.generate()
  const n = await node(t, ex, home, key)
  const values = [`one-${randomBytes(12).toString('hex')}`, `two-${randomBytes(12).toString('hex')}`]
  const fileValue = `file-${randomBytes(12).toString('hex')}`
  let asked = 0
  const rec = await n.manager.create({
    runtime: { kind: 'docker', image: 'noir/busybox:latest', command: ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do echo "h $(printf %s "$S" | sha256sum | cut -d" " -f1) f $(sha256sum < /run/secrets/f | cut -d" " -f1)"; sleep 0.2 & wait $!; done'] },
    resources: { cpu: 0.2, memoryBytes: 32 * MiB },
    env: { PLAIN: 'visible' },
    restart: { policy: 'always', maxRestarts: 0 },
    graceMs: 2000,
    secrets: async () => ({ env: { S: values[Math.min(asked++, values.length - 1)]! }, files: { '/run/secrets/f': fileValue } }),
  })
  t.equal(rec.secrets, true, 'the record says it has secrets')
  t.same(rec.spec.env, { PLAIN: 'visible' }, 'its spec holds the plain env only')
  await n.manager.waitFor(rec.id, (s) => s === 'running')
  await until(async () => (await logText(n.manager, rec.id)).includes(`h ${sha(values[0]!)} f ${sha(fileValue)}`))
  t.equal(asked, 1, 'asked once for the first launch')
  const dir = secretFilesDir(ex.nodeId, rec.id)
  t.equal(statSync(dir).mode & 0o777, 0o700, 'the host folder of its secret files is root\'s alone')
  const inspect = spawnSync('docker', ['inspect', n.manager.get(rec.id).handle!.ref], { encoding: 'utf8' }).stdout
  t.match(inspect, /\/run\/secrets\/f/, 'Docker knows the mount')
  t.notOk(inspect.includes(fileValue), 'but not the file\'s value')

  t.equal(n.manager.restart(rec.id), true)
  await until(async () => (await logText(n.manager, rec.id)).includes(`h ${sha(values[1]!)}`))
  t.equal(asked, 2, 'asked again for the relaunch')
  const after = n.manager.get(rec.id)
  t.same([after.state, after.restarts], ['running', 0], 'running again, and the restart policy\'s budget (0) untouched')

  // nothing NoirLedger wrote holds a value
  for (const e of readdirSync(home, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name)
    if (!statSync(p).isFile()) continue
    const text = readFileSync(p).toString('latin1')
    for (const v of values) t.notOk(text.includes(v), `${p} does not hold a value`)
  }

  // a daemon restart: the container is re-attached, but this process has no source for its secrets
  await n.close()
  const again = await node(t, ex, home, key)
  await again.manager.waitFor(rec.id, (s) => s === 'running')
  t.equal(again.manager.restart(rec.id), true)
  const ended = await again.manager.waitFor(rec.id, (s) => s === 'failed' || s === 'stopped' || s === 'exited')
  t.equal(ended.state, 'failed', 'a launch without its secrets fails instead of starting without them')
  t.match(ended.reason, /InvalidAllocationError: .*its secrets are delivered at start/)
  await again.manager.remove(rec.id)
  t.notOk(existsSync(dir), 'its secret files are gone with it')
})

t.test('wasm: the secret env reaches the module (which prints its environment) and not the record', async (t) => {
  const ex = new WasmExecutor()
  t.teardown(() => ex.close())
  const home = mkdtempSync(join(tmpdir(), 'noir-alloc-secrets-wasm-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const module = join(home, 'env.wasm')
  writeFileSync(module, wasmFixture('env'))
  const n = await node(t, ex, home, NodeKey.generate())
  const value = `wasm-${randomBytes(12).toString('hex')}`
  const rec = await n.manager.create({ runtime: { kind: 'wasm', module }, resources: { cpu: 0.1, memoryBytes: 16 * MiB }, env: { PLAIN: 'visible' }, secrets: async () => ({ env: { S: value }, files: {} }) })
  t.same(rec.spec.env, { PLAIN: 'visible' })
  const end = await n.manager.waitFor(rec.id, (s) => s === 'exited' || s === 'failed')
  t.equal(end.state, 'exited')
  t.match(await logText(n.manager, rec.id), value, 'the module saw the value (this fixture prints its environment)')
  t.notOk(JSON.stringify(n.manager.get(rec.id)).includes(value), 'the record does not hold it')
  await n.manager.remove(rec.id)
})
