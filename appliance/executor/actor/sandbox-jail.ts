// The jail an SDK actor runs in (spec/actor-executor.md "Isolation"): bubblewrap builds a new root that holds
// only the system's read-only program folders, the runtime's own code, the bundle and the allocation's
// state directory (the one place it may write), with its own PID, IPC and UTS namespaces (a fresh /proc
// that shows only the sandbox's processes), no network unless ports are published, and then drops to an
// unprivileged user (setpriv) before Node starts. Node's permission model runs inside as a second wall.
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs'
import { dirname } from 'node:path'

/** The user and group every sandbox runs as: nobody/nogroup, which owns nothing on the host. */
export const SANDBOX_UID = 65534
export const SANDBOX_GID = 65534

/** System folders bound read-only (those missing on a host are skipped). */
const SYSTEM_READ = ['/usr', '/lib', '/lib64', '/bin', '/sbin', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/localtime', '/etc/ssl']

export interface JailSpec {
  /** Folders and files the sandbox may read (bound read-only at the same paths). */
  readOnly: string[]
  /** The only folder it may write: its state directory (bound read-write at the same path). */
  stateDir: string
  /** Keep the host's network (ports are published); otherwise a network namespace with nothing in it. */
  network: boolean
}

/** bubblewrap's arguments that run `command` in the jail. */
export function jailArgs(j: JailSpec, command: string[]): string[] {
  const ro = [...new Set(j.readOnly.filter((p) => existsSync(p)).map((p) => realpathSync(p)))].sort((a, b) => a.length - b.length)
  // bubblewrap makes the folders on the way to a bind with their host modes (/root is 0700): made here
  // first, 0755, so the unprivileged user can reach what is bound and nothing else.
  const system = SYSTEM_READ.filter((p) => existsSync(p))
  const targets = new Set([...system, ...ro, j.stateDir])
  const ancestors = new Set<string>()
  for (const t of targets) {
    for (let d = dirname(t); d !== '/' && !targets.has(d); d = dirname(d)) ancestors.add(d)
  }
  const dirs = [...ancestors].sort((a, b) => a.length - b.length)
  return [
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
    ...(j.network ? [] : ['--unshare-net']),
    '--die-with-parent', '--new-session',
    '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp',
    ...dirs.flatMap((d) => ['--perms', '0755', '--dir', d]),
    ...system.flatMap((p) => ['--ro-bind', p, p]),
    ...ro.flatMap((p) => ['--ro-bind', p, p]),
    '--bind', j.stateDir, j.stateDir,
    '--chdir', j.stateDir,
    '--',
    'setpriv', `--reuid=${SANDBOX_UID}`, `--regid=${SANDBOX_GID}`, '--clear-groups', '--no-new-privs', '--pdeathsig', 'SIGKILL', '--',
    ...command,
  ]
}

/**
 * The host pid of a process that told us its pid inside a PID namespace: searched among the descendants of
 * `rootPid` (bwrap) by the last field of their NSpid. Undefined when none matches (it already ended).
 */
export function hostPidOf(rootPid: number, nsPid: number): number | undefined {
  const queue = [rootPid]
  for (let guard = 0; queue.length > 0 && guard < 64; guard++) {
    const pid = queue.shift()!
    try {
      const ns = /^NSpid:\s+(.+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim().split(/\s+/)
      if (ns && ns.length > 1 && Number(ns.at(-1)) === nsPid) return pid
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        const kids = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
        if (kids) queue.push(...kids.split(/\s+/).map(Number))
      }
    } catch {
      // it ended while we looked
    }
  }
  return undefined
}
