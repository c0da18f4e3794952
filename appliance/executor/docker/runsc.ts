// Containers under gVisor's runsc, run directly from an OCI bundle (spec/executor.md "runsc", spec/migration.md
// "Process-level checkpoints"): no Docker runtime registration (which needs a dockerd restart), so runsc's own
// `checkpoint` / `restore` are ours to call. The root filesystem is the local Docker image exported once per
// image id (read-only, shared by the node's sandboxes); the sandbox has no network (`--network=none`); the
// limits are the sandbox's host cgroup (memory, CPU quota). `checkpoint` writes the sandbox's whole state
// (memory, threads, open files) into a directory and ends it; `restore` starts a new sandbox from it, under a
// new container id, on this node or another one, and the process continues where it stopped.
//
// The DockerExecutor hands every `runtime: 'runsc'` instance here when this runner is available (refs start
// with `runsc-`); Docker's own registered runsc runtime (which cannot be checkpointed by us) is the fallback.
import type Docker from 'dockerode'
import { killAfterGrace } from '../grace.ts'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Availability, ExecHandle, ExecSpec, ExitStatus, InstancePhase, LogLine, UsageStats } from '../executor.ts'
import { ApplianceError, DuplicateAllocationError, ImageNotFoundError, InvalidExecSpecError, UnknownInstanceError } from '../../errors.ts'
import { removeSecretFiles, secretFilesDir, writeSecretFiles } from './secret-files.ts'
import { LABEL_GRACE } from '../../watchdog/lease.ts'

/** Refs of instances this runner made start with this; Docker's container ids are 64 hex digits. */
export const RUNSC_REF_PREFIX = 'runsc-'
/** Inside a state archive: the process image of a checkpointed sandbox (spec/migration.md). */
export const PROCESS_IMAGE_DIR = '.noir-process'
/** Beside an allocation's state directory (outside the workload's view): the image its first start restores. */
export const RESTORE_IMAGE_DIR = 'process-image'
/** The file runsc writes into a checkpoint directory. */
export const CHECKPOINT_FILE = 'checkpoint.img'

export const isRunscRef = (ref: string): boolean => ref.startsWith(RUNSC_REF_PREFIX)

/** runsc failed (a command's exit and stderr), or a checkpoint/restore could not be done. */
export class RunscError extends ApplianceError {
  override readonly name = 'RunscError'
  override readonly status = 500
  override readonly code = 'ERR_RUNSC'
  readonly op: string
  constructor(op: string, why: string) {
    super(`runsc ${op}: ${why}`)
    this.op = op
    this.data = { op }
  }
}

export interface RunscRunnerInit {
  nodeId: string
  /** The runner's own folder: runsc's state (--root), the bundles, the exported root filesystems. */
  dir: string
  /** Reads images (inspect, export) from the local daemon; images are never pulled. */
  docker: Docker
  /** The runsc binary (default: `runsc` on PATH). */
  bin?: string
  /** gVisor platform (default: runsc's own default, ptrace in 0.0~20221219). */
  platform?: string
}

interface Instance {
  id: string
  allocationId: string
  bundle: string
  stateDir: string
  logFile: string
  /** The `runsc run` / `runsc restore` process: it lives as long as the sandbox and exits with its code. */
  child?: ChildProcess
  exit?: Promise<ExitStatus>
  started: boolean
  stop?: { killed: boolean }
  /** Suspended: its image is saved and its sandbox ended; the exit is held until stop() (as a paused instance's). */
  saved?: boolean
  held?: Promise<void>
  release?: () => void
  settled?: ExitStatus
  logs: LogLine[]
  logOffset: number
  logRest: string
}

interface ImageFacts {
  rootfs: string
  cmd: string[]
  env: string[]
  cwd: string
  uid: number
  gid: number
}

const sanitize = (s: string): string => s.replace(/[^a-zA-Z0-9_.-]/g, '_')
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const statusCode = (err: unknown): number | undefined =>
  typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : undefined
const MAX_LOG_LINES = 10_000

export class RunscRunner {
  readonly nodeId: string
  readonly #dir: string
  readonly #docker: Docker
  readonly #bin: string
  readonly #platform: string | undefined
  readonly #instances = new Map<string, Instance>()
  readonly #images = new Map<string, Promise<ImageFacts>>()

  constructor(init: RunscRunnerInit) {
    this.nodeId = init.nodeId
    this.#dir = init.dir
    this.#docker = init.docker
    this.#bin = init.bin ?? 'runsc'
    this.#platform = init.platform
  }

  get #root(): string {
    return join(this.#dir, 'state')
  }

  #globals(): string[] {
    return [`--root=${this.#root}`, '--network=none', ...(this.#platform ? [`--platform=${this.#platform}`] : [])]
  }

  /** runsc installed, and this process root (runsc makes the sandbox's namespaces and cgroup). */
  available(): Availability {
    if (process.getuid?.() !== 0) return { ok: false, reason: 'runsc runs sandboxes as root only (this daemon is not root)' }
    const v = spawnSync(this.#bin, ['--version'], { encoding: 'utf8', timeout: 10_000 })
    if (v.error || v.status !== 0) return { ok: false, reason: `runsc is not installed (Debian package runsc): ${v.error?.message ?? v.stderr.trim()}` }
    return { ok: true }
  }

  /** One runsc command; rejects with RunscError (its stderr) when it fails. */
  #run(op: string, args: string[], o: { timeoutMs?: number } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const p = spawn(this.#bin, [...this.#globals(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      p.stdout.on('data', (d: Buffer) => (out += d.toString()))
      p.stderr.on('data', (d: Buffer) => (err += d.toString()))
      const timer = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs ?? 60_000)
      p.on('error', (e) => {
        clearTimeout(timer)
        reject(new RunscError(op, e.message))
      })
      p.on('close', (code, signal) => {
        clearTimeout(timer)
        if (code === 0) resolve(out)
        else reject(new RunscError(op, (err.trim().split('\n').at(-1) ?? '') || `exit ${code ?? signal}`))
      })
    })
  }

  /** The image's root filesystem (exported once per image id) and its defaults (command, env, workdir, user). */
  #image(image: string): Promise<ImageFacts> {
    let p = this.#images.get(image)
    if (!p) {
      p = this.#exportImage(image)
      this.#images.set(image, p)
      p.catch(() => this.#images.delete(image))
    }
    return p
  }

  async #exportImage(image: string): Promise<ImageFacts> {
    let info: Docker.ImageInspectInfo
    try {
      info = await this.#docker.getImage(image).inspect()
    } catch (err) {
      if (statusCode(err) === 404) throw new ImageNotFoundError(image)
      throw err
    }
    const cfg = info.Config
    const user = (cfg.User ?? '').trim()
    let uid = 0
    let gid = 0
    if (user !== '') {
      const m = /^(\d+)(?::(\d+))?$/.exec(user)
      if (!m) throw new InvalidExecSpecError(`under runsc an image's user must be numeric (uid[:gid]); '${image}' says '${user}'`)
      uid = Number(m[1])
      gid = m[2] === undefined ? uid : Number(m[2])
    }
    const facts = (rootfs: string): ImageFacts => ({
      rootfs,
      cmd: [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])],
      env: cfg.Env ?? [],
      cwd: cfg.WorkingDir || '/',
      uid,
      gid,
    })
    const dir = join(this.#dir, 'images', sanitize(info.Id))
    const rootfs = join(dir, 'rootfs')
    if (existsSync(join(dir, 'done'))) return facts(rootfs)
    rmSync(dir, { recursive: true, force: true })
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`
    mkdirSync(join(tmp, 'rootfs'), { recursive: true })
    const c = await this.#docker.createContainer({ Image: info.Id, Cmd: ['/'], Labels: { 'noir.runsc-export': this.nodeId } })
    try {
      const stream = (await c.export()) as NodeJS.ReadableStream
      await new Promise<void>((resolve, reject) => {
        const tar = spawn('tar', ['-x', '-C', join(tmp, 'rootfs')], { stdio: ['pipe', 'ignore', 'pipe'] })
        let err = ''
        tar.stderr.on('data', (d: Buffer) => (err += d.toString()))
        tar.on('error', reject)
        tar.on('close', (code) => (code === 0 ? resolve() : reject(new RunscError('export', `tar: ${err.trim() || `exit ${code}`}`))))
        stream.on('error', reject)
        stream.pipe(tar.stdin)
      })
    } finally {
      await c.remove({ force: true }).catch(() => undefined)
    }
    writeFileSync(join(tmp, 'done'), info.Id)
    renameSync(tmp, dir)
    return facts(rootfs)
  }

  #containerId(allocationId: string): string {
    return `${RUNSC_REF_PREFIX}${sanitize(this.nodeId).slice(-12)}-${sanitize(allocationId)}`
  }

  /** The checks that need nothing from runsc or Docker. */
  check(spec: ExecSpec): Extract<ExecSpec['runtime'], { kind: 'docker' }> {
    const rt = spec.runtime
    if (rt.kind !== 'docker') throw new InvalidExecSpecError(`runsc cannot run a '${rt.kind}' runtime`)
    if (spec.network !== 'none' && spec.network.ports.length > 0) throw new InvalidExecSpecError('a container under runsc has no network here: it cannot publish ports (not built)')
    if (spec.readOnlyRoot === false) throw new InvalidExecSpecError('under runsc the root filesystem is read-only (the image is shared); keep state in /state, scratch in /tmp')
    return rt
  }

  async prepare(spec: ExecSpec): Promise<ExecHandle> {
    const rt = this.check(spec)
    const id = this.#containerId(spec.allocationId)
    const bundle = join(this.#dir, 'bundles', id)
    if (this.#instances.has(id) || existsSync(bundle)) throw new DuplicateAllocationError(spec.allocationId)
    const img = await this.#image(rt.image)
    const args = rt.command ?? img.cmd
    if (args.length === 0) throw new InvalidExecSpecError(`image '${rt.image}' names no command, and the workload gives none`)
    mkdirSync(spec.stateDir, { recursive: true })
    mkdirSync(bundle, { recursive: true, mode: 0o700 })
    const secretDir = secretFilesDir(this.nodeId, spec.allocationId)
    const secretBinds = spec.secretFiles && Object.keys(spec.secretFiles).length > 0 ? writeSecretFiles(secretDir, spec.secretFiles) : []
    const memory = Math.floor(spec.limits.memoryBytes)
    const env = new Map<string, string>()
    for (const e of ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...img.env]) {
      const i = e.indexOf('=')
      if (i > 0) env.set(e.slice(0, i), e.slice(i + 1))
    }
    for (const [k, v] of Object.entries(spec.env)) env.set(k, v)
    const config = {
      ociVersion: '1.0.0',
      process: {
        terminal: false,
        user: { uid: img.uid, gid: img.gid },
        args,
        env: [...env].map(([k, v]) => `${k}=${v}`),
        cwd: img.cwd,
        capabilities: {},
        noNewPrivileges: true,
        rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      },
      root: { path: img.rootfs, readonly: true },
      hostname: 'noir',
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
        { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
        { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
        { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
        { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', `size=${Math.min(16 * 1024 * 1024, memory)}`] },
        { destination: '/state', type: 'bind', source: spec.stateDir, options: ['rbind', 'rw'] },
        ...secretBinds.map((b) => {
          const [source, destination] = b.split(':')
          return { destination, type: 'bind', source, options: ['rbind', 'ro'] }
        }),
      ],
      linux: {
        // the sandbox's host cgroup: sentry, gofer and the workload's memory together. No pids limit there:
        // gVisor's ptrace platform spends host threads for each guest thread (a low limit kills the sandbox).
        resources: { memory: { limit: memory, swap: memory }, cpu: { quota: Math.ceil(spec.limits.cpu * 100_000), period: 100_000 } },
        cgroupsPath: `/noir-runsc/${id}`,
        namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      },
    }
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 1))
    writeFileSync(join(bundle, 'allocation'), spec.allocationId)
    // a contract replica's grace: the node's watchdog kills the sandbox once its daemon is silent that long
    const grace = spec.labels?.[LABEL_GRACE]
    if (grace !== undefined) writeFileSync(join(bundle, 'grace'), grace)
    this.#instances.set(id, { id, allocationId: spec.allocationId, bundle, stateDir: spec.stateDir, logFile: join(bundle, 'out.log'), started: false, logs: [], logOffset: 0, logRest: '' })
    return { allocationId: spec.allocationId, kind: 'docker', ref: id }
  }

  #get(ref: string): Instance {
    const inst = this.#instances.get(ref)
    if (inst) return inst
    // made by an earlier process of this daemon: known by its bundle
    const bundle = join(this.#dir, 'bundles', ref)
    if (!existsSync(join(bundle, 'config.json'))) throw new UnknownInstanceError(ref)
    const cfg = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { mounts: { destination: string; source: string }[] }
    const again: Instance = {
      id: ref,
      allocationId: readFileSync(join(bundle, 'allocation'), 'utf8'),
      bundle,
      stateDir: cfg.mounts.find((m) => m.destination === '/state')?.source ?? '',
      logFile: join(bundle, 'out.log'),
      started: true,
      logs: [],
      logOffset: 0,
      logRest: '',
    }
    this.#instances.set(ref, again)
    return again
  }

  /**
   * Runs the sandbox, or, when the allocation's first start has a process image beside its state directory
   * (put there by a migration's restore, never by the workload), restores it from that image. The image is
   * deleted once read: a later start in place runs the workload afresh.
   */
  async start(handle: ExecHandle): Promise<void> {
    const inst = this.#get(handle.ref)
    if (inst.started) return
    if (inst.settled) return
    inst.started = true
    const image = join(dirname(inst.stateDir), RESTORE_IMAGE_DIR)
    const restoring = existsSync(join(image, CHECKPOINT_FILE))
    // O_APPEND: a restored process writes at its saved offset otherwise (a hole of zeros in the log)
    const out = openSync(inst.logFile, 'a')
    const args = restoring ? ['restore', `--image-path=${image}`, '--bundle', inst.bundle, inst.id] : ['run', '--bundle', inst.bundle, inst.id]
    // the workload's stdout and stderr (and runsc's own complaints) go to one file
    const child = spawn(this.#bin, [...this.#globals(), ...args], { stdio: ['ignore', out, out], detached: true })
    closeSync(out)
    inst.child = child
    let failure = ''
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('error', (e) => {
        failure = e.message
        resolve({ code: null, signal: null })
      })
      child.on('close', (code, signal) => resolve({ code, signal }))
    })
    inst.exit = ended.then(async (e) => {
      // a suspended sandbox has ended; to the allocation it is paused until stopped (no restart in between)
      if (inst.saved) await inst.held
      return this.#exitStatus(inst, e.code, e.signal, failure || this.#lastLine(inst))
    })
    // running once runsc says so; a sandbox that ended first is the start's answer (a workload that exits at
    // once is a run; a restore that did not get as far as running is RunscError)
    for (;;) {
      const raced = await Promise.race([ended.then(() => 'ended' as const), sleep(50).then(() => 'poll' as const)])
      if (raced === 'ended') {
        if (restoring) {
          rmSync(image, { recursive: true, force: true })
          throw new RunscError('restore', this.#lastLine(inst) || 'the restored sandbox ended at once')
        }
        if (failure) throw new RunscError('run', failure)
        return
      }
      const phase = await this.#status(inst.id)
      if (phase === 'running' || phase === 'stopped') break
    }
    if (restoring) rmSync(image, { recursive: true, force: true })
  }

  #lastLine(inst: Instance): string {
    try {
      return readFileSync(inst.logFile, 'utf8').replaceAll('\0', '').trim().split('\n').at(-1) ?? ''
    } catch {
      return ''
    }
  }

  async #status(id: string): Promise<string | undefined> {
    try {
      const s = JSON.parse(await this.#run('state', ['state', id], { timeoutMs: 10_000 })) as { status?: string }
      return s.status
    } catch {
      return undefined
    }
  }

  #exitStatus(inst: Instance, code: number | null, signal: NodeJS.Signals | null, stderr: string): ExitStatus {
    const finishedAt = Date.now()
    if (inst.saved) return { code: null, oomKilled: false, reason: 'stopped', message: 'checkpointed (process image saved)', finishedAt }
    if (code === null) return { code: null, oomKilled: false, reason: 'error', message: `runsc ended by ${signal ?? 'an error'}: ${stderr.trim().split('\n').at(-1) ?? ''}`, finishedAt }
    if (inst.stop?.killed) return { code: null, signal: 'SIGKILL', oomKilled: false, reason: 'killed', finishedAt }
    if (inst.stop) return code === 143 ? { code: null, signal: 'SIGTERM', oomKilled: false, reason: 'stopped', finishedAt } : { code, oomKilled: false, reason: 'stopped', finishedAt }
    return { code, oomKilled: false, reason: 'exited', finishedAt }
  }

  /**
   * The executor contract's suspend (executor.ts): `runsc checkpoint` saves the sandbox's whole state (memory,
   * threads, open files) and ends it; the image goes into the state directory as `.noir-process/` (any file
   * of that name the workload wrote is replaced), where a migration's archive carries it. To the allocation
   * the instance stays as a paused one: its exit is held until the next stop(), which ends it at once. False
   * when it is not running; RunscError when runsc cannot save it (it then runs on).
   */
  async suspend(handle: ExecHandle): Promise<boolean> {
    const inst = this.#get(handle.ref)
    if (!inst.started || inst.saved || (await this.#status(inst.id)) !== 'running') return false
    const out = join(dirname(inst.stateDir), 'process-saved')
    rmSync(out, { recursive: true, force: true })
    mkdirSync(out, { recursive: true, mode: 0o700 })
    inst.saved = true
    inst.held = new Promise<void>((r) => (inst.release = r))
    try {
      await this.#run('checkpoint', ['checkpoint', `--image-path=${out}`, inst.id], { timeoutMs: 120_000 })
      if (!existsSync(join(out, CHECKPOINT_FILE))) throw new RunscError('checkpoint', `no ${CHECKPOINT_FILE} was written`)
    } catch (err) {
      inst.saved = false
      inst.release?.()
      rmSync(out, { recursive: true, force: true })
      throw err instanceof RunscError ? err : new RunscError('checkpoint', (err as Error).message)
    }
    const dest = join(inst.stateDir, PROCESS_IMAGE_DIR)
    rmSync(dest, { recursive: true, force: true })
    renameSync(out, dest)
    return true
  }

  async stop(handle: ExecHandle, opts: { graceMs: number }): Promise<ExitStatus> {
    const inst = this.#get(handle.ref)
    if (!inst.started) {
      const st: ExitStatus = { code: null, oomKilled: false, reason: 'stopped', finishedAt: Date.now() }
      inst.settled = st
      return st
    }
    if (inst.saved) {
      // suspended: its sandbox has ended already; now its exit is let through
      inst.release?.()
      return this.wait(handle)
    }
    if ((await this.#status(inst.id)) !== 'running') return this.wait(handle)
    inst.stop = { killed: false }
    const exit = this.wait(handle)
    await this.#run('kill', ['kill', inst.id, 'TERM'], { timeoutMs: 10_000 }).catch(() => undefined)
    const stop = inst.stop
    await killAfterGrace(exit, opts.graceMs, async () => {
      stop.killed = true
      await this.#run('kill', ['kill', inst.id, 'KILL'], { timeoutMs: 10_000 }).catch(() => undefined)
    })
    return exit
  }

  wait(handle: ExecHandle): Promise<ExitStatus> {
    let inst: Instance
    try {
      inst = this.#get(handle.ref)
    } catch (err) {
      return Promise.reject(err as Error)
    }
    if (inst.settled) return Promise.resolve(inst.settled)
    if (inst.exit) return inst.exit
    if (!inst.started) {
      // prepared, not started yet: wait for the start (or a stop before it)
      inst.exit = (async () => {
        while (!inst.started && !inst.settled) await sleep(100)
        return inst.settled ?? (await (inst.exit = undefined, this.wait(handle)))
      })()
      return inst.exit
    }
    // made by an earlier process of this daemon: runsc's own wait (answers only while the sandbox runs)
    inst.exit = this.#run('wait', ['wait', inst.id], { timeoutMs: 2 ** 31 - 1 }).then(
      (out) => this.#exitStatus(inst, (JSON.parse(out) as { exitStatus: number }).exitStatus, null, ''),
      (err: Error) => ({ code: null, oomKilled: false, reason: 'error' as const, message: err.message, finishedAt: Date.now() }),
    )
    return inst.exit
  }

  /** New lines of the instance's output file, stamped now (the file is read at least every 100 ms while followed). */
  #readLogs(inst: Instance): void {
    let fd: number
    try {
      fd = openSync(inst.logFile, 'r')
    } catch {
      return
    }
    try {
      const size = fstatSync(fd).size
      if (size <= inst.logOffset) return
      const buf = Buffer.alloc(size - inst.logOffset)
      readSync(fd, buf, 0, buf.length, inst.logOffset)
      inst.logOffset = size
      const text = inst.logRest + buf.toString('utf8').replaceAll('\0', '')
      const parts = text.split('\n')
      inst.logRest = parts.pop() ?? ''
      const ts = Date.now()
      for (const line of parts) inst.logs.push({ ts, stream: 'stdout', line })
      if (inst.logs.length > MAX_LOG_LINES) inst.logs.splice(0, inst.logs.length - MAX_LOG_LINES)
    } finally {
      closeSync(fd)
    }
  }

  async *logs(handle: ExecHandle, opts: { follow: boolean; since?: number }): AsyncIterable<LogLine> {
    const inst = this.#get(handle.ref)
    const since = opts.since ?? 0
    let i = 0
    let ended = false
    const exit = opts.follow ? this.wait(handle).then(() => void (ended = true)) : undefined
    for (;;) {
      this.#readLogs(inst)
      for (; i < inst.logs.length; i++) if (inst.logs[i]!.ts >= since) yield inst.logs[i]!
      if (!opts.follow || ended) break
      await Promise.race([exit, sleep(100)])
    }
    if (ended && inst.logRest !== '') {
      inst.logs.push({ ts: Date.now(), stream: 'stdout', line: inst.logRest })
      inst.logRest = ''
      yield inst.logs.at(-1)!
    }
  }

  async stats(handle: ExecHandle): Promise<UsageStats> {
    const inst = this.#get(handle.ref)
    const out = await this.#run('events', ['events', '-stats', inst.id], { timeoutMs: 10_000 })
    const s = JSON.parse(out) as { data?: { cpu?: { usage?: { total?: number } }; memory?: { usage?: { usage?: number; limit?: number } } } }
    const cfg = JSON.parse(readFileSync(join(inst.bundle, 'config.json'), 'utf8')) as { linux: { resources: { memory: { limit: number } } } }
    return {
      ts: Date.now(),
      cpuNanos: s.data?.cpu?.usage?.total ?? 0,
      memoryBytes: s.data?.memory?.usage?.usage ?? 0,
      memoryLimitBytes: cfg.linux.resources.memory.limit,
      netRxBytes: 0,
      netTxBytes: 0,
      diskReadBytes: 0,
      diskWriteBytes: 0,
    }
  }

  async remove(handle: ExecHandle): Promise<void> {
    const inst = this.#instances.get(handle.ref)
    await this.#run('kill', ['kill', handle.ref, 'KILL'], { timeoutMs: 10_000 }).catch(() => undefined)
    await this.#run('delete', ['delete', '-force', handle.ref], { timeoutMs: 30_000 }).catch(() => undefined)
    inst?.child?.kill('SIGKILL')
    rmSync(join(this.#dir, 'bundles', handle.ref), { recursive: true, force: true })
    removeSecretFiles(secretFilesDir(this.nodeId, handle.allocationId))
    this.#instances.delete(handle.ref)
  }

  /** The instances this node prepared that still exist (their bundles), prepared, running or ended. */
  async list(): Promise<ExecHandle[]> {
    const mine = `${RUNSC_REF_PREFIX}${sanitize(this.nodeId).slice(-12)}-`
    const dir = join(this.#dir, 'bundles')
    const out: ExecHandle[] = []
    for (const id of existsSync(dir) ? readdirSync(dir) : []) {
      if (!id.startsWith(mine)) continue
      try {
        out.push({ allocationId: readFileSync(join(dir, id, 'allocation'), 'utf8'), kind: 'docker', ref: id })
      } catch {
        // a bundle being written or removed right now
      }
    }
    return out
  }

  async phase(handle: ExecHandle): Promise<InstancePhase> {
    const inst = this.#get(handle.ref)
    if (!inst.started && !inst.settled) return 'created'
    const s = await this.#status(inst.id)
    return s === 'running' || s === 'paused' ? 'running' : s === 'created' ? 'created' : 'ended'
  }
}
