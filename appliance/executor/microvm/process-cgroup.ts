// A cgroup for one host process (the QEMU of a microVM, the Node child of an SDK actor): a CPU quota and,
// optionally, a hard memory limit with OOM detection. cgroup v1 (separate `cpu` and `memory` hierarchies,
// as on these machines) and cgroup v2 (unified) are both handled. The group is created *under the cgroup
// of the current process* so that a workload never escapes the limits its node runs under.
// Where no cgroup is writable (not root, read-only /sys/fs/cgroup) `ProcessCgroup.create` returns
// undefined and the caller falls back to what it can enforce by itself (spec/microvm.md, spec/actor-executor.md).
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = '/sys/fs/cgroup'
const PERIOD_US = 100_000

export interface CgroupLimits {
  /** CPU cores (fractional): quota = cpu x period. */
  cpu?: number
  /** Hard memory limit in bytes (the kernel's OOM killer ends the group's processes beyond it). */
  memoryBytes?: number
  /** Most processes and threads the group may hold (pids.max): a fork bomb stops here. */
  pids?: number
}

/** The cgroup path of this process for one v1 controller ('' for v2), from /proc/self/cgroup. */
function ownPath(controller: string): string | undefined {
  let text: string
  try {
    text = readFileSync('/proc/self/cgroup', 'utf8')
  } catch {
    return undefined
  }
  for (const line of text.split('\n')) {
    const [, ctrls, path] = line.split(':')
    if (ctrls === undefined || path === undefined) continue
    if (controller === '' ? ctrls === '' : ctrls.split(',').includes(controller)) return path
  }
  return undefined
}

function tryMkdir(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true })
    return true
  } catch {
    return false
  }
}

const readNumber = (file: string): number | undefined => {
  try {
    const n = Number(readFileSync(file, 'utf8').trim())
    return Number.isFinite(n) ? n : undefined
  } catch {
    return undefined
  }
}

export class ProcessCgroup {
  /** Directories of this group, one per hierarchy it uses. */
  readonly dirs: string[]
  readonly version: 1 | 2
  readonly #cpuDir: string | undefined
  readonly #memDir: string | undefined
  /** The pids hierarchy's directory, when the pids limit is enforced. */
  readonly pidsDir: string | undefined

  private constructor(version: 1 | 2, cpuDir: string | undefined, memDir: string | undefined, pidsDir: string | undefined) {
    this.version = version
    this.#cpuDir = cpuDir
    this.#memDir = memDir
    this.pidsDir = pidsDir
    this.dirs = [...new Set([cpuDir, memDir, pidsDir].filter((d): d is string => d !== undefined))]
  }

  /** Creates the group with its limits, or returns undefined when cgroups cannot be written here. */
  static create(name: string, limits: CgroupLimits): ProcessCgroup | undefined {
    const safe = name.replace(/[^A-Za-z0-9_.-]/g, '_')
    if (existsSync(join(ROOT, 'cpu', 'cpu.cfs_quota_us')) || existsSync(join(ROOT, 'memory', 'memory.limit_in_bytes'))) {
      let cpuDir: string | undefined
      let memDir: string | undefined
      if (limits.cpu !== undefined && limits.cpu > 0 && existsSync(join(ROOT, 'cpu', 'cpu.cfs_quota_us'))) {
        const dir = join(ROOT, 'cpu', ownPath('cpu') ?? '/', safe)
        if (tryMkdir(dir)) {
          try {
            writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US))
            writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(Math.max(1000, Math.round(limits.cpu * PERIOD_US))))
            cpuDir = dir
          } catch {
            cleanup(dir)
          }
        }
      }
      if (limits.memoryBytes !== undefined && existsSync(join(ROOT, 'memory', 'memory.limit_in_bytes'))) {
        const dir = join(ROOT, 'memory', ownPath('memory') ?? '/', safe)
        if (tryMkdir(dir)) {
          try {
            writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limits.memoryBytes))
            // No swap beyond the limit where the kernel accounts it.
            if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) {
              try {
                writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes))
              } catch {
                // memsw accounting off: the memory limit alone still holds (these machines have no swap).
              }
            }
            memDir = dir
          } catch {
            cleanup(dir)
          }
        }
      }
      let pidsDir: string | undefined
      if (limits.pids !== undefined && existsSync(join(ROOT, 'pids'))) {
        const dir = join(ROOT, 'pids', ownPath('pids') ?? '/', safe)
        if (tryMkdir(dir)) {
          try {
            writeFileSync(join(dir, 'pids.max'), String(limits.pids))
            pidsDir = dir
          } catch {
            cleanup(dir)
          }
        }
      }
      if (cpuDir === undefined && memDir === undefined && pidsDir === undefined) return undefined
      return new ProcessCgroup(1, cpuDir, memDir, pidsDir)
    }
    // cgroup v2: one directory holds both controllers.
    if (!existsSync(join(ROOT, 'cgroup.controllers'))) return undefined
    const dir = join(ROOT, ownPath('') ?? '/', safe)
    if (!tryMkdir(dir)) return undefined
    try {
      if (limits.cpu !== undefined && limits.cpu > 0) writeFileSync(join(dir, 'cpu.max'), `${Math.max(1000, Math.round(limits.cpu * PERIOD_US))} ${PERIOD_US}`)
      if (limits.memoryBytes !== undefined) {
        writeFileSync(join(dir, 'memory.max'), String(limits.memoryBytes))
        if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0')
      }
      if (limits.pids !== undefined && existsSync(join(dir, 'pids.max'))) writeFileSync(join(dir, 'pids.max'), String(limits.pids))
    } catch {
      cleanup(dir)
      return undefined
    }
    return new ProcessCgroup(2, dir, dir, limits.pids !== undefined && existsSync(join(dir, 'pids.max')) ? dir : undefined)
  }

  /** Moves a process into the group (all its hierarchies). */
  add(pid: number): void {
    for (const d of this.dirs) writeFileSync(join(d, 'cgroup.procs'), String(pid))
  }

  /** Whether the memory limit is enforced by this group. */
  get limitsMemory(): boolean {
    return this.#memDir !== undefined
  }

  /** Whether the CPU quota is enforced by this group. */
  get limitsCpu(): boolean {
    return this.#cpuDir !== undefined
  }

  /** How many processes of the group the kernel's OOM killer ended (0 when unknown). */
  oomKills(): number {
    if (this.#memDir === undefined) return 0
    try {
      const file = this.version === 1 ? 'memory.oom_control' : 'memory.events'
      const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(this.#memDir, file), 'utf8'))
      return m ? Number(m[1]) : 0
    } catch {
      return 0
    }
  }

  /** Memory charged to the group now, bytes (undefined when the group does not limit memory). */
  memoryUsage(): number | undefined {
    if (this.#memDir === undefined) return undefined
    return readNumber(join(this.#memDir, this.version === 1 ? 'memory.usage_in_bytes' : 'memory.current'))
  }

  /** Removes the group's directories (they must be empty of processes). Idempotent. */
  remove(): void {
    for (const d of this.dirs) cleanup(d)
  }
}

function cleanup(dir: string): void {
  try {
    rmdirSync(dir)
  } catch {
    // still busy or already gone; a later remove retries
  }
}
