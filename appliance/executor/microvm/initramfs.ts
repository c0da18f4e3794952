// The per-instance part of a microVM's initramfs: a small uncompressed cpio archive (newc format) holding
// /noir/workload.sh, appended to the image's initramfs. The kernel unpacks concatenated archives in order,
// so the guest sees the image's files plus this one (spec/microvm.md, "Guest protocol").
import { InvalidExecSpecError } from '../../errors.ts'

export interface CpioFile {
  /** Path inside the archive, without a leading slash (e.g. `noir/workload.sh`). */
  path: string
  /** File contents; undefined for a directory. */
  data?: Uint8Array
  /** Permission bits (default 0o755 for directories, 0o644 for files). */
  mode?: number
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0')
const pad4 = (n: number): number => (4 - (n % 4)) % 4

/** Encodes files as a newc ("070701") cpio archive, ending with the TRAILER!!! entry. */
export function encodeCpio(files: readonly CpioFile[]): Uint8Array {
  const parts: Uint8Array[] = []
  const enc = new TextEncoder()
  let ino = 1
  const entry = (name: string, mode: number, data: Uint8Array): void => {
    const nameBytes = enc.encode(`${name}\0`)
    const header =
      '070701' +
      [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0].map(hex8).join('')
    parts.push(enc.encode(header), nameBytes, new Uint8Array(pad4(110 + nameBytes.length)))
    parts.push(data, new Uint8Array(pad4(data.length)))
  }
  for (const f of files) {
    const isDir = f.data === undefined
    const mode = (isDir ? 0o040000 : 0o100000) | (f.mode ?? (isDir ? 0o755 : 0o644))
    entry(f.path.replace(/^\/+/, ''), mode, f.data ?? new Uint8Array(0))
  }
  entry('TRAILER!!!', 0, new Uint8Array(0))
  const total = parts.reduce((n, p) => n + p.length, 0)
  const out = new Uint8Array(total)
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.length
  }
  return out
}

/** Quotes one word for a POSIX shell (single quotes; a quote inside becomes '\''). */
export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * The script the guest init runs: exports the environment, then execs the command (argv, no shell
 * parsing of its words). Rejects env names a shell cannot export and NUL bytes, with InvalidExecSpecError.
 */
export function workloadScript(command: readonly string[], env: Readonly<Record<string, string>>): string {
  if (command.length === 0) throw new InvalidExecSpecError('microvm command is empty')
  const lines = ['#!/bin/sh']
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k)) throw new InvalidExecSpecError(`environment variable name '${k}' is not a valid shell name`)
    if (v.includes('\0')) throw new InvalidExecSpecError(`environment variable '${k}' contains a NUL byte`)
    lines.push(`export ${k}=${shellQuote(v)}`)
  }
  for (const w of command) if (w.includes('\0')) throw new InvalidExecSpecError('microvm command contains a NUL byte')
  lines.push(`exec ${command.map(shellQuote).join(' ')}`)
  return `${lines.join('\n')}\n`
}
