// How the daemon's V8 decides to run a full collection when bytes pass through buffers (spec/artifacts.md
// "Figures"). Node buffers of more than 4 KiB live outside the JS heap. V8 before 14.8 counts every byte
// allocated in them since the last mark-compact, dead or alive, and starts a mark-compact for every 64 MB of
// them. Moving an artifact allocates at least one buffer per byte on each side (a read from disk or a socket,
// the Noise output), so a daemon ran a full collection of its whole heap (~55 MB, against ~15 MB for a bare
// libp2p process) several times per 64 MiB sent or received: a quarter of each side's main thread.
//
// V8's `--external-memory-accounted-in-global-limit` counts what buffers hold instead, inside the limit the
// heap itself is held to (which grows with the heap). V8 turned it on by default in 14.8 and removed the flag
// there; Node 24 runs V8 13.6, so a daemon asks for it at start. Dead buffers are then released a little
// later: a daemon holds more memory between collections (figures in the spec). Imports nothing.
import { setFlagsFromString } from 'node:v8'

export const EXTERNAL_MEMORY_FLAG = '--external-memory-accounted-in-global-limit'

/**
 * Whether the V8 `version` ("13.6.233.17-node.53") has the flag and needs it: from 13 (the versions this was
 * measured on; Node 22's 12.4 keeps its default) until 14.8, where it is the default and the flag is gone (a
 * flag V8 does not know is an error it prints).
 */
export function needsExternalMemoryFlag(version: string): boolean {
  const m = /^(\d+)\.(\d+)\./.exec(version)
  if (!m) return false
  const major = Number(m[1])
  const minor = Number(m[2])
  return major === 13 || (major === 14 && minor < 8)
}

let set = false

/** Sets the flag in this process where this V8 needs it (once). Returns whether it is in force by this call. */
export function countBuffersInHeapLimit(version: string = process.versions.v8): boolean {
  if (set) return true
  if (!needsExternalMemoryFlag(version)) return false
  setFlagsFromString(EXTERNAL_MEMORY_FLAG)
  set = true
  return true
}
