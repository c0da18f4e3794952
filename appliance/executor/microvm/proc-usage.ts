// CPU time, resident memory and disk I/O of one host process, read from /proc (Linux).
import { readFileSync } from 'node:fs'

export interface ProcessUsage {
  /** User + system CPU time of all its threads, nanoseconds. */
  cpuNanos: number
  rssBytes: number
  readBytes: number
  writeBytes: number
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux architecture we run on). */
const USER_HZ = 100

export function readProcessUsage(pid: number): ProcessUsage | undefined {
  let stat: string
  let status: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    status = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  // Fields after the command name (which may hold spaces and parentheses): state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11] ?? 0)
  const stime = Number(fields[12] ?? 0)
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  let readBytes = 0
  let writeBytes = 0
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8')
    readBytes = Number(/^read_bytes: (\d+)$/m.exec(io)?.[1] ?? 0)
    writeBytes = Number(/^write_bytes: (\d+)$/m.exec(io)?.[1] ?? 0)
  } catch {
    // /proc/<pid>/io needs the same user or root; leave the counters at 0
  }
  return {
    cpuNanos: ((utime + stime) * 1e9) / USER_HZ,
    rssBytes: rss ? Number(rss[1]) * 1024 : 0,
    readBytes,
    writeBytes,
  }
}
