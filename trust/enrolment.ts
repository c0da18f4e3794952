// Enrolment (spec/trust.md "Enrolment"): a validator measures a new node against what it claims. The node's
// bid claims free capacity; the validator asks it to take a job sized to that claim and run the enrolment
// benchmark in it: one CPU worker alone for `seconds`, then one worker per claimed core at once, each counting
// rounds of a fixed loop; then a bounded amount written into the container's memory (a file on /dev/shm, a
// tmpfs whose pages count against the container's memory limit, which is the reservation) and onto its disk
// (the workload's /state, fsynced), each read back and checked. A node that bids for its claim and then
// cannot reserve it, whose cores do not scale (N workers doing the work of far fewer), or whose container
// cannot hold the memory or the disk it claims, claims more than it has: it is flagged. The benchmark is
// measured against the node itself (alone vs together, written vs read back), so it needs no reference hardware.
import type { Capacity } from '../actors/placement/offer.ts'
import { EnrolmentOutputError } from './errors.ts'

/** Workers at once never exceed this (a node claiming more is measured on this many). */
export const ENROL_MAX_WORKERS = 16
/** Below this share of linear scaling, the claimed cores are not there. */
export const ENROL_MIN_EFFICIENCY = 0.5
const MiB = 1024 * 1024
/** Memory written at most (config `trust.enrolMemoryBytes`): ~0.5 s at memory speed on a slow host. */
export const ENROL_MEMORY_CAP_BYTES = 1024 * MiB
/** Disk written at most (config `trust.enrolDiskBytes`): ~0.5 s with its fsync on an SSD. */
export const ENROL_DISK_CAP_BYTES = 256 * MiB
/** Left free in the container beside what is written to its memory: its shell, dd's buffers, /tmp. */
export const ENROL_MEMORY_HEADROOM_BYTES = 32 * MiB

/** One bounded write and read-back (memory or disk), as the benchmark reports it. */
export interface EnrolmentStore {
  /** MiB it was asked to write. */
  mib: number
  /** MiB written (and, on disk, fsynced) before the write stopped. */
  written: number
  /** MiB read back. */
  read: number
  /** Sampled MiB blocks (first, middle, last) read back equal to the block written. */
  intact: boolean
  /** MiB/s written and read back (timed on /proc/uptime, 10 ms resolution: indicative). */
  writeMiBps: number
  readMiBps: number
  /** Disk only: read back with O_DIRECT (from the disk, not the page cache). */
  direct?: boolean
  /** Memory only: the size of the container's /dev/shm, where it was written (absent: not known). */
  roomBytes?: number
  /** Memory only: the container's memory limit as its cgroup says (absent: none or not known). */
  limitBytes?: number
}

export interface EnrolmentMeasure {
  /** Rounds one worker alone did. */
  single: number
  /** Rounds all workers together did (in the same time). */
  total: number
  workers: number
  /** total / (workers × single): 1 for cores that are all there. */
  efficiency: number
  /** Absent: not measured (a report from before memory was, or a claim under the headroom). */
  memory?: EnrolmentStore
  /** Absent: not measured (older report, no disk claimed, or no writable /state in the container). */
  disk?: EnrolmentStore
}

/** What an inflated verdict is about. */
export type EnrolmentFailure = 'reservation' | 'cpu' | 'memory' | 'disk'
export const ENROLMENT_FAILURES: readonly EnrolmentFailure[] = ['reservation', 'cpu', 'memory', 'disk']

export interface Enrolment {
  at: number
  claimed: { cpu: number; memoryBytes: number; diskBytes?: number }
  measured: EnrolmentMeasure | null
  verdict: 'passed' | 'inflated'
  reason: string
  /** Inflated: what was not there (absent in reports from before it was given). */
  failed?: EnrolmentFailure[]
}

/** What one enrolment benchmark is asked to do. */
export interface EnrolmentPlan {
  workers: number
  /** Each half of the cpu part. */
  seconds: number
  /** MiB written to memory; 0: not measured. */
  memoryMiB: number
  /** MiB written to disk; 0: not measured. */
  diskMiB: number
}

/** The plan for a claim: workers per whole claimed core; memory and disk bounded by the caps. */
export function enrolmentPlan(claimed: Pick<Capacity, 'cpu' | 'memoryBytes' | 'diskBytes'>, o: { seconds: number; memoryCapBytes?: number; diskCapBytes?: number }): EnrolmentPlan {
  const memory = Math.min(o.memoryCapBytes ?? ENROL_MEMORY_CAP_BYTES, claimed.memoryBytes - ENROL_MEMORY_HEADROOM_BYTES)
  const disk = Math.min(o.diskCapBytes ?? ENROL_DISK_CAP_BYTES, claimed.diskBytes)
  return { workers: enrolmentWorkers(claimed), seconds: o.seconds, memoryMiB: Math.max(0, Math.floor(memory / MiB)), diskMiB: Math.max(0, Math.floor(disk / MiB)) }
}

const BLOCK = '/tmp/noir-enrol-block'

/**
 * The benchmark as a busybox shell script. Cpu: each worker counts rounds of a 1,000-step loop until
 * `seconds` have passed on /proc/uptime (read without a fork); first one worker, then `workers` at once.
 * Prints `enrolment single=S total=T workers=W`. Then, for memory and disk when asked: a random 1 MiB block
 * is written to a file and doubled in place up to the MiB asked (so every MiB is the block), the file read
 * back whole (disk: O_DIRECT when the filesystem has it, after an fsync), three blocks (first, middle, last)
 * compared with the block; prints `enrolment memory|disk mib= written= read= check=ok|bad write_cs= read_cs=`
 * (`direct=1|0` for disk; `enrolment disk unavailable` when /state cannot be written at all).
 */
export function enrolmentScript(plan: EnrolmentPlan): string {
  const cs = Math.round(plan.seconds * 100)
  const lines = [
    'work() { read u _ < /proc/uptime; s=${u%.*}${u#*.}; e=$((s+' + cs + ')); n=0; while :; do i=0; while [ $i -lt 1000 ]; do i=$((i+1)); done; n=$((n+1)); read u _ < /proc/uptime; [ ${u%.*}${u#*.} -ge $e ] && break; done; echo $n; }',
    'single=$(work)',
    `k=0; while [ $k -lt ${plan.workers} ]; do work > /tmp/enrol.$k & k=$((k+1)); done; wait`,
    'total=0; for f in /tmp/enrol.*; do read n < $f; total=$((total+n)); done; rm -f /tmp/enrol.*',
    `echo "enrolment single=$single total=$total workers=${plan.workers}"`,
  ]
  if (plan.memoryMiB <= 0 && plan.diskMiB <= 0) return lines.join('\n')
  lines.push(
    'now() { read u _ < /proc/uptime; t=${u%.*}${u#*.}; }',
    `dd if=/dev/urandom of=${BLOCK} bs=65536 count=16 iflag=fullblock 2>/dev/null; want=$(md5sum < ${BLOCK})`,
    // w: MiB written; stops at the first failed write (ENOSPC, a killed dd)
    `fill() { w=0; dd if=${BLOCK} of=$1 bs=1048576 count=1 conv=notrunc 2>/dev/null || return 0; w=1; while [ $w -lt $2 ]; do n=$w; [ $((w+n)) -gt $2 ] && n=$(($2-w)); dd if=$1 of=$1 bs=1048576 count=$n seek=$w conv=notrunc 2>/dev/null || return 0; w=$((w+n)); done; }`,
    // r: whole MiB read back; -1 when the read failed
    'back() { r=$(dd if=$1 of=/dev/null bs=1048576 $2 2>&1); r=${r%%+*}; case $r in \'\'|*[!0-9]*) r=-1;; esac; }',
    'check() { ok=bad; [ $w -ge 1 ] || return 0; ok=ok; for i in 0 $((w/2)) $((w-1)); do [ "$(dd if=$1 bs=1048576 skip=$i count=1 2>/dev/null | md5sum)" = "$want" ] || ok=bad; done; }',
  )
  if (plan.memoryMiB > 0) {
    lines.push(
      // where it is written and the limit it counts against, to tell a node without the /dev/shm sizing from one without the memory
      'room=$(df -k /dev/shm 2>/dev/null | awk \'NR==2{print $2}\'); case $room in \'\'|*[!0-9]*) room=-1;; esac',
      'limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null); case $limit in \'\'|*[!0-9]*) limit=max;; esac',
      `f=/dev/shm/noir-enrol; now; a=$t; fill $f ${plan.memoryMiB}; now; b=$t; back $f; [ $r -lt 0 ] && r=0; now; c=$t; check $f; rm -f $f`,
      `echo "enrolment memory mib=${plan.memoryMiB} written=$w read=$r check=$ok write_cs=$((b-a)) read_cs=$((c-b)) room_kib=$room limit=$limit"`,
    )
  }
  if (plan.diskMiB > 0) {
    lines.push(
      'f=/state/noir-enrol',
      'if ( : > $f ) 2>/dev/null; then',
      // the fsync covers the whole file: written means on the disk (a late ENOSPC shows here)
      `  now; a=$t; fill $f ${plan.diskMiB}; dd if=/dev/null of=$f conv=notrunc,fsync 2>/dev/null || w=0; now; b=$t`,
      '  d=1; back $f iflag=direct; if [ $r -lt 0 ]; then d=0; back $f; [ $r -lt 0 ] && r=0; fi; now; c=$t; check $f; rm -f $f',
      `  echo "enrolment disk mib=${plan.diskMiB} written=$w read=$r check=$ok write_cs=$((b-a)) read_cs=$((c-b)) direct=$d"`,
      'else echo "enrolment disk unavailable"; fi',
    )
  }
  lines.push(`rm -f ${BLOCK}`)
  return lines.join('\n')
}

/** The workers for a claim: one per whole claimed core, at least one, at most ENROL_MAX_WORKERS. */
export function enrolmentWorkers(claimed: Pick<Capacity, 'cpu'>): number {
  return Math.max(1, Math.min(ENROL_MAX_WORKERS, Math.floor(claimed.cpu)))
}

const CPU_LINE = /^enrolment single=(\d{1,15}) total=(\d{1,15}) workers=(\d{1,3})$/
const STORE_LINE = /^enrolment (memory|disk) mib=(\d{1,9}) written=(\d{1,9}) read=(\d{1,9}) check=(ok|bad) write_cs=(\d{1,9}) read_cs=(\d{1,9})(?: direct=([01])| room_kib=(\d{1,12}|-1) limit=(\d{1,20}|max))?$/
const DISK_UNAVAILABLE = 'enrolment disk unavailable'

const rate = (mib: number, cs: number): number => Math.round((mib * 100) / Math.max(1, cs))

/**
 * The measure in the benchmark's output, for the plan it was run with. Lines that are not the benchmark's
 * are ignored; a missing, repeated or malformed benchmark line, or one for another plan, is an
 * EnrolmentOutputError (never a pass: the caller gives no verdict).
 */
export function parseEnrolment(stdout: readonly string[], plan: Pick<EnrolmentPlan, 'workers' | 'memoryMiB' | 'diskMiB'>): EnrolmentMeasure {
  let cpu: Pick<EnrolmentMeasure, 'single' | 'total' | 'workers' | 'efficiency'> | undefined
  const stores: { memory?: EnrolmentStore | null; disk?: EnrolmentStore | null } = {}
  for (const raw of stdout) {
    const line = raw.trim()
    if (!line.startsWith('enrolment ')) continue
    const c = CPU_LINE.exec(line)
    if (c) {
      if (cpu) throw new EnrolmentOutputError('the benchmark printed its cpu measure twice')
      const [single, total, workers] = [Number(c[1]), Number(c[2]), Number(c[3])]
      if (workers !== plan.workers) throw new EnrolmentOutputError(`the cpu measure is for ${workers} workers, not the ${plan.workers} asked`)
      if (single <= 0) throw new EnrolmentOutputError('one worker alone counted nothing: no cpu measure')
      cpu = { single, total, workers, efficiency: Math.round((total / (workers * single)) * 1000) / 1000 }
      continue
    }
    if (line === DISK_UNAVAILABLE) {
      if (stores.disk !== undefined) throw new EnrolmentOutputError('the benchmark printed its disk measure twice')
      stores.disk = null
      continue
    }
    const s = STORE_LINE.exec(line)
    if (!s) throw new EnrolmentOutputError(`not a benchmark line: ${line.slice(0, 120)}`)
    const kind = s[1] as 'memory' | 'disk'
    if (stores[kind] !== undefined) throw new EnrolmentOutputError(`the benchmark printed its ${kind} measure twice`)
    const asked = kind === 'memory' ? plan.memoryMiB : plan.diskMiB
    const [mib, written, read, writeCs, readCs] = [Number(s[2]), Number(s[3]), Number(s[4]), Number(s[6]), Number(s[7])]
    if (mib !== asked) throw new EnrolmentOutputError(`the ${kind} measure is for ${mib} MiB, not the ${asked} asked`)
    if (written > mib || read > mib) throw new EnrolmentOutputError(`the ${kind} measure says more than was asked (${written} written, ${read} read of ${mib} MiB)`)
    if ((kind === 'disk' ? s[8] : s[9]) === undefined) throw new EnrolmentOutputError(`the ${kind} measure is malformed: ${line.slice(0, 120)}`)
    // a limit too large to be a number (cgroup v1's "none", ~2^63) is no limit
    const limit = s[10] === undefined || s[10] === 'max' ? undefined : Number(s[10])
    stores[kind] = {
      mib, written, read, intact: s[5] === 'ok', writeMiBps: rate(written, writeCs), readMiBps: rate(read, readCs),
      ...(s[8] !== undefined ? { direct: s[8] === '1' } : {}),
      ...(s[9] !== undefined && s[9] !== '-1' ? { roomBytes: Number(s[9]) * 1024 } : {}),
      ...(limit !== undefined && Number.isSafeInteger(limit) ? { limitBytes: limit } : {}),
    }
  }
  if (!cpu) throw new EnrolmentOutputError('the benchmark printed no cpu measure')
  if (plan.memoryMiB > 0 && !stores.memory) throw new EnrolmentOutputError('the benchmark printed no memory measure')
  if (plan.diskMiB > 0 && stores.disk === undefined) throw new EnrolmentOutputError('the benchmark printed no disk measure')
  if (plan.memoryMiB <= 0 && stores.memory !== undefined) throw new EnrolmentOutputError('a memory measure that was not asked for')
  if (plan.diskMiB <= 0 && stores.disk !== undefined) throw new EnrolmentOutputError('a disk measure that was not asked for')
  return { ...cpu, ...(stores.memory ? { memory: stores.memory } : {}), ...(stores.disk ? { disk: stores.disk } : {}) }
}

const mib = (bytes: number): number => Math.round(bytes / MiB)
/** The write did not complete: stopped short, not all read back, or read back wrong. */
const short = (s: EnrolmentStore): boolean => s.written < s.mib || s.read < s.mib || !s.intact
const storeText = (s: EnrolmentStore): string => `${s.written}/${s.mib} MiB written, ${s.read} read back${s.intact ? '' : ', content wrong'}`
const figures = (s: EnrolmentStore): string => `${s.mib} MiB at ${s.writeMiBps}/${s.readMiBps} MiB/s`

/**
 * The verdict on a measured claim: inflated when the claimed cores (more than one) scale below
 * ENROL_MIN_EFFICIENCY, or when the bounded write to its memory or disk did not complete.
 */
export function judgeEnrolment(claimed: Enrolment['claimed'], measured: EnrolmentMeasure, at: number): Enrolment {
  const failed: EnrolmentFailure[] = []
  const why: string[] = []
  if (measured.workers > 1 && measured.efficiency < ENROL_MIN_EFFICIENCY) {
    failed.push('cpu')
    why.push(`cpu: claims ${claimed.cpu}; ${measured.workers} workers did ${measured.efficiency} of ${measured.workers} times one worker's work`)
  }
  const m = measured.memory
  // a short write where /dev/shm was smaller than the write and the container's limit is the claim: a node
  // whose executor leaves Docker's 64 MiB /dev/shm (an older version), not one short of memory: not measured
  const noRoom = m !== undefined && m.roomBytes !== undefined && m.roomBytes < m.mib * MiB && (m.limitBytes === undefined || m.limitBytes + MiB >= claimed.memoryBytes)
  if (m && short(m) && !noRoom) {
    failed.push('memory')
    const limit = m.limitBytes !== undefined && m.limitBytes + MiB < claimed.memoryBytes ? ` (limit ${mib(m.limitBytes)} MiB)` : ''
    why.push(`memory: claims ${mib(claimed.memoryBytes)} MiB; its container${limit} held ${storeText(m)}`)
  }
  if (measured.disk && short(measured.disk)) {
    failed.push('disk')
    why.push(`disk: claims ${mib(claimed.diskBytes ?? 0)} MiB; ${storeText(measured.disk)}`)
  }
  if (failed.length > 0) return { at, claimed, measured, verdict: 'inflated', reason: why.join('; '), failed }
  const parts = [`${measured.workers} worker(s) at ${measured.efficiency} of linear scaling`]
  if (m && short(m)) parts.push(`memory not measured: a /dev/shm of ${mib(m.roomBytes ?? 0)} MiB for ${m.mib} MiB`)
  else if (m) parts.push(`memory ${figures(m)}`)
  if (measured.disk) parts.push(`disk ${figures(measured.disk)}${measured.disk.direct ? '' : ' (read from cache)'}`)
  return { at, claimed, measured, verdict: 'passed', reason: parts.join('; ') }
}

/** The verdict on a node that bid for its claim and then refused the contract for lack of capacity. */
export function refusedClaim(claimed: Enrolment['claimed'], reason: string, at: number): Enrolment {
  return { at, claimed, measured: null, verdict: 'inflated', reason: `bid for ${claimed.cpu} cpu and ${claimed.memoryBytes} bytes of memory, then could not reserve them: ${reason}`.slice(0, 480), failed: ['reservation'] }
}

/**
 * The verdict on a node whose enrolment job was killed for memory (the executor's OOM kill) while it wrote
 * `memoryMiB` into a container limited to the memory the node claimed free (less the headroom).
 */
export function memoryKilled(claimed: Enrolment['claimed'], memoryMiB: number, reason: string, at: number): Enrolment {
  return { at, claimed, measured: null, verdict: 'inflated', reason: `memory: claims ${mib(claimed.memoryBytes)} MiB; its container was killed for memory writing ${memoryMiB} MiB (${reason})`.slice(0, 480), failed: ['memory'] }
}
