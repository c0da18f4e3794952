// $NOIR_HOME/api.json: how clients find a running daemon's local API. Written (mode 0600, atomically) once
// the daemon is ready; removed on shutdown. Tests wait for it to appear.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const API_FILE = 'api.json'

export interface ApiFile {
  /** Base URL of the local API, e.g. http://127.0.0.1:41234 */
  url: string
  /** The same API on a unix socket (reachable from other network namespaces of this machine); '' when none. */
  socket: string
  /** Bearer token for every request. */
  token: string
  pid: number
  did: string
  peerId: string
  /** The node's libp2p addresses (each ending in /p2p/<peerId>). */
  multiaddrs: string[]
  startedAt: string
}

export function apiFilePath(home: string): string {
  return join(home, API_FILE)
}

export function writeApiFile(home: string, info: ApiFile): void {
  const file = apiFilePath(home)
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 })
  renameSync(tmp, file)
}

/** The api.json of `home`, or undefined when absent or unreadable. */
export function readApiFile(home: string): ApiFile | undefined {
  const file = apiFilePath(home)
  if (!existsSync(file)) return undefined
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as ApiFile
    if (typeof v.url !== 'string' || typeof v.token !== 'string') return undefined
    return v
  } catch {
    return undefined
  }
}

/** Removes api.json if it still belongs to process `pid`. */
export function removeApiFile(home: string, pid = process.pid): void {
  const cur = readApiFile(home)
  if (cur && cur.pid !== pid) return
  rmSync(apiFilePath(home), { force: true })
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
