// The `docker` executor: one container per allocation, through dockerode against the real dockerd.
// Images are never pulled. Containers carry the labels `noir.allocation` and `noir.node`, so a restarted
// daemon finds them again (list()). Logs come from Docker's own json-file log with Docker's timestamps
// (stamped when the line was produced), so they survive a daemon restart and need no attach-before-start.
import Docker from 'dockerode'
import { killAfterGrace } from '../grace.ts'
import { mkdirSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import type {
  Availability,
  ExecHandle,
  ExecSpec,
  Executor,
  ExitStatus,
  InstancePhase,
  LogLine,
  UsageStats,
} from '../executor.ts'
import { DEFAULT_PIDS_LIMIT, MIN_CPU } from '../executor.ts'
import {
  DuplicateAllocationError,
  ExecutorUnavailableError,
  ImageNotFoundError,
  InvalidExecSpecError,
  UnknownInstanceError,
} from '../../errors.ts'
import { DockerLogParser } from './docker-frames.ts'
import { removeSecretFiles, secretFilesDir, writeSecretFiles } from './secret-files.ts'
import { isRunscRef, type RunscRunner } from './runsc.ts'

export const LABEL_ALLOCATION = 'noir.allocation'
export const LABEL_NODE = 'noir.node'

export interface DockerExecutorInit {
  /** The node this executor works for; written into the `noir.node` label and used to filter list(). */
  nodeId: string
  /** A dockerode client; default: the local socket (/var/run/docker.sock or $DOCKER_HOST). */
  docker?: Docker
  /**
   * gVisor's runsc run directly (appliance/executor/docker/runsc.ts): `runtime: 'runsc'` instances go there
   * when it is available (they can then be checkpointed with their memory); otherwise to Docker's registered
   * runsc runtime, if any.
   */
  runsc?: RunscRunner
}

interface StopState {
  killed: boolean
}

const statusCode = (err: unknown): number | undefined =>
  typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : undefined

/**
 * How long an image validate() found is taken as present without asking Docker again. An image removed
 * meanwhile is still refused: create answers 404, ImageNotFoundError, after the reservation instead of before.
 */
const IMAGE_SEEN_MS = 30_000

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Docker container names allow [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
const sanitize = (s: string): string => s.replace(/[^a-zA-Z0-9_.-]/g, '_')

/** The /dev/shm of a container limited to `memory` bytes: the limit less 32 MiB, at least Docker's default 64 MiB. */
export function shmBytes(memory: number): number {
  return Math.max(64 * 1024 * 1024, memory - 32 * 1024 * 1024)
}

export class DockerExecutor implements Executor {
  readonly kind = 'docker' as const
  readonly nodeId: string
  readonly #docker: Docker
  readonly #exits = new Map<string, Promise<ExitStatus>>()
  readonly #stops = new Map<string, StopState>()
  /** Status decided without Docker (stopped before it ever started). */
  readonly #settled = new Map<string, ExitStatus>()
  readonly #runsc: RunscRunner | undefined
  #runscDirect: Availability | undefined
  /** Images an inspect found, until when (performance.now() ms): validate() asks Docker again after that. */
  readonly #images = new Map<string, number>()

  constructor(init: DockerExecutorInit) {
    this.nodeId = init.nodeId
    this.#docker = init.docker ?? new Docker()
    this.#runsc = init.runsc
  }

  /** Whether runsc runs here directly (installed, daemon root): only then can a container be checkpointed with its memory. */
  processCheckpoints(): Availability {
    if (!this.#runsc) return { ok: false, reason: 'this node does not run runsc directly (config executors.container.runsc is false)' }
    this.#runscDirect ??= this.#runsc.available()
    return this.#runscDirect
  }

  #direct(): RunscRunner | undefined {
    return this.processCheckpoints().ok ? this.#runsc : undefined
  }

  #runner(ref: string): RunscRunner | undefined {
    if (!isRunscRef(ref)) return undefined
    if (!this.#runsc) throw new UnknownInstanceError(ref)
    return this.#runsc
  }

  /**
   * The executor contract's suspend: a runsc instance is checkpointed with its memory into its state directory
   * (runsc.ts); a container under Docker cannot be (false: its files move alone).
   */
  async suspend(handle: ExecHandle): Promise<boolean> {
    const r = this.#runner(handle.ref)
    return r ? await r.suspend(handle) : false
  }

  async available(): Promise<Availability> {
    try {
      await this.#docker.ping()
      return { ok: true }
    } catch (err) {
      return { ok: false, reason: `no Docker daemon answers: ${(err as Error).message}` }
    }
  }

  /** Whether gVisor's runsc is registered with this dockerd. */
  async runscAvailable(): Promise<Availability> {
    if (this.#direct()) return { ok: true }
    try {
      const info = (await this.#docker.info()) as { Runtimes?: Record<string, unknown> }
      return info.Runtimes && 'runsc' in info.Runtimes ? { ok: true } : { ok: false, reason: 'runsc is not a registered Docker runtime (install gVisor: apt-get install runsc; runsc install)' }
    } catch (err) {
      return { ok: false, reason: (err as Error).message }
    }
  }

  async validate(spec: ExecSpec): Promise<void> {
    const rt = this.#checkSpec(spec)
    if (rt.runtime === 'runsc') this.#direct()?.check(spec)
    if (!this.#imageSeen(rt.image)) {
      try {
        await this.#docker.getImage(rt.image).inspect()
      } catch (err) {
        if (statusCode(err) === 404) throw new ImageNotFoundError(rt.image)
        throw err
      }
      this.#images.set(rt.image, performance.now() + IMAGE_SEEN_MS)
    }
    if (rt.runtime === 'runsc') {
      const a = await this.runscAvailable()
      if (!a.ok) throw new ExecutorUnavailableError('docker/runsc', a.reason)
    }
  }

  /** Whether `image` was found by an inspect less than IMAGE_SEEN_MS ago (and not missing at a create since). */
  #imageSeen(image: string): boolean {
    const until = this.#images.get(image)
    if (until === undefined) return false
    if (until > performance.now()) return true
    this.#images.delete(image)
    return false
  }

  /** The checks that need no daemon round trip. */
  #checkSpec(spec: ExecSpec): Extract<ExecSpec['runtime'], { kind: 'docker' }> {
    const rt = spec.runtime
    if (rt.kind !== 'docker') throw new InvalidExecSpecError(`the docker executor cannot run a '${rt.kind}' runtime`)
    if (!isAbsolute(spec.stateDir)) throw new InvalidExecSpecError(`stateDir must be an absolute path (got '${spec.stateDir}')`)
    if (!(spec.limits.memoryBytes >= 6 * 1024 * 1024)) throw new InvalidExecSpecError('limits.memoryBytes must be at least 6 MiB (Docker\'s minimum)')
    if (!(spec.limits.cpu >= MIN_CPU)) throw new InvalidExecSpecError(`limits.cpu must be at least ${MIN_CPU} (got ${spec.limits.cpu})`)
    if (spec.limits.pids !== undefined && !(Number.isSafeInteger(spec.limits.pids) && spec.limits.pids >= 1)) throw new InvalidExecSpecError(`limits.pids must be a whole number >= 1 (got ${spec.limits.pids})`)
    return rt
  }

  async prepare(spec: ExecSpec): Promise<ExecHandle> {
    // No image inspect first (validate() has one, for callers that want to refuse before reserving): a missing
    // image is Docker's 404 on create, mapped to the same ImageNotFoundError, one round trip fewer per start.
    const rt = this.#checkSpec(spec)
    const direct = rt.runtime === 'runsc' ? this.#direct() : undefined
    if (direct) return await direct.prepare(spec)
    if (rt.runtime === 'runsc') {
      const a = await this.runscAvailable()
      if (!a.ok) throw new ExecutorUnavailableError('docker/runsc', a.reason)
    }
    mkdirSync(spec.stateDir, { recursive: true })

    const exposed: Record<string, object> = {}
    const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {}
    if (spec.network !== 'none') {
      for (const p of spec.network.ports) {
        const key = `${p.containerPort}/${p.protocol}`
        exposed[key] = {}
        bindings[key] = [{ HostIp: '127.0.0.1', HostPort: String(p.hostPort) }]
      }
    }
    const memory = Math.floor(spec.limits.memoryBytes)
    const secretDir = secretFilesDir(this.nodeId, spec.allocationId)
    const secretBinds = spec.secretFiles && Object.keys(spec.secretFiles).length > 0 ? writeSecretFiles(secretDir, spec.secretFiles) : []
    try {
      const container = await this.#docker.createContainer({
        name: `noir-${sanitize(this.nodeId).slice(-12)}-${sanitize(spec.allocationId)}`,
        Image: rt.image,
        ...(rt.command ? { Cmd: rt.command } : {}),
        Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        Labels: { ...spec.labels, [LABEL_ALLOCATION]: spec.allocationId, [LABEL_NODE]: this.nodeId },
        Tty: false,
        AttachStdin: false,
        AttachStdout: false,
        AttachStderr: false,
        ExposedPorts: exposed,
        HostConfig: {
          NanoCpus: Math.ceil(spec.limits.cpu * 1e9), // never 0 (which Docker reads as 'unlimited')
          Memory: memory,
          MemorySwap: memory, // no swap: the limit is a hard limit
          PidsLimit: spec.limits.pids ?? DEFAULT_PIDS_LIMIT,
          NetworkMode: spec.network === 'none' ? 'none' : 'bridge',
          PortBindings: bindings,
          ReadonlyRootfs: spec.readOnlyRoot !== false,
          Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${Math.min(16 * 1024 * 1024, memory)}` },
          // /dev/shm (a tmpfs whose pages count against the memory limit) as large as the limit less 32 MiB,
          // never below Docker's 64 MiB: a full /dev/shm fails a write (ENOSPC) before the container is OOM-killed
          ShmSize: shmBytes(memory),
          Binds: [`${spec.stateDir}:/state:rw`, ...secretBinds],
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
          ...(rt.runtime === 'runsc' ? { Runtime: 'runsc' } : {}),
        },
      })
      return { allocationId: spec.allocationId, kind: 'docker', ref: container.id }
    } catch (err) {
      if (secretBinds.length > 0) removeSecretFiles(secretDir)
      if (statusCode(err) === 409) throw new DuplicateAllocationError(spec.allocationId)
      if (statusCode(err) === 404) {
        this.#images.delete(rt.image)
        throw new ImageNotFoundError(rt.image)
      }
      throw err
    }
  }

  async start(handle: ExecHandle): Promise<void> {
    const r = this.#runner(handle.ref)
    if (r) return await r.start(handle)
    try {
      await this.#docker.getContainer(handle.ref).start()
    } catch (err) {
      const code = statusCode(err)
      if (code === 304) return // already running: starting twice runs nothing twice
      if (code === 404) throw new UnknownInstanceError(handle.ref)
      throw err
    }
  }

  async stop(handle: ExecHandle, opts: { graceMs: number }): Promise<ExitStatus> {
    const r = this.#runner(handle.ref)
    if (r) return await r.stop(handle, opts)
    const settled = this.#settled.get(handle.ref)
    if (settled) return settled
    const c = this.#docker.getContainer(handle.ref)
    const info = await this.#inspect(handle.ref)
    if (info.State.Status === 'created') {
      const status: ExitStatus = { code: null, oomKilled: false, reason: 'stopped', finishedAt: Date.now() }
      this.#settled.set(handle.ref, status)
      return status
    }
    if (!info.State.Running) return this.wait(handle)
    const state: StopState = { killed: false }
    this.#stops.set(handle.ref, state)
    const exit = this.wait(handle)
    await c.kill({ signal: 'SIGTERM' }).catch(ignoreNotRunning)
    await killAfterGrace(exit, opts.graceMs, async () => {
      state.killed = true
      await c.kill({ signal: 'SIGKILL' }).catch(ignoreNotRunning)
    })
    return exit
  }

  wait(handle: ExecHandle): Promise<ExitStatus> {
    let r: RunscRunner | undefined
    try {
      r = this.#runner(handle.ref)
    } catch (err) {
      return Promise.reject(err as Error)
    }
    if (r) return r.wait(handle)
    const settled = this.#settled.get(handle.ref)
    if (settled) return Promise.resolve(settled)
    let p = this.#exits.get(handle.ref)
    if (!p) {
      p = this.#waitExit(handle.ref)
      this.#exits.set(handle.ref, p)
      p.catch(() => this.#exits.delete(handle.ref))
    }
    return p
  }

  async #waitExit(id: string): Promise<ExitStatus> {
    const c = this.#docker.getContainer(id)
    // A created container is "not running" already: wait for it to start first.
    for (;;) {
      const info = await this.#inspect(id)
      if (info.State.Status !== 'created') break
      const settled = this.#settled.get(id)
      if (settled) return settled
      await sleep(100)
    }
    await c.wait({ condition: 'not-running' })
    let info = await this.#inspect(id)
    const stop = this.#stops.get(id)
    // Killed (137) with no stop asked: Docker records an OOM kill from the kernel's event, which can land just
    // after the exit is seen; asked again a few times before it is taken as a plain kill
    if (!stop) {
      for (let i = 0; i < 5 && !info.State.OOMKilled && info.State.ExitCode === 137; i++) {
        await sleep(100)
        info = await this.#inspect(id)
      }
    }
    const st = info.State
    const finishedAt = Number.isNaN(Date.parse(st.FinishedAt)) ? Date.now() : Date.parse(st.FinishedAt)
    if (st.OOMKilled) return { code: null, signal: 'SIGKILL', oomKilled: true, reason: 'oom', finishedAt }
    if (stop?.killed) return { code: null, signal: 'SIGKILL', oomKilled: false, reason: 'killed', finishedAt }
    if (stop) {
      // Ended within the grace period: by itself (its own exit code) or by SIGTERM's default action (143).
      return st.ExitCode === 143
        ? { code: null, signal: 'SIGTERM', oomKilled: false, reason: 'stopped', finishedAt }
        : { code: st.ExitCode, oomKilled: false, reason: 'stopped', finishedAt }
    }
    if (st.Error) return { code: st.ExitCode, oomKilled: false, reason: 'error', message: st.Error, finishedAt }
    return { code: st.ExitCode, oomKilled: false, reason: 'exited', finishedAt }
  }

  async *logs(handle: ExecHandle, opts: { follow: boolean; since?: number }): AsyncIterable<LogLine> {
    const r = this.#runner(handle.ref)
    if (r) {
      yield* r.logs(handle, opts)
      return
    }
    const c = this.#docker.getContainer(handle.ref)
    if (opts.follow) {
      // Docker ends a follow at once for a container that has not started yet: wait for the start.
      while ((await this.#inspect(handle.ref)).State.Status === 'created') {
        if (this.#settled.has(handle.ref)) return
        await sleep(50)
      }
    }
    const since = opts.since ?? 0
    const base = { stdout: true, stderr: true, timestamps: true, ...(since > 0 ? { since: Math.floor(since / 1000) } : {}) }
    const parser = new DockerLogParser()
    if (!opts.follow) {
      const buf = await c.logs({ ...base, follow: false })
      for (const l of [...parser.push(Buffer.isBuffer(buf) ? buf : Buffer.from(buf)), ...parser.flush()]) if (l.ts >= since) yield l
      return
    }
    const stream = (await c.logs({ ...base, follow: true })) as NodeJS.ReadableStream & { destroy?: () => void }
    try {
      for await (const chunk of stream) {
        for (const l of parser.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))) if (l.ts >= since) yield l
      }
      for (const l of parser.flush()) if (l.ts >= since) yield l
    } finally {
      stream.destroy?.()
    }
  }

  async stats(handle: ExecHandle): Promise<UsageStats> {
    const r = this.#runner(handle.ref)
    if (r) return await r.stats(handle)
    let s: DockerStats
    try {
      s = (await this.#docker.getContainer(handle.ref).stats({ stream: false, 'one-shot': true })) as unknown as DockerStats
    } catch (err) {
      if (statusCode(err) === 404) throw new UnknownInstanceError(handle.ref)
      throw err
    }
    const mem = s.memory_stats ?? {}
    const inactive = mem.stats?.total_inactive_file ?? mem.stats?.inactive_file ?? 0
    const usage = mem.usage ?? 0
    let rx = 0
    let tx = 0
    for (const n of Object.values(s.networks ?? {})) {
      rx += n.rx_bytes ?? 0
      tx += n.tx_bytes ?? 0
    }
    let rd = 0
    let wr = 0
    for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
      if (/^read$/i.test(e.op)) rd += e.value
      if (/^write$/i.test(e.op)) wr += e.value
    }
    return {
      ts: Date.now(),
      cpuNanos: s.cpu_stats?.cpu_usage?.total_usage ?? 0,
      memoryBytes: usage > inactive ? usage - inactive : usage,
      memoryLimitBytes: mem.limit ?? 0,
      netRxBytes: rx,
      netTxBytes: tx,
      diskReadBytes: rd,
      diskWriteBytes: wr,
    }
  }

  async remove(handle: ExecHandle): Promise<void> {
    const r = this.#runner(handle.ref)
    if (r) return await r.remove(handle)
    try {
      await this.#docker.getContainer(handle.ref).remove({ force: true, v: true })
    } catch (err) {
      const code = statusCode(err)
      if (code !== 404 && code !== 409) throw err // 409: removal already in progress
    }
    removeSecretFiles(secretFilesDir(this.nodeId, handle.allocationId))
    this.#exits.delete(handle.ref)
    this.#stops.delete(handle.ref)
    this.#settled.delete(handle.ref)
  }

  async list(): Promise<ExecHandle[]> {
    const cs = await this.#docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${this.nodeId}`] } })
    const sandboxes = this.#direct() ? await this.#runsc!.list() : []
    return [
      ...cs.filter((c) => c.Labels[LABEL_ALLOCATION] !== undefined).map((c) => ({ allocationId: c.Labels[LABEL_ALLOCATION]!, kind: 'docker' as const, ref: c.Id })),
      ...sandboxes,
    ]
  }

  async phase(handle: ExecHandle): Promise<InstancePhase> {
    const r = this.#runner(handle.ref)
    if (r) return await r.phase(handle)
    const st = (await this.#inspect(handle.ref)).State
    return st.Status === 'created' ? 'created' : st.Running || st.Status === 'restarting' || st.Paused ? 'running' : 'ended'
  }

  async #inspect(id: string): Promise<Docker.ContainerInspectInfo> {
    try {
      return await this.#docker.getContainer(id).inspect()
    } catch (err) {
      if (statusCode(err) === 404) throw new UnknownInstanceError(id)
      throw err
    }
  }
}

function ignoreNotRunning(err: unknown): void {
  const code = statusCode(err)
  if (code === 409 || code === 404) return // not running (already ended) or gone
  throw err
}

interface DockerStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number } }
  memory_stats?: { usage?: number; limit?: number; stats?: { total_inactive_file?: number; inactive_file?: number } }
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op: string; value: number }> | null }
}
