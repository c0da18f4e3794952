// The one contract every executor implements (docker, wasm, microvm, actor). Implementations sit beside it
// and depend on it, never the reverse; each one passes the shared compliance suite
// (appliance/test/executor-compliance.ts). An executor runs one workload instance per allocation and
// knows nothing of bids, contracts or money.

export type ExecutorKind = 'docker' | 'wasm' | 'microvm' | 'actor'

/** What to run, per kind. Paths are on the host. */
export type RuntimeSpec =
  | { kind: 'docker'; image: string; command?: string[]; runtime?: 'runc' | 'runsc' }
  | { kind: 'wasm'; module: string; args?: string[] }
  | {
      kind: 'microvm'
      kernel: string
      initrd?: string
      rootfs?: string
      append?: string
      /** The workload's argv, run in the guest by the noir image's init (spec/microvm.md). */
      command?: string[]
      /**
       * The guest's state on a virtio-blk disk of this size (an ext2 image `<stateDir>/disk.img`) instead of a
       * 9p share of the state directory: such a guest can be suspended and resumed (spec/microvm.md "State disk").
       */
      stateDiskBytes?: number
    }
  | { kind: 'actor'; bundle: string; args?: string[] }

/** The smallest CPU share anything may ask for: 10 millicores. A smaller request is refused, never rounded to 0. */
export const MIN_CPU = 0.01
/** The process limit a container gets when its request names none (a fork bomb stops here). */
export const DEFAULT_PIDS_LIMIT = 256

export interface ResourceLimits {
  /** CPU cores, fractional (0.5 = half a core), enforced as a quota. */
  cpu: number
  /** Hard memory limit in bytes: exceeding it ends the workload with `oomKilled: true`. */
  memoryBytes: number
  /** Maximum number of processes / threads; containers get DEFAULT_PIDS_LIMIT when it is not given. */
  pids?: number
  /** CPU time budget in milliseconds (wasm, actor): exceeding it ends the workload, reason `cpu-time`. */
  cpuTimeMs?: number
}

export interface PortMapping {
  /** Port inside the workload. */
  containerPort: number
  /** Port on the host (127.0.0.1), chosen by the allocator from its range. */
  hostPort: number
  protocol: 'tcp' | 'udp'
}

export interface ExecSpec {
  /** The allocation this instance belongs to; executors label what they create with it. */
  allocationId: string
  runtime: RuntimeSpec
  env: Record<string, string>
  limits: ResourceLimits
  /** `none`: no network at all. Otherwise only the listed ports are published (on 127.0.0.1). */
  network: 'none' | { ports: PortMapping[] }
  /** A writable host directory, the only place a workload may keep state (mounted at /state where a path is needed). */
  stateDir: string
  /** Read-only root file system (docker); the state directory stays writable. */
  readOnlyRoot?: boolean
  /** Extra labels; executors add `noir.allocation` and `noir.node` themselves. */
  labels?: Record<string, string>
  /**
   * Secret files, container path (`/run/secrets/NAME`) -> value (docker only; spec/secrets.md): added to the
   * spec at each launch and never kept in a record; the executor keeps them off every disk.
   */
  secretFiles?: Record<string, string>
}

/** A prepared or running instance. `ref` is the executor's own id (container id, pid, ...). */
export interface ExecHandle {
  readonly allocationId: string
  readonly kind: ExecutorKind
  readonly ref: string
}

export type ExitReason = 'exited' | 'stopped' | 'killed' | 'oom' | 'cpu-time' | 'error'

export interface ExitStatus {
  /** Process exit code, or null when it ended by a signal or never ran. */
  code: number | null
  /** Signal name when ended by one (e.g. SIGKILL). */
  signal?: string
  oomKilled: boolean
  reason: ExitReason
  /** Human-readable detail for `error`. */
  message?: string
  finishedAt: number
}

export interface LogLine {
  /** Milliseconds since the epoch, as stamped by the executor when the line was produced or read. */
  ts: number
  stream: 'stdout' | 'stderr' | 'console'
  line: string
}

export interface UsageStats {
  ts: number
  /** CPU time used so far, nanoseconds. */
  cpuNanos: number
  memoryBytes: number
  memoryLimitBytes: number
  netRxBytes: number
  netTxBytes: number
  diskReadBytes: number
  diskWriteBytes: number
}

export type Availability = { ok: true } | { ok: false; reason: string }

export interface Executor {
  readonly kind: ExecutorKind
  /** Whether this executor can run here (daemon reachable, binary present...), with the reason when not. */
  available(): Promise<Availability>
  /** Creates the instance without starting it (image present, container created, files staged). */
  prepare(spec: ExecSpec): Promise<ExecHandle>
  start(handle: ExecHandle): Promise<void>
  /** Asks the workload to stop (SIGTERM or equivalent), waits up to `graceMs`, then kills it. */
  stop(handle: ExecHandle, opts: { graceMs: number }): Promise<ExitStatus>
  /** Resolves when the instance ends, with exactly how it ended. */
  wait(handle: ExecHandle): Promise<ExitStatus>
  /** Log lines with timestamps; with `follow` the iterable stays open until the instance ends. */
  logs(handle: ExecHandle, opts: { follow: boolean; since?: number }): AsyncIterable<LogLine>
  stats(handle: ExecHandle): Promise<UsageStats>
  /** Frees everything the instance held (container, temp files). Idempotent. */
  remove(handle: ExecHandle): Promise<void>
  /** Instances this node created that still exist (found by label / registry), for re-attach after a restart. */
  list(): Promise<ExecHandle[]>
  /**
   * Optional: where an instance is in its life (created but never started, running, ended). Re-attach uses
   * it to tell a container that must be waited on from one that was prepared but never started.
   */
  phase?(handle: ExecHandle): Promise<InstancePhase>
  /**
   * Optional: checks a spec without creating anything (image present, module readable and within limits),
   * throwing the same typed error prepare() would. Lets a request be refused before resources are reserved.
   */
  validate?(spec: ExecSpec): Promise<void>
  /**
   * Optional: saves the running instance's whole state (memory, devices) into its state directory and leaves
   * it paused; the next stop() ends it at once, and an instance prepared later on that state directory (on
   * this node or, once the directory is carried over, another) resumes it instead of starting afresh. False
   * when this instance cannot be saved (then only its files move).
   */
  suspend?(handle: ExecHandle): Promise<boolean>
  /**
   * Optional (the actor executor; a migration's handover, spec/migration.md): spawns the instance of an
   * allocation not created yet, ready to start (its code loaded) but not started; prepare() of the very same
   * spec adopts it, and start() only lets it go on. Resolves once it is loaded; the same answer when asked again.
   */
  warm?(spec: ExecSpec, o?: { ttlMs?: number }): Promise<void>
  /** Ends a warm instance no allocation adopted; nothing when there is none. */
  discardWarm?(allocationId: string): Promise<void>
}

export type InstancePhase = 'created' | 'running' | 'ended'
