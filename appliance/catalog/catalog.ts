// The owner's catalog: the WASI modules, actor bundles and microVM kernels and root filesystems this node's
// owner has made available to other parties by name (spec/catalog.md). A workload from the mesh names an
// entry, never a path: the name is resolved inside `<home>/catalog` only, and the bytes are checked against
// the digest recorded when the owner added them. Files are copied in (never linked) and kept 0600 in a 0700
// folder; the manifest is the only index, so a file planted beside the entries is never served.
import { createHash, randomBytes } from 'node:crypto'
import { constants, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync, chmodSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { CatalogEntryCorruptError, CatalogEntryNotFoundError, InvalidCatalogEntryError } from '../errors.ts'

export const CATALOG_KINDS = ['wasm', 'actor', 'kernel', 'initrd', 'rootfs'] as const
export type CatalogKind = (typeof CATALOG_KINDS)[number]

/** What a catalog name may be: the same pattern spec/workload.schema.json gives the runtime fields. */
export const CATALOG_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/

export interface CatalogEntry {
  kind: CatalogKind
  name: string
  sha256: string
  bytes: number
  addedAt: number
}

const MAX_ENTRY_BYTES = 1024 * 1024 * 1024

export const isCatalogKind = (k: string): k is CatalogKind => (CATALOG_KINDS as readonly string[]).includes(k)

export class Catalog {
  readonly dir: string

  constructor(home: string) {
    this.dir = join(home, 'catalog')
  }

  /** Every entry, by kind then name. */
  list(): CatalogEntry[] {
    return Object.values(this.#manifest()).sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name))
  }

  /** Copies `file` into the catalog as `kind/name` (replacing an entry of that name). The owner's act. */
  add(kind: string, name: string, file: string): CatalogEntry {
    if (!isCatalogKind(kind)) throw new InvalidCatalogEntryError(`kind must be one of ${CATALOG_KINDS.join(', ')} (got '${kind}')`)
    if (!CATALOG_NAME.test(name)) throw new InvalidCatalogEntryError(`name must match ${CATALOG_NAME.source} (got '${name}')`)
    let bytes: Buffer
    try {
      bytes = readFileSync(file)
    } catch (err) {
      throw new InvalidCatalogEntryError(`cannot read '${file}': ${(err as Error).message}`)
    }
    if (bytes.length === 0 || bytes.length > MAX_ENTRY_BYTES) throw new InvalidCatalogEntryError(`'${file}' must hold 1 byte to 1 GiB (has ${bytes.length})`)
    mkdirSync(join(this.dir, kind), { recursive: true, mode: 0o700 })
    chmodSync(this.dir, 0o700)
    const target = join(this.dir, kind, name)
    const tmp = `${target}.${randomBytes(8).toString('hex')}.tmp`
    writeFileSync(tmp, bytes, { mode: 0o600, flag: 'wx' })
    renameSync(tmp, target) // replaces a planted link or file of that name rather than writing through it
    const entry: CatalogEntry = { kind, name, sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length, addedAt: Date.now() }
    const m = this.#manifest()
    m[`${kind}/${name}`] = entry
    this.#writeManifest(m)
    return entry
  }

  /** Removes an entry; false when there was none. */
  remove(kind: string, name: string): boolean {
    if (!isCatalogKind(kind) || !CATALOG_NAME.test(name)) return false
    const m = this.#manifest()
    if (!m[`${kind}/${name}`]) return false
    delete m[`${kind}/${name}`]
    this.#writeManifest(m)
    rmSync(join(this.dir, kind, name), { force: true })
    return true
  }

  /** Whether the owner installed `kind/name` (a manifest look-up: nothing is read or hashed). */
  has(kind: CatalogKind, name: string): boolean {
    return CATALOG_NAME.test(name) && this.#manifest()[`${kind}/${name}`] !== undefined
  }

  /**
   * The path of an entry another party named, after checking its bytes against the recorded digest.
   * A name that is not an installed entry, whatever it is, gets the same CatalogEntryNotFoundError: nothing
   * is opened for it, so no answer tells whether some file exists on this node.
   */
  async resolve(kind: CatalogKind, name: string): Promise<string> {
    const entry = CATALOG_NAME.test(name) ? this.#manifest()[`${kind}/${name}`] : undefined
    if (!entry) throw new CatalogEntryNotFoundError(kind, name)
    const path = join(this.dir, kind, name)
    let fh: FileHandle
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
    } catch {
      throw new CatalogEntryCorruptError(`catalog entry ${kind}/${name} is missing or is not a plain file`)
    }
    try {
      const st = await fh.stat()
      if (!st.isFile() || st.size !== entry.bytes) throw new CatalogEntryCorruptError(`catalog entry ${kind}/${name} changed since it was added (size)`)
      // Hashed in chunks between turns of the event loop: a large rootfs must not stall the daemon's beats.
      const hash = createHash('sha256')
      const buf = Buffer.allocUnsafe(1 << 20)
      for (let r = await fh.read(buf, 0, buf.length); r.bytesRead > 0; r = await fh.read(buf, 0, buf.length)) hash.update(buf.subarray(0, r.bytesRead))
      if (hash.digest('hex') !== entry.sha256) throw new CatalogEntryCorruptError(`catalog entry ${kind}/${name} changed since it was added (digest)`)
    } finally {
      await fh.close()
    }
    return path
  }

  #manifest(): Record<string, CatalogEntry> {
    const file = join(this.dir, 'catalog.json')
    if (!existsSync(file)) return {}
    try {
      const v = JSON.parse(readFileSync(file, 'utf8')) as { entries?: Record<string, CatalogEntry> }
      return v.entries ?? {}
    } catch (err) {
      throw new CatalogEntryCorruptError(`the catalog manifest ${file} is not readable JSON: ${(err as Error).message}`)
    }
  }

  #writeManifest(entries: Record<string, CatalogEntry>): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
    const file = join(this.dir, 'catalog.json')
    const tmp = `${file}.${randomBytes(8).toString('hex')}.tmp`
    writeFileSync(tmp, JSON.stringify({ entries }, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
    renameSync(tmp, file)
  }
}

/** The catalog entries a workload's runtime names, as [kind, name] pairs (none for a container or an artifact digest). */
export function catalogNeeds(runtime: { type: string; module?: string; bundle?: string; kernel?: string; initrd?: string; rootfs?: string }): [CatalogKind, string][] {
  const out: [CatalogKind, string][] = []
  // an artifact digest (sha256:...) is fetched over the mesh, never looked up here
  if (runtime.type === 'wasm' && runtime.module && CATALOG_NAME.test(runtime.module)) out.push(['wasm', runtime.module])
  if (runtime.type === 'actor' && runtime.bundle && CATALOG_NAME.test(runtime.bundle)) out.push(['actor', runtime.bundle])
  if (runtime.type === 'microvm') {
    for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
      const v = runtime[kind]
      if (v && CATALOG_NAME.test(v)) out.push([kind, v])
    }
  }
  return out
}
