// Folder artifacts (actor bundles with their imports, job outputs) as deterministic POSIX ustar archives:
// entries sorted by path, mode 0644/0755, uid/gid 0, mtime 0, so the same files always give the same digest.
// Packing never follows a link (a workload's output folder is written by the workload: a symlink in it to a
// file of the node must not carry that file off); unpacking accepts only plain files and folders whose
// relative paths stay inside the target (no absolute path, no `..`, no link, no device), and bounds entries
// and bytes. spec/artifacts.md "Archives".
import { chmodSync, constants, lstatSync, readdirSync, mkdirSync, existsSync, type Stats } from 'node:fs'
import { open, mkdir, type FileHandle } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { UnsafeArchiveError } from './errors.ts'

const BLOCK = 512
export const MAX_ARCHIVE_ENTRIES = 10_000
export const MAX_PATH = 255

export interface ArchiveEntry {
  /** Relative POSIX path (`lib/x.ts`); folders end without a slash. */
  path: string
  type: 'file' | 'dir'
  /** Absolute source path of a file on this disk (packing only). */
  source?: string
  bytes: number
  executable?: boolean
}

/** Throws UnsafeArchiveError unless `p` is a relative path that stays inside its folder. */
export function checkRelativePath(p: string, what = 'archive entry'): string {
  if (typeof p !== 'string' || p.length === 0 || p.length > MAX_PATH) throw new UnsafeArchiveError(`${what}: a path of 1 to ${MAX_PATH} characters is needed`)
  if (p.includes('\0') || p.includes('\\')) throw new UnsafeArchiveError(`${what} '${p.slice(0, 80)}': NUL or backslash in the path`)
  if (p.startsWith('/')) throw new UnsafeArchiveError(`${what} '${p.slice(0, 80)}': an absolute path`)
  const parts = p.replace(/\/+$/, '').split('/')
  if (parts.some((s) => s === '..' || s === '' || s === '.')) throw new UnsafeArchiveError(`${what} '${p.slice(0, 80)}': '..', '.' or an empty segment`)
  return parts.join('/')
}

/** The files and folders under `root` (not following links: a link is refused, or skipped with `skipLinks`). */
export function walkFolder(root: string, o: { skipLinks?: boolean; maxEntries?: number } = {}): { entries: ArchiveEntry[]; skipped: string[] } {
  const entries: ArchiveEntry[] = []
  const skipped: string[] = []
  const max = o.maxEntries ?? MAX_ARCHIVE_ENTRIES
  const visit = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name
      const abs = join(root, path)
      const st: Stats = lstatSync(abs)
      if (entries.length >= max) throw new UnsafeArchiveError(`more than ${max} entries under ${root}`)
      if (st.isDirectory()) {
        entries.push({ path: checkRelativePath(path), type: 'dir', bytes: 0 })
        visit(path)
      } else if (st.isFile()) entries.push({ path: checkRelativePath(path), type: 'file', source: abs, bytes: st.size, executable: (st.mode & 0o111) !== 0 })
      else if (o.skipLinks) skipped.push(path)
      else throw new UnsafeArchiveError(`${abs} is not a plain file or folder (a link?): refused`)
    }
  }
  visit('')
  return { entries, skipped }
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0'
}

function header(e: ArchiveEntry): Buffer {
  const h = Buffer.alloc(BLOCK)
  let name = e.type === 'dir' ? `${e.path}/` : e.path
  let prefix = ''
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 2)
    prefix = name.slice(0, cut)
    name = name.slice(cut + 1)
    if (cut < 0 || Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) throw new UnsafeArchiveError(`path too long for the archive: ${e.path.slice(0, 80)}`)
  }
  h.write(name, 0, 100, 'utf8')
  h.write(octal(e.type === 'dir' || e.executable ? 0o755 : 0o644, 8), 100, 'ascii')
  h.write(octal(0, 8), 108, 'ascii')
  h.write(octal(0, 8), 116, 'ascii')
  h.write(octal(e.type === 'file' ? e.bytes : 0, 12), 124, 'ascii')
  h.write(octal(0, 12), 136, 'ascii')
  h.write('        ', 148, 'ascii')
  h.write(e.type === 'dir' ? '5' : '0', 156, 'ascii')
  h.write('ustar\0', 257, 'ascii')
  h.write('00', 263, 'ascii')
  h.write(prefix, 345, 155, 'utf8')
  let sum = 0
  for (const b of h) sum += b
  h.write(octal(sum, 7) + ' ', 148, 'ascii')
  return h
}

/** Writes `entries` (sorted by path) as a ustar archive to `out`; in-memory files may be given as `data`. */
export async function writeArchive(out: string, entries: (ArchiveEntry & { data?: Uint8Array })[]): Promise<void> {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const fh = await open(out, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  try {
    let pos = 0
    const put = async (b: Uint8Array): Promise<void> => {
      await fh.write(b, 0, b.byteLength, pos)
      pos += b.byteLength
    }
    for (const e of sorted) {
      checkRelativePath(e.path)
      if (e.type === 'dir') {
        await put(header(e))
        continue
      }
      const data = e.data ?? (await readWhole(e.source!, e.bytes))
      await put(header({ ...e, bytes: data.byteLength }))
      await put(data)
      const pad = (BLOCK - (data.byteLength % BLOCK)) % BLOCK
      if (pad) await put(Buffer.alloc(pad))
    }
    await put(Buffer.alloc(BLOCK * 2))
  } finally {
    await fh.close()
  }
}

/** A file's bytes, opened without following a link (the file was checked by walkFolder; it must still be one). */
async function readWhole(path: string, expected: number): Promise<Buffer> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
  try {
    const st = await fh.stat()
    if (!st.isFile()) throw new UnsafeArchiveError(`${path} is no longer a plain file`)
    if (st.size !== expected) throw new UnsafeArchiveError(`${path} changed while it was packed`)
    return await fh.readFile()
  } finally {
    await fh.close()
  }
}

const field = (h: Buffer, off: number, len: number): string => {
  const b = h.subarray(off, off + len)
  const z = b.indexOf(0)
  return b.subarray(0, z < 0 ? len : z).toString('utf8')
}

function parseOctal(h: Buffer, off: number, len: number, what: string): number {
  const s = field(h, off, len).trim()
  if (!/^[0-7]*$/.test(s)) throw new UnsafeArchiveError(`archive header: ${what} is not octal`)
  const n = s === '' ? 0 : parseInt(s, 8)
  if (!Number.isSafeInteger(n)) throw new UnsafeArchiveError(`archive header: ${what} out of range`)
  return n
}

/** Reads the headers of a ustar archive; `visit` may read an entry's bytes by `read()` (else they are skipped). */
export async function readArchive(file: string, visit: (h: { path: string; type: string; bytes: number; read: () => Promise<Buffer> }) => Promise<void>, o: { maxEntries?: number } = {}): Promise<void> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW)
  try {
    const size = (await fh.stat()).size
    const h = Buffer.alloc(BLOCK)
    let pos = 0
    let count = 0
    for (;;) {
      if (pos + BLOCK > size) throw new UnsafeArchiveError('the archive ends inside a header')
      await fh.read(h, 0, BLOCK, pos)
      if (h.every((b) => b === 0)) return // end-of-archive marker
      let sum = 0
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!
      if (parseOctal(h, 148, 8, 'checksum') !== sum) throw new UnsafeArchiveError('archive header checksum does not match')
      if (++count > (o.maxEntries ?? MAX_ARCHIVE_ENTRIES)) throw new UnsafeArchiveError(`more than ${o.maxEntries ?? MAX_ARCHIVE_ENTRIES} archive entries`)
      const bytes = parseOctal(h, 124, 12, 'size')
      const type = field(h, 156, 1) || '0'
      const prefix = field(h, 345, 155)
      const name = field(h, 0, 100)
      const path = prefix ? `${prefix}/${name}` : name
      const start = pos + BLOCK
      if (start + bytes > size) throw new UnsafeArchiveError(`archive entry '${path.slice(0, 80)}' runs past the end of the archive`)
      await visit({ path, type, bytes, read: async () => {
        const b = Buffer.alloc(bytes)
        await fh.read(b, 0, bytes, start)
        return b
      } })
      pos = start + Math.ceil(bytes / BLOCK) * BLOCK
    }
  } finally {
    await fh.close()
  }
}

/**
 * Unpacks a ustar archive into `target` (created; it must not exist): plain files and folders only, each path
 * checked, at most `maxBytes` in all. A link, device, absolute path or `..` anywhere is UnsafeArchiveError and
 * leaves nothing behind but the partly filled `target` (the caller removes it).
 */
export async function unpackArchive(file: string, target: string, o: { maxBytes?: number; maxEntries?: number; readableByAll?: boolean } = {}): Promise<string[]> {
  if (existsSync(target)) throw new UnsafeArchiveError(`${target} exists already`)
  // readableByAll: a bundle is read by its sandbox's unprivileged user (files 0644, folders 0755)
  const dirMode = o.readableByAll ? 0o755 : 0o700
  const fileMode = o.readableByAll ? 0o644 : 0o600
  mkdirSync(target, { recursive: true, mode: dirMode })
  chmodSync(target, dirMode)
  const files: string[] = []
  let total = 0
  await readArchive(file, async (e) => {
    if (e.type !== '0' && e.type !== '5') throw new UnsafeArchiveError(`archive entry '${e.path.slice(0, 80)}' is not a plain file or folder (type '${e.type}'): refused`)
    const rel = checkRelativePath(e.path)
    const abs = join(target, ...rel.split('/'))
    if (e.type === '5') {
      await mkdir(abs, { recursive: true, mode: dirMode })
      return
    }
    total += e.bytes
    if (total > (o.maxBytes ?? Number.MAX_SAFE_INTEGER)) throw new UnsafeArchiveError(`the archive unpacks to more than ${o.maxBytes} bytes`)
    await mkdir(join(target, ...posix.dirname(rel).split('/').filter((s) => s !== '.')), { recursive: true, mode: dirMode })
    // O_EXCL | O_NOFOLLOW: a second entry of the same path, or anything already there, is refused
    let out: FileHandle
    try {
      out = await open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, fileMode)
    } catch (err) {
      throw new UnsafeArchiveError(`archive entry '${rel}' cannot be written: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    try {
      await out.write(await e.read())
    } finally {
      await out.close()
    }
    files.push(rel)
  }, o)
  return files
}
