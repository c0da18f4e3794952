// The node's artifact store (spec/artifacts.md): content-addressed files under `<home>/artifacts`, one per
// digest at `blobs/<64 hex>` (0400). Bytes enter only through a Receiver that hashes them on the way in and
// keeps them only when they hash to the digest asked for; every use hashes them again (a file changed on disk
// is refused and removed). The store is bounded: before new bytes are taken, the least recently used
// artifacts are evicted, never a pinned one (what this node deployed) and never one being read.
//
// The directory is the only index (no manifest to get out of step), so the CLI (`noir deploy`) and the daemon
// can both add to it; a name in `blobs/` that is not 64 hex digits is never read.
import { createHash, randomBytes } from 'node:crypto'
import { constants, mkdirSync, existsSync, readdirSync, statSync, rmSync, writeFileSync, type Stats } from 'node:fs'
import { open, rename, rm, utimes, chmod, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { digestHex } from './digest.ts'
import { ArtifactDigestMismatchError, ArtifactNotFoundError, ArtifactTooLargeError } from './errors.ts'
import { FileHasher } from './file-hasher.ts'

/** Default bound of a node's store: 10 GiB (config `artifacts.maxBytes`). */
export const DEFAULT_STORE_BYTES = 10 * 1024 ** 3
/** Bytes buffered before one write to disk (hashing of a batch overlaps the write of the one before). */
const WRITE_BATCH = 1 << 20
/** Bytes a Receiver gathers before one writev (small: chunks freed young are cheap for the GC). */
const RECEIVE_BATCH = 256 * 1024
const HEX64 = /^[0-9a-f]{64}$/

export interface ArtifactInfo {
  digest: string
  bytes: number
  /** Last use (ms): the eviction order. */
  usedAt: number
  pinned: boolean
}

export interface ArtifactStoreInit {
  /** The store's folder (`<home>/artifacts`). */
  dir: string
  /** The bound on all blobs together (default DEFAULT_STORE_BYTES). */
  maxBytes?: number
  /**
   * Artifacts announced at least this large are hashed by a worker thread reading the file back as it is
   * written (file-hasher.ts), off the thread that runs the stream. Default Infinity (always inline: on a
   * 2-vCPU node the worker's read-back costs more than it frees; bench/artifacts.bench.ts measures both).
   */
  hashOffThreadFrom?: number
}

export class ArtifactStore {
  readonly dir: string
  readonly maxBytes: number
  readonly #offThreadFrom: number
  readonly #blobs: string
  readonly #tmp: string
  readonly #pins: string
  /** Digests being read or written now, with a count: never evicted meanwhile. */
  readonly #busy = new Map<string, number>()

  constructor(init: ArtifactStoreInit) {
    this.dir = init.dir
    this.maxBytes = init.maxBytes ?? DEFAULT_STORE_BYTES
    this.#offThreadFrom = init.hashOffThreadFrom ?? Infinity
    this.#blobs = join(this.dir, 'blobs')
    this.#tmp = join(this.dir, 'tmp')
    this.#pins = join(this.dir, 'pins')
    for (const d of [this.dir, this.#blobs, this.#tmp, this.#pins]) mkdirSync(d, { recursive: true, mode: 0o700 })
  }

  has(digest: string): boolean {
    return existsSync(join(this.#blobs, digestHex(digest)))
  }

  /** Every artifact held, least recently used first. */
  list(): ArtifactInfo[] {
    const out: ArtifactInfo[] = []
    for (const name of readdirSync(this.#blobs)) {
      if (!HEX64.test(name)) continue
      let st: Stats
      try {
        st = statSync(join(this.#blobs, name))
      } catch {
        continue // evicted meanwhile
      }
      if (!st.isFile()) continue
      out.push({ digest: `sha256:${name}`, bytes: st.size, usedAt: st.mtimeMs, pinned: existsSync(join(this.#pins, name)) })
    }
    return out.sort((a, b) => a.usedAt - b.usedAt)
  }

  usedBytes(): number {
    return this.list().reduce((n, a) => n + a.bytes, 0)
  }

  /** Keeps the artifact through eviction (what this node deployed and serves). */
  pin(digest: string): void {
    writeFileSync(join(this.#pins, digestHex(digest)), '', { mode: 0o600 })
  }

  unpin(digest: string): void {
    rmSync(join(this.#pins, digestHex(digest)), { force: true })
  }

  /**
   * A receiver for the artifact `digest`: feed it the bytes, then `finish()` keeps them only if they hash to
   * `digest` (else ArtifactDigestMismatchError, and nothing is kept). More than `limit` bytes (default: the
   * store's bound) is ArtifactTooLargeError at the byte that crosses it.
   */
  async receive(digest: string, o: { limit?: number; expectedBytes?: number } = {}): Promise<Receiver> {
    const hex = digestHex(digest)
    const limit = Math.min(o.limit ?? this.maxBytes, this.maxBytes)
    if (o.expectedBytes !== undefined && o.expectedBytes > limit) throw new ArtifactTooLargeError(`artifact ${digest} has ${o.expectedBytes} bytes; the limit is ${limit}`, { digest, bytes: o.expectedBytes, limit })
    this.#enter(hex)
    try {
      await this.#makeRoom(o.expectedBytes ?? 0)
      const tmp = join(this.#tmp, `${hex}.${randomBytes(6).toString('hex')}`)
      const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
      const hasher = (o.expectedBytes ?? 0) >= this.#offThreadFrom ? new FileHasher(tmp) : undefined
      return new Receiver({ digest, hex, limit, tmp, fh, target: join(this.#blobs, hex), done: () => this.#leave(hex), ...(hasher ? { hasher } : {}) })
    } catch (err) {
      this.#leave(hex)
      throw err
    }
  }

  /** Adds a local file; returns its digest and size. */
  async putFile(path: string): Promise<{ digest: string; bytes: number }> {
    const src = await open(path, constants.O_RDONLY)
    try {
      const st = await src.stat()
      if (!st.isFile()) throw new ArtifactNotFoundError(`${path} is not a file`)
      return await this.putStream(src.createReadStream({ highWaterMark: WRITE_BATCH, autoClose: false }), st.size)
    } finally {
      await src.close()
    }
  }

  /**
   * Adds the bytes of a stream (a local file, `docker save`): written to tmp while hashed once, then kept under
   * the digest they hash to. `expectedBytes` (when known) makes room before the first byte.
   */
  async putStream(source: AsyncIterable<Uint8Array>, expectedBytes?: number): Promise<{ digest: string; bytes: number }> {
    await this.#makeRoom(expectedBytes ?? 0)
    const tmp = join(this.#tmp, `put.${randomBytes(8).toString('hex')}`)
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    const hash = createHash('sha256')
    let pos = 0
    try {
      for await (const chunk of source) {
        if (pos + chunk.byteLength > this.maxBytes) throw new ArtifactTooLargeError(`more than the store's ${this.maxBytes} bytes`, { limit: this.maxBytes })
        const written = fh.write(chunk, 0, chunk.byteLength, pos)
        hash.update(chunk)
        await written
        pos += chunk.byteLength
      }
      await fh.close()
      const hex = hash.digest('hex')
      if (expectedBytes === undefined) await this.#makeRoom(0)
      await chmod(tmp, 0o400)
      await rename(tmp, join(this.#blobs, hex))
      return { digest: `sha256:${hex}`, bytes: pos }
    } catch (err) {
      await fh.close().catch(() => undefined)
      await rm(tmp, { force: true })
      throw err
    }
  }

  async putBytes(bytes: Uint8Array): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
    if (this.has(digest)) return digest
    const r = await this.receive(digest, { expectedBytes: bytes.byteLength })
    try {
      await r.write(bytes)
      await r.finish()
    } catch (err) {
      await r.abort()
      throw err
    }
    return digest
  }

  /**
   * The path of an artifact about to be used, after hashing it again: a file changed on disk is removed and
   * refused with ArtifactDigestMismatchError; one not held is ArtifactNotFoundError. Marks it used (LRU).
   */
  async verifiedPath(digest: string): Promise<string> {
    const hex = digestHex(digest)
    const path = join(this.#blobs, hex)
    this.#enter(hex)
    try {
      let fh: FileHandle
      try {
        fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
      } catch {
        throw new ArtifactNotFoundError(`artifact ${digest} is not in this node's store`, { digest })
      }
      let got: string
      try {
        got = await hashHandle(fh, (await fh.stat()).size)
      } finally {
        await fh.close()
      }
      if (got !== digest) {
        await rm(path, { force: true })
        throw new ArtifactDigestMismatchError(`artifact ${digest} changed on disk (its bytes hash to ${got}); removed`, { digest, got })
      }
      const now = new Date()
      await utimes(path, now, now).catch(() => undefined)
      return path
    } finally {
      this.#leave(hex)
    }
  }

  /**
   * The path of an artifact a Receiver of this process has just kept (it hashed every byte on the way in):
   * not hashed again. Anything else goes through verifiedPath.
   */
  receivedPath(r: Receiver): string {
    if (!r.kept) throw new ArtifactNotFoundError(`artifact ${r.digest} was not kept`)
    return join(this.#blobs, digestHex(r.digest))
  }

  /** Opens an artifact for sending (not re-hashed: the receiver checks). `close()` when done. */
  async openForRead(digest: string): Promise<{ fh: FileHandle; bytes: number; close: () => Promise<void> }> {
    const hex = digestHex(digest)
    const path = join(this.#blobs, hex)
    let fh: FileHandle
    try {
      fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
    } catch {
      throw new ArtifactNotFoundError(`artifact ${digest} is not held here`, { digest })
    }
    this.#enter(hex)
    const st = await fh.stat()
    const now = new Date()
    await utimes(path, now, now).catch(() => undefined)
    let closed = false
    return { fh, bytes: st.size, close: async () => { if (closed) return; closed = true; this.#leave(hex); await fh.close() } }
  }

  /** Removes an artifact (pinned or not); false when it was not held. */
  remove(digest: string): boolean {
    const hex = digestHex(digest)
    const path = join(this.#blobs, hex)
    if (!existsSync(path)) return false
    rmSync(path, { force: true })
    this.unpin(digest)
    return true
  }

  /** Evicts least recently used, unpinned, idle artifacts until `need` more bytes fit; ArtifactTooLargeError when they cannot. */
  async #makeRoom(need: number): Promise<void> {
    if (need > this.maxBytes) throw new ArtifactTooLargeError(`${need} bytes do not fit a store of ${this.maxBytes}`, { bytes: need, limit: this.maxBytes })
    const all = this.list()
    let used = all.reduce((n, a) => n + a.bytes, 0)
    for (const a of all) {
      if (used + need <= this.maxBytes) return
      const hex = digestHex(a.digest)
      if (a.pinned || this.#busy.has(hex)) continue
      await rm(join(this.#blobs, hex), { force: true })
      used -= a.bytes
    }
    if (used + need > this.maxBytes) throw new ArtifactTooLargeError(`${need} bytes do not fit: ${used} of ${this.maxBytes} are pinned or in use`, { bytes: need, used, limit: this.maxBytes })
  }

  #enter(hex: string): void {
    this.#busy.set(hex, (this.#busy.get(hex) ?? 0) + 1)
  }

  #leave(hex: string): void {
    const n = (this.#busy.get(hex) ?? 1) - 1
    if (n <= 0) this.#busy.delete(hex)
    else this.#busy.set(hex, n)
  }
}

/** Takes one artifact's bytes: hashes them as they come, writes them in batches, keeps them only if they match. */
export class Receiver {
  readonly digest: string
  readonly limit: number
  #received = 0
  readonly #hash = createHash('sha256')
  readonly #o: { hex: string; tmp: string; fh: FileHandle; target: string; done: () => void; hasher?: FileHasher }
  #batch: Buffer[] = []
  #batched = 0
  #pos = 0
  #ended = false
  /** True once the bytes hashed to the digest and were kept. */
  kept = false

  constructor(o: { digest: string; hex: string; limit: number; tmp: string; fh: FileHandle; target: string; done: () => void; hasher?: FileHasher }) {
    this.digest = o.digest
    this.limit = o.limit
    this.#o = o
  }

  get received(): number {
    return this.#received
  }

  /** Takes a chunk; resolves when the caller may send the next (backpressure: a full batch is on disk first). */
  async write(chunk: Uint8Array): Promise<void> {
    this.#received += chunk.byteLength
    if (this.#received > this.limit) {
      await this.abort()
      throw new ArtifactTooLargeError(`artifact ${this.digest} passed the limit of ${this.limit} bytes`, { digest: this.digest, limit: this.limit })
    }
    // not copied: the muxer hands each chunk over for good (TCP reads and Noise decryption make fresh buffers)
    this.#batch.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    this.#batched += chunk.byteLength
    if (this.#batched >= RECEIVE_BATCH) await this.#flush()
  }

  async #flush(): Promise<void> {
    if (this.#batched === 0) return
    const bufs = this.#batch
    const n = this.#batched
    this.#batch = []
    this.#batched = 0
    // one writev of the chunks as they came (no concatenation); hashed on this thread while libuv writes
    const written = this.#o.fh.writev(bufs, this.#pos)
    this.#pos += n
    if (!this.#o.hasher) for (const b of bufs) this.#hash.update(b)
    const { bytesWritten } = await written
    if (bytesWritten !== n) throw new ArtifactTooLargeError(`short write to the store (${bytesWritten} of ${n} bytes): is the disk full?`)
    this.#o.hasher?.written(this.#pos)
  }

  /** Keeps the bytes when they hash to the digest; otherwise removes them and throws ArtifactDigestMismatchError. */
  async finish(): Promise<void> {
    if (this.#ended) return
    try {
      await this.#flush()
      await this.#o.fh.close()
      const got = this.#o.hasher ? (await this.#o.hasher.digest(this.#pos)).digest : `sha256:${this.#hash.digest('hex')}`
      if (got !== this.digest) {
        await rm(this.#o.tmp, { force: true })
        throw new ArtifactDigestMismatchError(`the bytes received for ${this.digest} hash to ${got}: refused`, { digest: this.digest, got })
      }
      await chmod(this.#o.tmp, 0o400)
      await rename(this.#o.tmp, this.#o.target)
      this.kept = true
    } finally {
      this.#end()
    }
  }

  /** Drops what was received. */
  async abort(): Promise<void> {
    if (this.#ended) return
    this.#end()
    this.#o.hasher?.close()
    await this.#o.fh.close().catch(() => undefined)
    await rm(this.#o.tmp, { force: true })
  }

  #end(): void {
    this.#ended = true
    this.#o.done()
  }
}

/** sha256 of an open file's first `size` bytes, read in 1 MiB pieces (the event loop keeps turning). */
async function hashHandle(fh: FileHandle, size: number): Promise<string> {
  const hash = createHash('sha256')
  const buf = Buffer.allocUnsafe(WRITE_BATCH)
  for (let pos = 0; pos < size;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
    if (bytesRead === 0) break
    hash.update(buf.subarray(0, bytesRead))
    pos += bytesRead
  }
  return `sha256:${hash.digest('hex')}`
}
