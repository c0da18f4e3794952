// The actor executor: an SDK actor bundle in its own Node child process under the permission model,
// joined to the node's ActorSystem through a proxy actor and an IPC channel (spec/actor-executor.md).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ActorSystem } from '../../../core/actor-system.ts'
import type { SnapshotStore, StoredSnapshot } from '../../../core/snapshot-store.ts'
import type { ActorRef } from '../../../core/types.ts'
import { fromWireError, toWireError } from '../../../core/wire-error.ts'
import type { Availability, ExecHandle, ExecSpec, Executor, ExitStatus, LogLine, UsageStats } from '../executor.ts'
import { DEFAULT_PIDS_LIMIT, MIN_CPU } from '../executor.ts'
import { InvalidExecSpecError, UnknownInstanceError } from '../../errors.ts'
import { LineLog, LineSplitter } from '../microvm/line-log.ts'
import { ProcessCgroup } from '../microvm/process-cgroup.ts'
import { readProcessUsage } from '../microvm/proc-usage.ts'
import { hasSetpriv } from '../microvm/microvm-executor.ts'
import { CachedProbe, probeCommand } from '../probe.ts'
import { ActorBundleError, ActorWorkloadEndedError } from './errors.ts'
import { SNAPSHOT_FILE, type FromSandbox, type ToSandbox } from './protocol.ts'
import { proxyDefinition, type ForwardEvent } from './proxy.ts'
import { hostPidOf, jailArgs, SANDBOX_GID, SANDBOX_UID } from './sandbox-jail.ts'
import { siblingModule } from '../../../core/module-url.ts'

const here = dirname(fileURLToPath(import.meta.url))
const repoRoot = resolve(here, '../../..')
const HOST = fileURLToPath(siblingModule(import.meta.url, './sandbox-host.ts'))
const HOOKS = fileURLToPath(siblingModule(import.meta.url, './sandbox-hooks.ts'))
/** The node_modules folder packages resolve from (the repo's own, or the one this package is installed in). */
function packagesDir(): string {
  const xstate = fileURLToPath(import.meta.resolve('xstate'))
  const i = xstate.lastIndexOf(`${sep}node_modules${sep}`)
  return i >= 0 ? xstate.slice(0, i + `${sep}node_modules`.length) : join(repoRoot, 'node_modules')
}
/** What the sandbox may read besides the bundle's folder and its state dir: the runtime's own code. */
const RUNTIME_READ = [...new Set([join(repoRoot, 'core'), join(repoRoot, 'identity'), here, packagesDir(), join(repoRoot, 'node_modules'), join(repoRoot, 'package.json')])]

export interface ActorPlacement {
  /** Path of the parent actor in the node's system (e.g. `alloc/<id>`); none = top level. */
  parent?: string
  name: string
}

export interface ActorExecutorInit {
  /** The node's ActorSystem: the workload's proxy lives there, and its outbound messages leave from there. */
  system?: ActorSystem
  /** Where the workload's proxy is spawned. Default: see `defaultPlacement`. */
  place?: (allocationId: string, system: ActorSystem) => ActorPlacement
  /** Mirror of snapshots saved on stop, keyed by allocation id; used on start when the state dir has none. */
  snapshots?: SnapshotStore
  /** Node binary for the sandbox (default: this process' own, so the same Node version). */
  nodeBinary?: string
  /** How long start() waits for the bundle to load. Default 60 s. */
  startTimeoutMs?: number
  /** With network 'none', run the child in a new network namespace via bubblewrap when `bwrap` works. Default true. */
  isolateNetwork?: boolean
  /** Save each running actor's snapshot to its state dir (and `snapshots`) this often. Default: only on stop / checkpoint(). */
  checkpointEveryMs?: number
}

/**
 * `<nodeDid>/alloc/<id>/workload` when the allocation actor `alloc/<id>` exists, `<nodeDid>/alloc/<id>`
 * when only the `alloc` parent exists, `<nodeDid>/actor-<id>` otherwise.
 */
export function defaultPlacement(allocationId: string, system: ActorSystem): ActorPlacement {
  if (system.lookup(`alloc/${allocationId}`) !== undefined) return { parent: `alloc/${allocationId}`, name: 'workload' }
  if (system.lookup('alloc') !== undefined) return { parent: 'alloc', name: allocationId }
  return { name: `actor-${allocationId}` }
}

interface Instance {
  handle: ExecHandle
  spec: ExecSpec
  bundle: string
  log: LineLog
  child?: ChildProcess
  /** The Node process itself (under bwrap, not the child's pid). */
  pid?: number
  /** Whether it runs in the bubblewrap jail (then it reports its pid in its own PID namespace). */
  jailed?: boolean
  cgroup?: ProcessCgroup
  started?: Promise<void>
  proxy?: ActorRef
  address?: string
  pending: Map<number, Pick<ForwardEvent, 'respond' | 'fail' | 'expectsReply'>>
  checkpoints: Map<number, { resolve: (r: StoredSnapshot) => void; reject: (e: Error) => void }>
  nextId: number
  stopRequested: boolean
  killedBy?: 'stop' | 'cpu-time'
  ended?: Extract<FromSandbox, { t: 'ended' }>
  stderrTail: string
  exit?: ExitStatus
  exited: Promise<ExitStatus>
  resolveExit: (s: ExitStatus) => void
  lastUsage?: UsageStats
  cpuWatch?: NodeJS.Timeout
  checkpointTimer?: NodeJS.Timeout
  storeSave?: Promise<void>
  /** A warm start's sandbox (spawned by warm(), bundle loaded, actor not started), adopted by prepare(). */
  boot?: Booted
  warmTimer?: NodeJS.Timeout
}

/** A sandbox spawned and wired (messages, exit, logs): what #launch (or warm()) waits on next. */
interface Booted {
  ready: Promise<Extract<FromSandbox, { t: 'ready' }>>
  loaded: Promise<void>
  spawnError: Promise<Error>
  placement: ActorPlacement | undefined
  address: string | undefined
  /** Set by #launch before `begin`: the snapshot from the store when the state dir has none. */
  snapshot?: StoredSnapshot
}

/** How long a warm sandbox waits for its allocation before it is ended. Default 120 s. */
const WARM_TTL_MS = 120_000

let bwrapWorks: boolean | undefined
function bwrapAvailable(): boolean {
  bwrapWorks ??= spawnSync('bwrap', jailArgs({ readOnly: [], stateDir: tmpdir(), network: false }, ['true']), { stdio: 'ignore', timeout: 10_000 }).status === 0
  return bwrapWorks
}

/** Hands a state directory to the sandbox's user without following any link planted in it. */
function chownTree(dir: string, uid: number, gid: number): void {
  const st = lstatSync(dir)
  if (st.isSymbolicLink()) throw new InvalidExecSpecError(`state directory '${dir}' is a symbolic link`)
  lchownSync(dir, uid, gid)
  chmodSync(dir, 0o700)
  if (!st.isDirectory()) return
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) chownTree(p, uid, gid)
    else lchownSync(p, uid, gid)
  }
}

export class ActorExecutor implements Executor {
  readonly kind = 'actor' as const
  readonly #instances = new Map<string, Instance>()
  /** Warm sandboxes by allocation id (spec/migration.md "Handover"): not yet an instance anyone prepared. */
  readonly #warm = new Map<string, { inst: Instance; key: string; loaded: Promise<void> }>()
  readonly #system: ActorSystem | undefined
  readonly #place: (allocationId: string, system: ActorSystem) => ActorPlacement
  readonly #snapshots: SnapshotStore | undefined
  readonly #node: string
  readonly #startTimeoutMs: number
  readonly #isolateNetwork: boolean
  readonly #checkpointEveryMs: number | undefined

  constructor(init: ActorExecutorInit = {}) {
    this.#system = init.system
    this.#place = init.place ?? defaultPlacement
    this.#snapshots = init.snapshots
    this.#node = init.nodeBinary ?? process.execPath
    this.#startTimeoutMs = init.startTimeoutMs ?? 60_000
    this.#isolateNetwork = init.isolateNetwork ?? true
    this.#checkpointEveryMs = init.checkpointEveryMs
  }

  async available(): Promise<Availability> {
    return this.#availability.get()
  }

  readonly #availability = new CachedProbe<Availability>(async () => {
    const r = await probeCommand('env', ['-u', 'NODE_OPTIONS', this.#node, '--permission', '-e', '0'])
    return r.ok ? { ok: true } : { ok: false, reason: `${this.#node} has no working permission model (Node >= 22 needed): ${r.reason ?? ''}` }
  })

  async prepare(spec: ExecSpec): Promise<ExecHandle> {
    this.#check(spec)
    const bundle = resolve((spec.runtime as Extract<ExecSpec['runtime'], { kind: 'actor' }>).bundle)
    if (!existsSync(bundle) || !statSync(bundle).isFile()) throw new ActorBundleError(bundle, 'no such file')
    mkdirSync(spec.stateDir, { recursive: true })
    if (!statSync(spec.stateDir).isDirectory()) throw new InvalidExecSpecError(`state directory '${spec.stateDir}' is not a directory`)
    const warm = this.#warm.get(spec.allocationId)
    if (warm !== undefined) {
      this.#warm.delete(spec.allocationId)
      clearTimeout(warm.inst.warmTimer)
      // the same sandbox only for the very same spec (bundle, env, limits, state dir); anything else starts cold
      if (warm.key === warmKey(spec) && warm.inst.exit === undefined && (await warm.loaded.then(() => true, () => false)) && warm.inst.exit === undefined) {
        this.#instances.set(warm.inst.handle.ref, warm.inst)
        return warm.inst.handle
      }
      warm.inst.stopRequested = true
      this.#kill(warm.inst, 'stop')
      await warm.inst.exited // its cgroup is gone before the new instance makes one of the same name
    }
    const handle: ExecHandle = { allocationId: spec.allocationId, kind: 'actor', ref: `actor-${spec.allocationId}-${randomUUID().slice(0, 8)}` }
    let resolveExit!: (s: ExitStatus) => void
    const exited = new Promise<ExitStatus>((r) => (resolveExit = r))
    this.#instances.set(handle.ref, {
      handle, spec, bundle, log: new LineLog(), pending: new Map(), checkpoints: new Map(), nextId: 0,
      stopRequested: false, stderrTail: '', exited, resolveExit,
    })
    return handle
  }

  #check(spec: ExecSpec): void {
    const rt = spec.runtime
    if (rt.kind !== 'actor') throw new InvalidExecSpecError(`the actor executor cannot run a '${rt.kind}' runtime`)
    if ([...this.#instances.values()].some((i) => i.spec.allocationId === spec.allocationId)) {
      throw new InvalidExecSpecError(`allocation '${spec.allocationId}' already has an actor instance`)
    }
    if (!(spec.limits.memoryBytes >= 64 * 1024 * 1024)) throw new InvalidExecSpecError('an actor needs limits.memoryBytes >= 64 MiB (a Node process)')
    if (!(spec.limits.cpu >= MIN_CPU)) throw new InvalidExecSpecError(`limits.cpu must be at least ${MIN_CPU}`)
  }

  /**
   * A migration's warm start (spec/migration.md "Handover"): the sandbox of an allocation that is not created
   * yet is spawned now, in its cgroup, with its bundle loaded and its ActorSystem up, but its actor not
   * started. prepare() of the same allocation with the very same spec adopts it, and start() then only says
   * `begin` (the actor starts from the snapshot its state directory holds by then). Resolves once the bundle
   * is loaded; asked again for the same allocation, the same answer. Not adopted within `ttlMs`: ended.
   */
  warm(spec: ExecSpec, o: { ttlMs?: number } = {}): Promise<void> {
    const kept = this.#warm.get(spec.allocationId)
    if (kept !== undefined) return kept.loaded
    this.#check(spec)
    const bundle = resolve((spec.runtime as Extract<ExecSpec['runtime'], { kind: 'actor' }>).bundle)
    if (!existsSync(bundle) || !statSync(bundle).isFile()) return Promise.reject(new ActorBundleError(bundle, 'no such file'))
    mkdirSync(spec.stateDir, { recursive: true })
    const handle: ExecHandle = { allocationId: spec.allocationId, kind: 'actor', ref: `actor-${spec.allocationId}-${randomUUID().slice(0, 8)}` }
    let resolveExit!: (s: ExitStatus) => void
    const exited = new Promise<ExitStatus>((r) => (resolveExit = r))
    const inst: Instance = {
      handle, spec, bundle, log: new LineLog(), pending: new Map(), checkpoints: new Map(), nextId: 0,
      stopRequested: false, stderrTail: '', exited, resolveExit,
    }
    const boot = this.#boot(inst, true)
    inst.boot = boot
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), this.#startTimeoutMs)))
    const loaded = Promise.race([boot.loaded, inst.exited, boot.spawnError, timeout]).then((r) => {
      clearTimeout(timer)
      if (r === undefined) return
      this.#kill(inst, 'stop')
      if (r === 'timeout') throw new ActorBundleError(bundle, `its bundle did not load within ${this.#startTimeoutMs} ms`)
      if (r instanceof Error) throw new ActorBundleError(bundle, `the sandbox could not start: ${r.message}`)
      if (inst.ended?.error !== undefined) throw fromWireError(inst.ended.error)
      throw new ActorBundleError(bundle, `the sandbox ended before its bundle loaded: ${inst.stderrTail.trim().split('\n').slice(-3).join(' | ')}`)
    })
    loaded.catch(() => undefined)
    this.#warm.set(spec.allocationId, { inst, key: warmKey(spec), loaded })
    inst.warmTimer = setTimeout(() => void this.discardWarm(spec.allocationId), o.ttlMs ?? WARM_TTL_MS)
    inst.warmTimer.unref()
    return loaded
  }

  /** Ends a warm sandbox no allocation adopted (the migration was abandoned); nothing when there is none. */
  async discardWarm(allocationId: string): Promise<void> {
    const w = this.#warm.get(allocationId)
    if (w === undefined) return
    this.#warm.delete(allocationId)
    clearTimeout(w.inst.warmTimer)
    w.inst.stopRequested = true
    this.#kill(w.inst, 'stop')
    await w.inst.exited
  }

  /** Whether a warm sandbox waits for this allocation (tests, status). */
  isWarm(allocationId: string): boolean {
    return this.#warm.has(allocationId)
  }

  /** Resolves once the bundle is loaded, its actor runs, and its proxy is addressable on the node. */
  start(handle: ExecHandle): Promise<void> {
    const inst = this.#get(handle)
    inst.started ??= this.#launch(inst)
    return inst.started
  }

  /** The workload's address on the node (set once started with a system). */
  addressOf(handle: ExecHandle): string | undefined {
    return this.#get(handle).address
  }

  async #launch(inst: Instance): Promise<void> {
    if (inst.exit !== undefined) throw new ActorWorkloadEndedError(inst.handle.allocationId, `it already ended (${inst.exit.reason})`)
    const { spec } = inst
    const warm = inst.boot !== undefined
    let snapshot: StoredSnapshot | undefined
    if (this.#snapshots !== undefined && !existsSync(join(spec.stateDir, SNAPSHOT_FILE))) snapshot = await this.#snapshots.load(spec.allocationId)
    let boot: Booted
    if (inst.boot !== undefined) {
      // the allocation exists now: its proxy's place (and so the actor's address) is known
      boot = { ...inst.boot, ...this.#where(spec.allocationId) }
      // the state directory was filled (the old replica's snapshot unpacked) after the sandbox was spawned
      if (inst.jailed) chownTree(spec.stateDir, SANDBOX_UID, SANDBOX_GID)
      this.#send(inst, { t: 'begin', ...(snapshot !== undefined ? { snapshot } : {}), ...(boot.address !== undefined ? { address: boot.address } : {}) })
    } else {
      boot = this.#boot(inst, false)
      boot.snapshot = snapshot
    }
    const { ready, spawnError, placement, address } = boot
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), this.#startTimeoutMs)))
    try {
      const r = await Promise.race([ready, inst.exited, spawnError, timeout])
      if (r === 'timeout') {
        this.#kill(inst, 'stop')
        throw new ActorBundleError(inst.bundle, `it did not start within ${this.#startTimeoutMs} ms${warm ? ' (warm sandbox)' : ''}`)
      }
      if (r instanceof Error) throw new ActorBundleError(inst.bundle, `the sandbox could not start: ${r.message}`)
      if ('reason' in r) {
        if (inst.stopRequested) return
        if (inst.ended?.error !== undefined) throw fromWireError(inst.ended.error)
        throw new ActorBundleError(inst.bundle, `the sandbox ended before its actor started: ${inst.stderrTail.trim().split('\n').slice(-3).join(' | ')}`)
      }
      if (this.#system !== undefined && placement !== undefined && address !== undefined) {
        inst.address = address
        const parent = placement.parent !== undefined ? this.#system.lookup(placement.parent) : undefined
        if (placement.parent !== undefined && parent === undefined) {
          this.#kill(inst, 'stop')
          throw new ActorWorkloadEndedError(address, `its parent actor ${placement.parent} is gone`)
        }
        inst.proxy = this.#system.spawn(proxyDefinition(spec.allocationId, r.behaviors, { forward: (e) => this.#forward(inst, e) }), {
          name: placement.name,
          ...(parent !== undefined ? { parent } : {}),
        })
      }
      if (this.#checkpointEveryMs !== undefined && this.#checkpointEveryMs > 0) {
        inst.checkpointTimer = setInterval(() => {
          this.checkpoint(inst.handle).then(
            (record) => this.#snapshots?.save(spec.allocationId, record),
            () => undefined,
          ).catch(() => undefined)
        }, this.#checkpointEveryMs)
        inst.checkpointTimer.unref()
      }
    } finally {
      clearTimeout(timer)
    }
  }

  #where(allocationId: string): { placement: ActorPlacement | undefined; address: string | undefined } {
    if (this.#system === undefined) return { placement: undefined, address: undefined }
    const placement = this.#place(allocationId, this.#system)
    return { placement, address: `${this.#system.did}/${placement.parent !== undefined ? `${placement.parent}/` : ''}${placement.name}` }
  }

  /**
   * Spawns the sandbox (in the jail when it works) and wires its messages, logs and exit. `hold`: it loads
   * its bundle and waits for `begin` (a warm start) instead of starting its actor at once.
   */
  #boot(inst: Instance, hold: boolean): Booted {
    const { spec } = inst
    const rt = spec.runtime as Extract<ExecSpec['runtime'], { kind: 'actor' }>
    const memMiB = Math.floor(spec.limits.memoryBytes / (1024 * 1024))
    const reads = [dirname(inst.bundle), spec.stateDir, ...RUNTIME_READ]
    const nodeArgs = [
      '--permission',
      ...reads.map((d) => `--allow-fs-read=${d}`),
      `--allow-fs-write=${spec.stateDir}`,
      // V8's heap gets most of the limit; the cgroup holds the whole process to it.
      `--max-old-space-size=${Math.max(16, Math.floor(memMiB * 0.75))}`,
      '--disable-warning=ExperimentalWarning',
      `--import=${HOOKS}`,
      HOST,
      inst.bundle,
    ]
    // a warm sandbox learns its address with `begin`: where its proxy goes is known only once its allocation is
    const { placement, address } = hold ? { placement: undefined, address: undefined } : this.#where(spec.allocationId)
    // Only what the spec gives, plus the sandbox's own variables: the node's environment (and any secret in it) stays out.
    const env: Record<string, string> = {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      ...spec.env,
      NOIR_STATE_DIR: spec.stateDir,
      NOIR_ALLOCATION_ID: spec.allocationId,
      ...(address !== undefined ? { NOIR_ACTOR_ADDRESS: address } : {}),
      ...(rt.args !== undefined ? { NOIR_ACTOR_INPUT: JSON.stringify({ args: rt.args }) } : {}),
    }
    const useBwrap = this.#isolateNetwork && bwrapAvailable()
    // `env -u NODE_OPTIONS`: no preload from the environment reaches the sandbox (test runners and
    // instrumentation inject NODE_OPTIONS into every child they see spawned, after our env is built).
    // setpriv --pdeathsig: the sandbox dies with the node (both exec, so the pid stays the Node process').
    const sandboxed = [...(hasSetpriv() ? ['setpriv', '--pdeathsig', 'SIGKILL', '--'] : []), 'env', '-u', 'NODE_OPTIONS', this.#node, ...nodeArgs]
    if (useBwrap) chownTree(spec.stateDir, SANDBOX_UID, SANDBOX_GID)
    inst.jailed = useBwrap
    const [cmd, args] = useBwrap
      ? ['bwrap', jailArgs({ readOnly: [...reads.filter((r) => r !== spec.stateDir), dirname(realpathSync(this.#node))], stateDir: spec.stateDir, network: spec.network !== 'none' }, ['env', '-u', 'NODE_OPTIONS', realpathSync(this.#node), ...nodeArgs])]
      : [sandboxed[0]!, sandboxed.slice(1)]
    const child = spawn(cmd, args as string[], { cwd: spec.stateDir, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' })
    inst.child = child
    inst.cgroup = ProcessCgroup.create(`noir-actor-${spec.allocationId}`, { cpu: spec.limits.cpu, memoryBytes: spec.limits.memoryBytes, pids: spec.limits.pids ?? DEFAULT_PIDS_LIMIT })
    const out = new LineSplitter((line) => inst.log.push({ ts: Date.now(), stream: 'stdout', line }))
    const err = new LineSplitter((line) => {
      inst.stderrTail = `${inst.stderrTail}${line}\n`.slice(-4000)
      inst.log.push({ ts: Date.now(), stream: 'stderr', line })
    })
    child.stdout?.on('data', (d: Buffer) => out.write(d))
    child.stderr?.on('data', (d: Buffer) => err.write(d))

    let readyResolve!: (b: Extract<FromSandbox, { t: 'ready' }>) => void
    const ready = new Promise<Extract<FromSandbox, { t: 'ready' }>>((r) => (readyResolve = r))
    let loadedResolve!: () => void
    const loaded = new Promise<void>((r) => (loadedResolve = r))
    const booted: Booted = { ready, loaded, spawnError: new Promise<Error>((r) => child.once('error', r)), placement, address }
    child.on('message', (m: FromSandbox) => this.#onMessage(inst, m, readyResolve, loadedResolve, booted, hold))
    child.once('close', (code, signal) => {
      out.end()
      err.end()
      this.#onChildExit(inst, code, signal)
    })
    if (spec.limits.cpuTimeMs !== undefined) this.#watchCpuTime(inst, spec.limits.cpuTimeMs)
    return booted
  }

  #onMessage(inst: Instance, m: FromSandbox, ready: (m: Extract<FromSandbox, { t: 'ready' }>) => void, loaded: () => void, boot: Booted, hold: boolean): void {
    switch (m.t) {
      case 'hello':
        // In the jail it reports its pid in its own PID namespace: find the host's pid for it.
        inst.pid = inst.jailed ? (hostPidOf(inst.child!.pid!, m.pid) ?? -1) : m.pid
        try {
          if (inst.pid > 0) inst.cgroup?.add(inst.pid)
        } catch {
          // it may have exited already; its exit is reported
        }
        this.#send(inst, hold ? { t: 'go', hold: true } : { t: 'go', ...(boot.snapshot !== undefined ? { snapshot: boot.snapshot } : {}) })
        return
      case 'loaded':
        loaded()
        return
      case 'ready':
        ready(m)
        return
      case 'answer': {
        const p = inst.pending.get(m.id)
        if (p === undefined) return
        inst.pending.delete(m.id)
        if (m.ok) p.respond(m.value)
        else p.fail(fromWireError(m.error))
        return
      }
      case 'send':
        this.#outbound(inst, m)
        return
      case 'checkpointed': {
        const c = inst.checkpoints.get(m.id)
        if (c === undefined) return
        inst.checkpoints.delete(m.id)
        if (m.ok) c.resolve(m.record)
        else c.reject(fromWireError(m.error))
        return
      }
      case 'snapshot':
        // The exit status waits for this save, so a stopped instance's snapshot is in the store when stop() returns.
        if (this.#snapshots !== undefined) inst.storeSave = this.#snapshots.save(inst.spec.allocationId, m.record).catch(() => undefined)
        return
      case 'ended':
        inst.ended = m
        return
    }
  }

  /** A message the node accepted for the workload (the proxy's action). */
  #forward(inst: Instance, e: ForwardEvent): void {
    if (inst.exit !== undefined || inst.child === undefined || !inst.child.connected) {
      if (e.expectsReply) e.fail(new ActorWorkloadEndedError(inst.address ?? inst.handle.allocationId, inst.exit?.reason ?? 'not started'))
      return
    }
    const id = ++inst.nextId
    if (e.expectsReply) inst.pending.set(id, e)
    this.#send(inst, { t: 'deliver', id, behavior: e.behavior, body: e.body, from: e.from, ask: e.expectsReply })
  }

  /** A message the workload sends: it leaves from the node's system, from the workload's own address. */
  #outbound(inst: Instance, m: Extract<FromSandbox, { t: 'send' }>): void {
    const fail = (err: unknown): void => this.#send(inst, { t: 'reply', id: m.id, ok: false, error: toWireError(err) })
    if (this.#system === undefined || inst.address === undefined) {
      return fail(new ActorWorkloadEndedError(m.to, 'this executor has no node ActorSystem to send through'))
    }
    // Deny by default: the workload's code is not the node's, so its messages are marked untrusted: the node's
    // own actors check its capabilities like a remote sender's, whatever the node's localPolicy
    // (spec/actor-executor.md). Other nodes always check.
    const options = { from: inst.address, untrusted: true, ...(m.proofs ? { proofs: m.proofs } : {}), ...(m.timeoutMs !== undefined ? { timeoutMs: m.timeoutMs } : {}) }
    if (!m.ask) {
      // a refusal known before the hand-off (a missing capability included) goes back to the workload
      this.#system.send(m.to, m.behavior, m.body, options).catch(fail)
      return
    }
    this.#system.ask(m.to, m.behavior, m.body, options).then((value) => this.#send(inst, { t: 'reply', id: m.id, ok: true, value }), fail)
  }

  #send(inst: Instance, m: ToSandbox): void {
    if (inst.child?.connected) inst.child.send(m, (err) => void err)
  }

  #onChildExit(inst: Instance, code: number | null, signal: NodeJS.Signals | null): void {
    clearInterval(inst.cpuWatch)
    clearInterval(inst.checkpointTimer)
    const finishedAt = Date.now()
    const oom = (inst.cgroup?.oomKills() ?? 0) > 0 || /Reached heap limit|JavaScript heap out of memory/.test(inst.stderrTail)
    let status: ExitStatus
    if (inst.killedBy === 'stop') status = { code: null, signal: 'SIGKILL', oomKilled: false, reason: 'killed', finishedAt }
    else if (inst.killedBy === 'cpu-time') status = { code: null, signal: 'SIGKILL', oomKilled: false, reason: 'cpu-time', message: 'the actor used up its CPU time budget', finishedAt }
    else if (oom) status = { code, ...(signal !== null ? { signal } : {}), oomKilled: true, reason: 'oom', finishedAt }
    else if (inst.ended?.kind === 'crashed' && inst.ended.error !== undefined) {
      status = { code, oomKilled: false, reason: 'error', message: `${inst.ended.error.name}: ${inst.ended.error.message}`, finishedAt }
    } else {
      status = { code, ...(signal !== null ? { signal } : {}), oomKilled: false, reason: inst.stopRequested && code === 0 ? 'stopped' : 'exited', finishedAt }
    }
    const gone = new ActorWorkloadEndedError(inst.address ?? inst.handle.allocationId, status.reason)
    for (const p of inst.pending.values()) if (p.expectsReply) p.fail(gone)
    inst.pending.clear()
    for (const c of inst.checkpoints.values()) c.reject(gone)
    inst.checkpoints.clear()
    if (inst.proxy !== undefined && this.#system !== undefined) void this.#system.stopActor(inst.proxy).catch(() => undefined)
    inst.proxy = undefined
    inst.lastUsage = { ...(inst.lastUsage ?? this.#zeroUsage(inst)), ts: finishedAt, memoryBytes: 0 }
    inst.cgroup?.remove()
    if (inst.storeSave === undefined) this.#settle(inst, status)
    else void inst.storeSave.finally(() => this.#settle(inst, status))
  }

  #settle(inst: Instance, status: ExitStatus): void {
    if (inst.exit !== undefined) return
    inst.exit = status
    inst.log.close()
    inst.resolveExit(status)
  }

  #kill(inst: Instance, why: 'stop' | 'cpu-time'): void {
    if (inst.child === undefined || inst.exit !== undefined) return
    inst.killedBy ??= why
    inst.child.kill('SIGKILL')
    // Under bwrap the Node process is a grandchild; --die-with-parent ends it, and so does this.
    if (inst.pid !== undefined && inst.pid !== inst.child.pid) {
      try {
        process.kill(inst.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }

  #watchCpuTime(inst: Instance, budgetMs: number): void {
    inst.cpuWatch = setInterval(() => {
      const u = this.#sample(inst)
      if (u !== undefined && u.cpuNanos / 1e6 > budgetMs) this.#kill(inst, 'cpu-time')
    }, 100)
  }

  /** Saves the actor's snapshot now (to its state dir) without stopping it, and returns it. */
  checkpoint(handle: ExecHandle): Promise<StoredSnapshot> {
    const inst = this.#get(handle)
    if (inst.exit !== undefined || inst.child === undefined) return Promise.reject(new ActorWorkloadEndedError(inst.address ?? handle.allocationId, inst.exit?.reason ?? 'not started'))
    const id = ++inst.nextId
    return new Promise((resolve, reject) => {
      inst.checkpoints.set(id, { resolve, reject })
      this.#send(inst, { t: 'checkpoint', id })
    })
  }

  /** The snapshot the workload last saved in its state directory (on stop or checkpoint), if any. */
  savedSnapshot(handle: ExecHandle): StoredSnapshot | undefined {
    const file = join(this.#get(handle).spec.stateDir, SNAPSHOT_FILE)
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StoredSnapshot) : undefined
  }

  async stop(handle: ExecHandle, opts: { graceMs: number }): Promise<ExitStatus> {
    const inst = this.#get(handle)
    if (inst.exit !== undefined) return inst.exit
    inst.stopRequested = true
    if (inst.child === undefined) {
      this.#settle(inst, { code: null, oomKilled: false, reason: 'stopped', finishedAt: Date.now() })
      return inst.exit!
    }
    if (opts.graceMs <= 0) {
      this.#kill(inst, 'stop')
      return inst.exited
    }
    // Before the child says hello it cannot take the stop message; SIGTERM does the same thing once its
    // handler is installed, and the grace timer covers the rest.
    if (inst.child.connected) this.#send(inst, { t: 'stop' })
    else inst.child.kill('SIGTERM')
    const grace = setTimeout(() => this.#kill(inst, 'stop'), opts.graceMs)
    const status = await inst.exited
    clearTimeout(grace)
    return status
  }

  wait(handle: ExecHandle): Promise<ExitStatus> {
    return this.#get(handle).exited
  }

  logs(handle: ExecHandle, opts: { follow: boolean; since?: number }): AsyncIterable<LogLine> {
    return this.#get(handle).log.read(opts)
  }

  async stats(handle: ExecHandle): Promise<UsageStats> {
    const inst = this.#get(handle)
    if (inst.exit === undefined) this.#sample(inst)
    return inst.lastUsage ?? this.#zeroUsage(inst)
  }

  /** Reads the process' usage now and keeps it (the last sample is what stats() reports after the end). */
  #sample(inst: Instance): UsageStats | undefined {
    if (inst.pid === undefined) return undefined
    const u = readProcessUsage(inst.pid)
    if (u === undefined) return undefined
    inst.lastUsage = {
      ts: Date.now(), cpuNanos: u.cpuNanos, memoryBytes: u.rssBytes, memoryLimitBytes: inst.spec.limits.memoryBytes,
      netRxBytes: 0, netTxBytes: 0, diskReadBytes: u.readBytes, diskWriteBytes: u.writeBytes,
    }
    return inst.lastUsage
  }

  #zeroUsage(inst: Instance): UsageStats {
    return { ts: Date.now(), cpuNanos: 0, memoryBytes: 0, memoryLimitBytes: inst.spec.limits.memoryBytes, netRxBytes: 0, netTxBytes: 0, diskReadBytes: 0, diskWriteBytes: 0 }
  }

  async remove(handle: ExecHandle): Promise<void> {
    const inst = this.#instances.get(handle.ref)
    if (inst === undefined) return
    if (inst.exit === undefined) await this.stop(handle, { graceMs: 0 })
    this.#instances.delete(handle.ref)
    inst.cgroup?.remove()
  }

  async list(): Promise<ExecHandle[]> {
    return [...this.#instances.values()].map((i) => i.handle)
  }

  #get(handle: ExecHandle): Instance {
    const inst = this.#instances.get(handle.ref)
    if (inst === undefined) throw new UnknownInstanceError(handle.ref)
    return inst
  }
}

/** What a warm sandbox must match to be adopted: everything its process was spawned with. */
function warmKey(spec: ExecSpec): string {
  return JSON.stringify([spec.runtime, spec.env, spec.limits, spec.network, spec.stateDir, spec.secretFiles ?? null])
}

/** Writes a snapshot record into a state directory, so the next instance there starts from it. */
export function seedSnapshot(stateDir: string, record: StoredSnapshot): void {
  writeFileSync(join(stateDir, SNAPSHOT_FILE), JSON.stringify(record))
}
