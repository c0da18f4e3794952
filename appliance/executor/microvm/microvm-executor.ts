// The microvm executor: one QEMU `-M microvm` process per workload instance (spec/microvm.md).
// The serial console is the instance's log and its control line; the guest's init reports the workload's
// exit code on the console (`noir-init: exit N`) and reboots, which ends QEMU (-no-reboot).
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type {
  Availability,
  ExecHandle,
  ExecSpec,
  Executor,
  ExitStatus,
  LogLine,
  UsageStats,
} from '../executor.ts'
import { DEFAULT_PIDS_LIMIT, MIN_CPU } from '../executor.ts'
import { ExecutorUnavailableError, InvalidExecSpecError, UnknownInstanceError } from '../../errors.ts'
import { detectAccelerator, type Accelerator, type AcceleratorChoice } from './accel.ts'
import { AcceleratorUnavailableError, MicrovmBootError, MicrovmImageNotFoundError, VmStateError } from './errors.ts'
import { encodeCpio, workloadScript } from './initramfs.ts'
import { LineLog, LineSplitter } from './line-log.ts'
import { ProcessCgroup } from './process-cgroup.ts'
import { kernelCommandLine, memoryMiB, qemuArgs, STATE_DISK_FILE, STATE_DISK_LABEL, VM_STATE_FILE, vcpus } from './qemu-args.ts'
import { QmpClient, resumeVm, saveVmState } from './vm-state.ts'
import { readProcessUsage } from './proc-usage.ts'
import { CachedProbe, probeCommand } from '../probe.ts'

/** The smallest state disk: 4 MiB (an ext2 file system with room for a few files). */
export const MIN_STATE_DISK_BYTES = 4 * 1024 * 1024
/** The largest: 4 GiB, what one state archive may hold when it is carried to another node. */
export const MAX_STATE_DISK_BYTES = 4 * 1024 ** 3

/** True for a regular file, false when nothing is there; anything else (a link, a folder) is refused. */
function regularFileOrNothing(path: string): boolean {
  let st
  try {
    st = lstatSync(path)
  } catch {
    return false
  }
  if (!st.isFile()) throw new InvalidExecSpecError(`'${path}' is not a regular file (a state disk and a saved state are plain files of the state directory)`)
  return true
}

/** A fresh ext2 state disk (e2fsprogs' mke2fs), labelled for the guest init; sparse until the guest writes. */
function makeStateDisk(path: string, bytes: number): void {
  const kib = Math.floor(bytes / 1024)
  const r = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext2', '-L', STATE_DISK_LABEL, '-m', '0', path, `${kib}k`], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/sbin:/usr/sbin` } })
  if (r.status !== 0) {
    rmSync(path, { force: true })
    throw new ExecutorUnavailableError('microvm', `mke2fs could not make the state disk (Debian package e2fsprogs): ${(r.stderr || r.error?.message || '').trim()}`)
  }
}

let setprivWorks: boolean | undefined
/** util-linux's setpriv with --pdeathsig (Debian: always installed). */
export function hasSetpriv(): boolean {
  setprivWorks ??= spawnSync('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'true'], { stdio: 'ignore', timeout: 10_000 }).status === 0
  return setprivWorks
}

export interface MicrovmExecutorInit {
  /** The node's DID, recorded with each instance (the `noir.node` label). */
  nodeDid?: string
  /** Where instance directories (initramfs, record) live. Default: $TMPDIR/noir-microvm. */
  workDir?: string
  /** Default: qemu-system-x86_64 on PATH. */
  qemuBinary?: string
  /** `auto` (default): KVM when a guest really boots under it, TCG otherwise. */
  accel?: 'auto' | Accelerator
  /** How long start() waits for the guest's init to start the workload. Default 120 s. */
  bootTimeoutMs?: number
}

/** Console lines of the guest protocol (spec/microvm.md); they are not part of the workload's log. */
const START_MARKER = 'noir-init: start'
const EXIT_MARKER = /^noir-init: exit (\d+)$/
const STOP_LINE = 'noir-stop\n'
/** How often the stop line is repeated until the guest ends (a line sent mid-boot may be dropped). */
const STOP_REPEAT_MS = 300
const OOM_MARKER = 'noir-init: oom'
const PANIC_LINE = /Kernel panic - not syncing/

interface Instance {
  handle: ExecHandle
  spec: ExecSpec
  dir: string
  launchInitrd: string | undefined
  /** The state disk (`<stateDir>/disk.img`) when the guest keeps its state on one. */
  stateDisk?: string
  /** A saved state this instance resumes from instead of booting (`<stateDir>/vm.state`). */
  resumeFrom?: string
  /** Its QMP socket (state-disk guests only). */
  qmp?: string
  /** Saved by suspend(): the guest is paused and its state written; stop() ends it at once. */
  suspended: boolean
  /** Why the saved state did not resume (the QEMU is then killed and the boot fails with it). */
  resumeError?: string
  log: LineLog
  child?: ChildProcessWithoutNullStreams
  cgroup?: ProcessCgroup
  accel?: Accelerator
  started?: Promise<void>
  workloadStarted: boolean
  onWorkloadStart: Array<() => void>
  guestCode?: number
  oomSeen: boolean
  panicSeen: boolean
  stopRequested: boolean
  killedBy?: 'stop' | 'cpu-time'
  stderrTail: string
  exit?: ExitStatus
  exited: Promise<ExitStatus>
  resolveExit: (s: ExitStatus) => void
  lastUsage?: UsageStats
  stopTimer?: NodeJS.Timeout
  cpuWatch?: NodeJS.Timeout
}

export class MicrovmExecutor implements Executor {
  readonly kind = 'microvm' as const
  readonly #instances = new Map<string, Instance>()
  readonly #workDir: string
  readonly #qemu: string
  readonly #accelMode: 'auto' | Accelerator
  readonly #bootTimeoutMs: number
  readonly #nodeDid: string | undefined

  constructor(init: MicrovmExecutorInit = {}) {
    this.#workDir = init.workDir ?? join(tmpdir(), 'noir-microvm')
    this.#qemu = init.qemuBinary ?? 'qemu-system-x86_64'
    this.#accelMode = init.accel ?? 'auto'
    this.#bootTimeoutMs = init.bootTimeoutMs ?? 120_000
    this.#nodeDid = init.nodeDid
  }

  async available(): Promise<Availability> {
    return this.#availability.get()
  }

  readonly #availability = new CachedProbe<Availability>(async () => {
    // `-machine help` alone answers both questions: qemu runs, and it knows the microvm machine type
    const m = await probeCommand(this.#qemu, ['-machine', 'help'])
    if (!m.ok) return { ok: false, reason: `${this.#qemu} cannot run (Debian package qemu-system-x86): ${m.reason ?? ''}` }
    if (!/^microvm\b/m.test(m.stdout)) return { ok: false, reason: `${this.#qemu} has no microvm machine type` }
    return { ok: true }
  })

  /** The accelerator new instances use, and why (probes KVM once per kernel; see accel.ts). */
  async accelerator(kernel: string): Promise<AcceleratorChoice> {
    if (this.#accelMode === 'tcg') return { accel: 'tcg', reason: 'configured' }
    const found = await detectAccelerator(this.#qemu, kernel)
    if (this.#accelMode === 'kvm' && found.accel !== 'kvm') throw new AcceleratorUnavailableError('kvm', found.reason)
    return found
  }

  async prepare(spec: ExecSpec): Promise<ExecHandle> {
    const rt = spec.runtime
    if (rt.kind !== 'microvm') throw new InvalidExecSpecError(`the microvm executor cannot run a '${rt.kind}' runtime`)
    if (this.#instances.has(spec.allocationId)) throw new InvalidExecSpecError(`allocation '${spec.allocationId}' already has a microVM instance`)
    if (!(spec.limits.memoryBytes > 0)) throw new InvalidExecSpecError('limits.memoryBytes must be positive')
    if (!(spec.limits.cpu >= MIN_CPU)) throw new InvalidExecSpecError(`limits.cpu must be at least ${MIN_CPU}`)
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(spec.allocationId)) throw new InvalidExecSpecError(`allocation id '${spec.allocationId}' must be 1-128 of [A-Za-z0-9_.-]`)
    if (!existsSync(rt.kernel)) throw new MicrovmImageNotFoundError(rt.kernel, 'kernel')
    if (rt.initrd !== undefined && !existsSync(rt.initrd)) throw new MicrovmImageNotFoundError(rt.initrd, 'initramfs')
    if (rt.rootfs !== undefined && !existsSync(rt.rootfs)) throw new MicrovmImageNotFoundError(rt.rootfs, 'rootfs')
    mkdirSync(spec.stateDir, { recursive: true })
    if (!statSync(spec.stateDir).isDirectory()) throw new InvalidExecSpecError(`state directory '${spec.stateDir}' is not a directory`)
    if (rt.command !== undefined && rt.initrd === undefined) {
      throw new InvalidExecSpecError('a microvm command needs the noir initramfs (runtime.initrd) whose init runs it')
    }
    let stateDisk: string | undefined
    let resumeFrom: string | undefined
    if (rt.stateDiskBytes !== undefined) {
      if (!Number.isSafeInteger(rt.stateDiskBytes) || rt.stateDiskBytes < MIN_STATE_DISK_BYTES || rt.stateDiskBytes > MAX_STATE_DISK_BYTES) {
        throw new InvalidExecSpecError(`stateDiskBytes must be a whole number from ${MIN_STATE_DISK_BYTES} to ${MAX_STATE_DISK_BYTES}`)
      }
      // Only these two fixed names in the allocation's own state directory, and only regular files: whatever
      // came in a state archive can never point QEMU at another host path (links are refused here too).
      stateDisk = join(spec.stateDir, STATE_DISK_FILE)
      const disk = regularFileOrNothing(stateDisk)
      if (!disk) makeStateDisk(stateDisk, rt.stateDiskBytes)
      const saved = join(spec.stateDir, VM_STATE_FILE)
      if (regularFileOrNothing(saved)) resumeFrom = saved
    }

    const dir = join(this.#workDir, spec.allocationId)
    mkdirSync(dir, { recursive: true })
    let launchInitrd = rt.initrd
    if (rt.command !== undefined && rt.initrd !== undefined) {
      // The image's initramfs, zero padding (the kernel looks for the next archive on a 4-byte boundary
      // and skips zeros), then a small archive holding /noir/workload.sh.
      const script = new TextEncoder().encode(workloadScript(rt.command, spec.env))
      const extra = encodeCpio([{ path: 'noir' }, { path: 'noir/workload.sh', data: script, mode: 0o755 }])
      const base = readFileSync(rt.initrd)
      launchInitrd = join(dir, 'initramfs.img')
      writeFileSync(launchInitrd, Buffer.concat([base, Buffer.alloc((512 - (base.length % 512)) % 512), extra]))
    } else if (Object.keys(spec.env).length > 0 && rt.command === undefined) {
      // Without the noir init there is nowhere to put the environment: refuse rather than drop it.
      throw new InvalidExecSpecError('env needs runtime.command (the noir init exports it for the workload)')
    }
    const handle: ExecHandle = { allocationId: spec.allocationId, kind: 'microvm', ref: `microvm-${spec.allocationId}-${randomUUID().slice(0, 8)}` }
    writeFileSync(join(dir, 'instance.json'), JSON.stringify({ ref: handle.ref, allocationId: spec.allocationId, node: this.#nodeDid ?? null, labels: spec.labels ?? {} }))
    let resolveExit!: (s: ExitStatus) => void
    const exited = new Promise<ExitStatus>((r) => (resolveExit = r))
    this.#instances.set(handle.ref, {
      handle, spec, dir, launchInitrd, ...(stateDisk ? { stateDisk } : {}), ...(resumeFrom ? { resumeFrom } : {}), suspended: false,
      log: new LineLog(), workloadStarted: false, onWorkloadStart: [],
      oomSeen: false, panicSeen: false, stopRequested: false, stderrTail: '', exited, resolveExit,
    })
    return handle
  }

  /** Boots the VM; resolves once the guest's init has started the workload (a booted guest, as docker start). */
  start(handle: ExecHandle): Promise<void> {
    const inst = this.#get(handle)
    inst.started ??= this.#boot(inst)
    return inst.started
  }

  async #boot(inst: Instance): Promise<void> {
    const rt = inst.spec.runtime
    if (rt.kind !== 'microvm') throw new InvalidExecSpecError('not a microvm spec')
    if (inst.exit !== undefined) throw new MicrovmBootError(inst.handle.allocationId, `the instance already ended (${inst.exit.reason})`)
    const { accel } = await this.accelerator(rt.kernel)
    inst.accel = accel
    if (inst.stateDisk !== undefined) {
      // a unix socket path has at most 107 bytes: a long work directory gets one in the temp folder
      const near = join(inst.dir, 'qmp.sock')
      inst.qmp = near.length < 100 ? near : join(tmpdir(), `noir-qmp-${randomUUID().slice(0, 12)}.sock`)
      rmSync(inst.qmp, { force: true })
    }
    const args = qemuArgs(inst.spec, {
      accel, kernel: rt.kernel, initrd: inst.launchInitrd, rootfs: rt.rootfs, append: kernelCommandLine(inst.spec, accel),
      memoryMiB: memoryMiB(inst.spec.limits.memoryBytes), cpus: vcpus(inst.spec.limits.cpu),
      ...(inst.stateDisk !== undefined ? { stateDisk: inst.stateDisk } : {}),
      ...(inst.qmp !== undefined ? { qmp: inst.qmp } : {}),
      ...(inst.resumeFrom !== undefined ? { incoming: inst.resumeFrom } : {}),
    })
    // setpriv --pdeathsig: QEMU is killed if this process dies (its exec keeps the pid, so stats stay right).
    const child = hasSetpriv()
      ? spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', this.#qemu, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(this.#qemu, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    inst.child = child
    // A fractional CPU share is a cgroup quota on the QEMU process (all its vCPU threads).
    inst.cgroup = ProcessCgroup.create(`noir-microvm-${inst.handle.allocationId}`, { cpu: inst.spec.limits.cpu, pids: inst.spec.limits.pids ?? DEFAULT_PIDS_LIMIT })
    if (child.pid !== undefined) {
      try {
        inst.cgroup?.add(child.pid)
      } catch {
        // the process may already be gone; its exit is reported below
      }
      writeFileSync(join(inst.dir, 'pid'), String(child.pid))
    }
    const splitter = new LineSplitter((line) => this.#onConsoleLine(inst, line))
    child.stdout.on('data', (d: Buffer) => splitter.write(d))
    child.stderr.on('data', (d: Buffer) => {
      inst.stderrTail = (inst.stderrTail + d.toString('utf8')).slice(-4000)
    })
    child.stdin.on('error', () => undefined) // the guest may be gone when a stop line is written
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve))
    child.once('close', (code, signal) => {
      splitter.end()
      this.#onQemuExit(inst, code, signal)
    })
    if (inst.spec.limits.cpuTimeMs !== undefined) this.#watchCpuTime(inst, inst.spec.limits.cpuTimeMs)

    const workloadStarted = new Promise<void>((resolve) => {
      if (inst.workloadStarted) resolve()
      else inst.onWorkloadStart.push(resolve)
    })
    // A saved guest is past its init's start line: it runs again once QEMU has loaded it and continues.
    if (inst.resumeFrom !== undefined) {
      const from = inst.resumeFrom
      void this.#resume(inst).then(() => {
        inst.resumeFrom = undefined
        rmSync(from, { force: true }) // loaded: a later launch of this allocation boots from the disk
        inst.workloadStarted = true
        for (const f of inst.onWorkloadStart.splice(0)) f()
      }, (err: Error) => {
        // not loadable here (another QEMU's stream, a broken file): dropped, so the next launch of this
        // allocation boots from the disk instead of failing the same way again
        inst.resumeError = err.message
        rmSync(from, { force: true })
        this.#kill(inst, 'stop')
      })
      // QEMU that ends before the state was loaded (it refused the stream at once) drops it too, whether or
      // not the QMP side noticed first; a stop asked meanwhile keeps it (it may be loaded next time)
      void inst.exited.then(() => {
        if (inst.resumeFrom === from && !inst.stopRequested) rmSync(from, { force: true })
      })
    }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.#bootTimeoutMs)))
    try {
      const r = await Promise.race([workloadStarted.then(() => 'started' as const), inst.exited, spawnError, timeout])
      if (r === 'started') return
      if (r === 'timeout') {
        this.#kill(inst, 'stop')
        throw new MicrovmBootError(inst.handle.allocationId, `the guest did not start its workload within ${this.#bootTimeoutMs} ms`)
      }
      if (r instanceof Error) throw new ExecutorUnavailableError('microvm', `${this.#qemu} could not start: ${r.message}`)
      // Ended before its workload started: a stop during boot is not a boot failure.
      if (inst.resumeError !== undefined) throw new MicrovmBootError(inst.handle.allocationId, `its saved state did not resume: ${inst.resumeError}`)
      if (inst.stopRequested) return
      throw new MicrovmBootError(inst.handle.allocationId, r.message ?? `the guest ended (${r.reason}) before its workload started`)
    } finally {
      clearTimeout(timer)
    }
  }

  /** Waits for QEMU to load the saved state (`-incoming`), then lets the guest run on (`cont`). */
  async #resume(inst: Instance): Promise<void> {
    const qmp = await this.#qmpOf(inst)
    try {
      await resumeVm(qmp)
    } finally {
      qmp.close()
    }
  }

  async #qmpOf(inst: Instance): Promise<QmpClient> {
    const path = inst.qmp
    if (path === undefined) throw new VmStateError(`microVM '${inst.handle.allocationId}' has no QMP socket (it keeps no state disk)`)
    let last: unknown
    for (let i = 0; i < 200; i++) {
      if (inst.exit !== undefined) throw new VmStateError(`microVM '${inst.handle.allocationId}' ended`)
      try {
        return await QmpClient.connect(path)
      } catch (err) {
        last = err
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    throw new VmStateError(`QMP of microVM '${inst.handle.allocationId}' unreachable: ${String(last)}`)
  }

  /**
   * Pauses a state-disk guest and writes its whole state to `<stateDir>/vm.state` (written beside it, then
   * renamed: a failed save leaves no half file to resume from). The guest stays paused; stop() ends it.
   * False for a guest without a state disk (a 9p share cannot be migrated) or one not running.
   */
  async suspend(handle: ExecHandle): Promise<boolean> {
    const inst = this.#get(handle)
    if (inst.stateDisk === undefined || inst.child === undefined || inst.exit !== undefined || !inst.workloadStarted) return false
    if (inst.suspended) return true
    const target = join(inst.spec.stateDir, VM_STATE_FILE)
    const tmp = `${target}.part-${randomUUID().slice(0, 8)}`
    const qmp = await this.#qmpOf(inst)
    try {
      await saveVmState(qmp, tmp)
      renameSync(tmp, target)
      inst.suspended = true
      return true
    } catch (err) {
      rmSync(tmp, { force: true })
      // the guest was paused for the save: let it run on, the caller stops it as any other
      await qmp.execute('cont').catch(() => undefined)
      throw err
    } finally {
      qmp.close()
    }
  }

  #onConsoleLine(inst: Instance, line: string): void {
    const ts = Date.now()
    if (line === START_MARKER) {
      inst.workloadStarted = true
      for (const f of inst.onWorkloadStart.splice(0)) f()
      if (inst.stopRequested) this.#sendStop(inst)
      return
    }
    const m = EXIT_MARKER.exec(line)
    if (m) {
      inst.guestCode = Number(m[1])
      return
    }
    // After the exit report only the guest's own shutdown messages follow: not the workload's log.
    if (inst.guestCode !== undefined) return
    if (line === OOM_MARKER) {
      inst.oomSeen = true
      return
    }
    if (line.includes('noir-stop')) return // an echo of our control line, never the workload's
    if (PANIC_LINE.test(line)) inst.panicSeen = true
    inst.log.push({ ts, stream: 'console', line })
  }

  #onQemuExit(inst: Instance, code: number | null, signal: NodeJS.Signals | null): void {
    clearInterval(inst.stopTimer)
    clearInterval(inst.cpuWatch)
    const finishedAt = Date.now()
    let status: ExitStatus
    if (inst.killedBy === 'stop' && inst.suspended) {
      status = { code: 0, oomKilled: false, reason: 'stopped', message: 'suspended: its state was saved to resume', finishedAt }
    } else if (inst.killedBy === 'stop') {
      status = { code: null, signal: 'SIGKILL', oomKilled: false, reason: 'killed', finishedAt }
    } else if (inst.killedBy === 'cpu-time') {
      status = { code: null, signal: 'SIGKILL', oomKilled: false, reason: 'cpu-time', message: 'the VM used up its CPU time budget', finishedAt }
    } else if (inst.guestCode !== undefined) {
      // The guest's kernel OOM killer ended the workload (it then exits 137 = 128 + SIGKILL).
      const oom = inst.oomSeen && inst.guestCode === 137
      status = { code: inst.guestCode, oomKilled: oom, reason: oom ? 'oom' : inst.stopRequested ? 'stopped' : 'exited', finishedAt }
    } else {
      const why = inst.panicSeen
        ? 'the guest kernel panicked'
        : `QEMU exited (${code ?? signal}) without a guest exit status: ${inst.stderrTail.trim().split('\n').slice(-3).join(' | ') || 'no message'}`
      status = { code: null, ...(signal !== null ? { signal } : {}), oomKilled: false, reason: 'error', message: why, finishedAt }
    }
    inst.lastUsage = { ...(inst.lastUsage ?? this.#zeroUsage(inst)), ts: finishedAt, memoryBytes: 0 }
    inst.cgroup?.remove()
    this.#settle(inst, status)
  }

  #settle(inst: Instance, status: ExitStatus): void {
    if (inst.exit !== undefined) return
    inst.exit = status
    inst.log.close()
    for (const f of inst.onWorkloadStart.splice(0)) f()
    inst.resolveExit(status)
  }

  #sendStop(inst: Instance): void {
    const write = (): void => {
      if (inst.child !== undefined && inst.exit === undefined && inst.child.stdin.writable) inst.child.stdin.write(STOP_LINE)
    }
    write()
    if (inst.stopTimer === undefined) inst.stopTimer = setInterval(write, STOP_REPEAT_MS)
  }

  #kill(inst: Instance, why: 'stop' | 'cpu-time'): void {
    if (inst.child === undefined || inst.exit !== undefined) return
    inst.killedBy ??= why
    inst.child.kill('SIGKILL')
  }

  #watchCpuTime(inst: Instance, budgetMs: number): void {
    inst.cpuWatch = setInterval(() => {
      const u = this.#sample(inst)
      if (u !== undefined && u.cpuNanos / 1e6 > budgetMs) this.#kill(inst, 'cpu-time')
    }, 250)
  }

  async stop(handle: ExecHandle, opts: { graceMs: number }): Promise<ExitStatus> {
    const inst = this.#get(handle)
    if (inst.exit !== undefined) return inst.exit
    inst.stopRequested = true
    if (inst.child === undefined) {
      // Prepared, never started: nothing runs; it simply will not start.
      this.#settle(inst, { code: null, oomKilled: false, reason: 'stopped', finishedAt: Date.now() })
      return inst.exit!
    }
    if (opts.graceMs <= 0 || inst.suspended) {
      // a suspended guest is paused with its state saved: nothing in it would answer the stop line
      this.#kill(inst, 'stop')
      return inst.exited
    }
    // The guest init turns the stop line into SIGTERM for the workload; before it runs, the line waits.
    if (inst.workloadStarted) this.#sendStop(inst)
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

  /** Host-side usage of the VM: the QEMU process' CPU time, resident memory and disk I/O (spec/microvm.md). */
  async stats(handle: ExecHandle): Promise<UsageStats> {
    const inst = this.#get(handle)
    if (inst.exit === undefined) this.#sample(inst)
    return inst.lastUsage ?? this.#zeroUsage(inst)
  }

  /** Reads QEMU's usage now and keeps it (the last sample is what stats() reports after the end). */
  #sample(inst: Instance): UsageStats | undefined {
    const pid = inst.child?.pid
    if (pid === undefined) return undefined
    const u = readProcessUsage(pid)
    if (u === undefined) return undefined
    inst.lastUsage = {
      ts: Date.now(), cpuNanos: u.cpuNanos, memoryBytes: u.rssBytes, memoryLimitBytes: memoryMiB(inst.spec.limits.memoryBytes) * 1024 * 1024,
      netRxBytes: 0, netTxBytes: 0, diskReadBytes: u.readBytes, diskWriteBytes: u.writeBytes,
    }
    return inst.lastUsage
  }

  #zeroUsage(inst: Instance): UsageStats {
    return {
      ts: Date.now(), cpuNanos: 0, memoryBytes: 0, memoryLimitBytes: memoryMiB(inst.spec.limits.memoryBytes) * 1024 * 1024,
      netRxBytes: 0, netTxBytes: 0, diskReadBytes: 0, diskWriteBytes: 0,
    }
  }

  async remove(handle: ExecHandle): Promise<void> {
    const inst = this.#instances.get(handle.ref)
    if (inst === undefined) return
    if (inst.exit === undefined) await this.stop(handle, { graceMs: 0 })
    this.#instances.delete(handle.ref)
    inst.cgroup?.remove()
    rmSync(inst.dir, { recursive: true, force: true })
    if (inst.qmp !== undefined) rmSync(inst.qmp, { force: true })
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
