// A container's secret files (spec/secrets.md "Targets"): written on the RAM-backed tmpfs at /dev/shm, never
// on a disk, in a folder only root may enter, each file bind-mounted read-only at its path in the container;
// removed with the container. A host without a tmpfs there gets no secret files (refused, never a disk).
import { chmodSync, mkdirSync, rmdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { InvalidExecSpecError } from '../../errors.ts'

const TMPFS_MAGIC = 0x01021994
export const SECRET_FILES_ROOT = '/dev/shm/noir-secrets'
const CONTAINER_PATH = /^\/run\/secrets\/[A-Za-z0-9_.-]{1,128}$/

const sanitize = (s: string): string => s.replace(/[^a-zA-Z0-9_.-]/g, '_')

/** Where the files of one allocation of one node live on the host. */
export function secretFilesDir(nodeId: string, allocationId: string): string {
  return join(SECRET_FILES_ROOT, sanitize(nodeId), sanitize(allocationId))
}

/** Writes the files (container path -> value) afresh; returns Docker's read-only binds for them. */
export function writeSecretFiles(dir: string, files: Record<string, string>): string[] {
  let type: number
  try {
    type = Number(statfsSync('/dev/shm').type)
  } catch {
    type = -1
  }
  if (type !== TMPFS_MAGIC) throw new InvalidExecSpecError('secret files need a tmpfs at /dev/shm on this host (they are never written to a disk)')
  rmSync(dir, { recursive: true, force: true })
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch {
    // another allocation of this node removed the (then empty) node folder between two steps: once more
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  }
  chmodSync(SECRET_FILES_ROOT, 0o700)
  const binds: string[] = []
  Object.entries(files).forEach(([path, value], i) => {
    if (!CONTAINER_PATH.test(path)) throw new InvalidExecSpecError(`a secret file goes under /run/secrets/ (got '${path}')`)
    const host = join(dir, `s${i}`)
    // readable by the container's user whoever it is; the folder above keeps every other host user out
    writeFileSync(host, value, { mode: 0o444, flag: 'wx' })
    binds.push(`${host}:${path}:ro`)
  })
  return binds
}

/** Removes the allocation's files, and its node's folder once that holds no other allocation's. */
export function removeSecretFiles(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  try {
    rmdirSync(dirname(dir))
  } catch {
    // other allocations' files are there, or it is gone already
  }
}
