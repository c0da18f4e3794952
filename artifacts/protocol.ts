// The artifact protocol, `/noir/artifact/1.0.0` (spec/artifacts.md): one stream per artifact.
//   fetcher -> holder: one line of JSON `{"v":1,"digest":"sha256:<hex>"}` then the fetcher closes its write side
//   holder -> fetcher: one line of JSON, `{"ok":true,"bytes":N}` then exactly N bytes, or
//                      `{"ok":false,"error":{"name","message"}}`; then the holder closes.
// The fetcher trusts nothing the holder says: the announced size only lets it refuse early (over its limit);
// it counts the bytes itself (more than announced, or than its limit, resets the stream at that byte; fewer
// is a protocol error) and keeps them only if they hash to the digest it asked for (store.ts, Receiver).
// A fetch that keeps the bytes returns their path (checked as they came: not hashed again).
// Backpressure both ways: the holder waits for `drain` when the muxer's buffer is full, and the fetcher
// pauses the stream (no yamux window updates) while its disk writes lag.
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { digestHex } from './digest.ts'
import { ArtifactError, ArtifactNotFoundError, ArtifactProtocolError, ArtifactTooLargeError, artifactErrorFrom } from './errors.ts'
import type { ArtifactStore } from './store.ts'

export const ARTIFACT_PROTOCOL = '/noir/artifact/1.0.0'
const MAX_REQUEST_LINE = 1024
const MAX_HEADER_LINE = 4096
/** Bytes read from disk per send (yamux cuts them into its own frames). */
export const SEND_CHUNK = 1 << 20
/** The fetcher pauses the stream above this many unprocessed bytes, and resumes below half of it. */
const READ_HIGH_WATER = 8 << 20
/**
 * What the stream may hold while paused: the bytes yamux already allowed in flight (its window grows to 16 MiB)
 * still arrive after a pause, and libp2p resets a stream whose paused buffer passes its limit (4 MiB by default).
 * A fetch holds at most READ_HIGH_WATER + this in memory.
 */
const PAUSED_BUFFER_LIMIT = 24 << 20
/** A holder waits this long for the request line; a fetcher this long between two chunks. */
const IDLE_MS = 30_000

const enc = new TextEncoder()
const line = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v) + '\n')

type Chunk = Uint8Array | Iterable<Uint8Array>

/**
 * A stream's incoming bytes as an async iterable that pauses the stream while more than READ_HIGH_WATER bytes
 * wait to be consumed (libp2p's own iterator buffers without bound). Ends on the remote's close; throws its error.
 */
export function pacedChunks(stream: Stream, idleMs = IDLE_MS): AsyncIterable<Uint8Array> & { unshift(b: Uint8Array): void } {
  const queue: Uint8Array[] = []
  let queued = 0
  let ended = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  let pauseSoon = false
  const notify = (): void => {
    const w = wake
    wake = undefined
    w?.()
  }
  const onMessage = (evt: Event): void => {
    const data = (evt as Event & { data: Chunk }).data
    // a Uint8ArrayList's pieces as they are (its subarray() would concatenate them: a copy per message)
    for (const b of data instanceof Uint8Array ? [data] : data) {
      queue.push(b)
      queued += b.byteLength
    }
    if (queued > READ_HIGH_WATER && !pauseSoon) {
      // Paused on the next turn, never inside this handler: resume() dispatches the paused bytes to it and only
      // then tells yamux to resume, so a pause from here would be undone for yamux (which would keep granting
      // window) while the stream stayed paused and its buffer overflowed.
      pauseSoon = true
      setImmediate(() => {
        pauseSoon = false
        if (queued > READ_HIGH_WATER && stream.readStatus === 'readable') stream.pause()
      })
    }
    notify()
  }
  const onClose = (evt: Event): void => {
    const e = (evt as Event & { error?: Error }).error
    if (e) failure = e
    ended = true
    notify()
  }
  const onEnd = (): void => {
    ended = true
    notify()
  }
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, PAUSED_BUFFER_LIMIT)
  stream.addEventListener('message', onMessage)
  stream.addEventListener('close', onClose)
  stream.addEventListener('remoteCloseWrite', onEnd)
  if (stream.readStatus === 'closed' || stream.readableEnded) ended = true
  const detach = (): void => {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('close', onClose)
    stream.removeEventListener('remoteCloseWrite', onEnd)
  }
  // Several loops may read in turn (the header, then the body): the listeners stay until the stream ends.
  return {
    unshift(b: Uint8Array) {
      queue.unshift(b)
      queued += b.byteLength
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length > 0) {
          const b = queue.shift()!
          queued -= b.byteLength
          if (queued < READ_HIGH_WATER / 2 && stream.readStatus === 'paused') stream.resume()
          yield b
          continue
        }
        // bytes the stream held while paused are dispatched (to onMessage) by resume
        if (stream.readStatus === 'paused') {
          stream.resume()
          continue
        }
        if (failure) {
          detach()
          throw failure
        }
        if (ended) {
          detach()
          return
        }
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new ArtifactProtocolError(`no bytes for ${idleMs} ms: the peer stalled`)), idleMs)
          wake = () => {
            clearTimeout(t)
            resolve()
          }
        })
      }
    },
  }
}

/** Reads one `\n`-terminated JSON line of at most `max` bytes; bytes after it go back to `chunks`. */
async function readLine(chunks: ReturnType<typeof pacedChunks>, max: number, what: string): Promise<unknown> {
  const parts: Uint8Array[] = []
  let n = 0
  for await (const c of chunks) {
    const i = c.indexOf(0x0a)
    if (i < 0) {
      parts.push(c)
      n += c.byteLength
      if (n > max) throw new ArtifactProtocolError(`${what} is longer than ${max} bytes`)
      continue
    }
    parts.push(c.subarray(0, i))
    n += i
    if (n > max) throw new ArtifactProtocolError(`${what} is longer than ${max} bytes`)
    if (i + 1 < c.byteLength) chunks.unshift(c.subarray(i + 1))
    try {
      return JSON.parse(Buffer.concat(parts).toString('utf8'))
    } catch {
      throw new ArtifactProtocolError(`${what} is not JSON`)
    }
  }
  throw new ArtifactProtocolError(`the stream ended before the ${what}`)
}

async function sendAll(stream: Stream, b: Uint8Array): Promise<void> {
  if (!stream.send(b)) await stream.onDrain()
}

export interface ServeOptions {
  /** Called for each request served or refused (for the log and stats). */
  onServed?: (o: { peer: string; digest: string; bytes: number; error?: string }) => void
  maxInboundStreams?: number
  /** Answers `{"v":1,"provenance":"<contract id>"}` with the record's bytes for that peer (or throws a typed refusal). */
  provenance?: (contractId: string, peer: PeerId) => Promise<Uint8Array>
}

/**
 * Serves the store's artifacts on the host to any peer of the mesh that names one by digest: the digest (256
 * bits, never listed by this protocol) is what a peer must know. The store is only read, never written.
 */
export async function serveArtifacts(host: Libp2p, store: ArtifactStore, o: ServeOptions = {}): Promise<() => Promise<void>> {
  await host.handle(ARTIFACT_PROTOCOL, (stream, connection) => void answer(stream, connection, store, o), { maxInboundStreams: o.maxInboundStreams ?? 32, runOnLimitedConnection: false })
  return async () => {
    await host.unhandle(ARTIFACT_PROTOCOL).catch(() => undefined)
  }
}

async function answer(stream: Stream, connection: Connection, store: ArtifactStore, o: ServeOptions): Promise<void> {
  const peer = connection.remotePeer.toString()
  let digest = ''
  let sent = 0
  try {
    const req = (await readLine(pacedChunks(stream, 10_000), MAX_REQUEST_LINE, 'request line')) as { v?: unknown; digest?: unknown; provenance?: unknown } | null
    if (!req || typeof req !== 'object' || req.v !== 1) throw new ArtifactProtocolError('the request must be {"v":1,"digest":"sha256:<hex>"}')
    if (typeof req.provenance === 'string') {
      if (!o.provenance || req.provenance.length > 128) throw new ArtifactNotFoundError('no provenance record here')
      const rec = await o.provenance(req.provenance, connection.remotePeer)
      await sendAll(stream, line({ ok: true, bytes: rec.byteLength }))
      await sendAll(stream, rec)
      sent = rec.byteLength
      await stream.close()
      o.onServed?.({ peer, digest: `provenance:${req.provenance}`, bytes: sent })
      return
    }
    digestHex(req.digest)
    digest = req.digest as string
    const file = await store.openForRead(digest)
    try {
      await sendAll(stream, line({ ok: true, bytes: file.bytes }))
      for (let pos = 0; pos < file.bytes;) {
        // a fresh buffer per read: the muxer may hold the one sent until the peer's window opens
        const buf = Buffer.allocUnsafe(Math.min(SEND_CHUNK, file.bytes - pos))
        const { bytesRead } = await file.fh.read(buf, 0, buf.length, pos)
        if (bytesRead === 0) throw new ArtifactProtocolError(`artifact ${digest} shrank on disk while sent`)
        await sendAll(stream, bytesRead === buf.length ? buf : buf.subarray(0, bytesRead))
        pos += bytesRead
        sent = pos
      }
    } finally {
      await file.close()
    }
    await stream.close()
    o.onServed?.({ peer, digest, bytes: sent })
  } catch (err) {
    const e = err as Error
    o.onServed?.({ peer, digest, bytes: sent, error: e.name })
    if (sent === 0 && stream.writeStatus === 'writable') {
      // nothing sent yet: the refusal is readable by the fetcher
      const name = err instanceof ArtifactError ? e.name : 'ArtifactError'
      try {
        await sendAll(stream, line({ ok: false, error: { name, message: err instanceof ArtifactError ? e.message : 'the artifact could not be read' } }))
        await stream.close()
        return
      } catch {
        // fall through to the reset
      }
    }
    stream.abort(e)
  }
}

export interface FetchOptions {
  /** Most bytes accepted (default: the store's bound). */
  limit?: number
  signal?: AbortSignal
  /** Bytes received so far, as they arrive. */
  onProgress?: (bytes: number) => void
}

/**
 * Fetches `digest` from `peer` into `store` (a no-op when the store already holds it). Throws the holder's
 * typed refusal (ArtifactNotFoundError, ...), ArtifactTooLargeError, ArtifactDigestMismatchError or
 * ArtifactProtocolError; nothing is kept unless it hashes to `digest`.
 */
export async function fetchArtifact(host: Libp2p, peer: PeerId, digest: string, store: ArtifactStore, o: FetchOptions = {}): Promise<{ bytes: number; path?: string }> {
  digestHex(digest)
  if (store.has(digest)) return { bytes: -1 }
  const limit = Math.min(o.limit ?? store.maxBytes, store.maxBytes)
  let stream: Stream
  try {
    stream = await host.dialProtocol(peer, ARTIFACT_PROTOCOL, { ...(o.signal ? { signal: o.signal } : {}) })
  } catch (err) {
    throw new ArtifactNotFoundError(`cannot ask ${peer.toString()} for ${digest}: ${(err as Error).message}`, { digest, peer: peer.toString() })
  }
  const onAbort = (): void => stream.abort(new ArtifactProtocolError('the fetch was cancelled'))
  o.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const chunks = pacedChunks(stream)
    await sendAll(stream, line({ v: 1, digest }))
    await stream.close() // our write side: the request is all we send
    const head = (await readLine(chunks, MAX_HEADER_LINE, 'answer header')) as { ok?: unknown; bytes?: unknown; error?: { name?: unknown; message?: unknown } } | null
    if (!head || typeof head !== 'object') throw new ArtifactProtocolError('the answer header is not an object')
    if (head.ok !== true) throw artifactErrorFrom(head.error?.name, head.error?.message)
    const announced = head.bytes
    if (typeof announced !== 'number' || !Number.isSafeInteger(announced) || announced < 0) throw new ArtifactProtocolError('the answer header has no byte count')
    if (announced > limit) throw new ArtifactTooLargeError(`${peer.toString()} offers ${announced} bytes for ${digest}; the limit is ${limit}`, { digest, bytes: announced, limit })
    const r = await store.receive(digest, { limit: Math.min(limit, announced), expectedBytes: announced })
    try {
      for await (const c of chunks) {
        if (r.received + c.byteLength > announced) throw new ArtifactProtocolError(`${peer.toString()} sent more than the ${announced} bytes it announced for ${digest}`)
        await r.write(c)
        o.onProgress?.(r.received)
      }
      if (r.received !== announced) throw new ArtifactProtocolError(`${peer.toString()} sent ${r.received} of the ${announced} bytes it announced for ${digest}`)
      await r.finish()
    } catch (err) {
      await r.abort()
      throw err
    }
    return { bytes: announced, path: store.receivedPath(r) }
  } catch (err) {
    stream.abort(err as Error)
    if (o.signal?.aborted) throw new ArtifactProtocolError('the fetch was cancelled')
    throw err
  } finally {
    o.signal?.removeEventListener('abort', onAbort)
  }
}

/** Most bytes of a provenance record accepted. */
const MAX_PROVENANCE_BYTES = 64 * 1024

/** Asks `peer` for its provenance record of `contractId` (only a contract's consumer gets one); the parsed JSON, unverified. */
export async function fetchProvenance(host: Libp2p, peer: PeerId, contractId: string, o: { signal?: AbortSignal } = {}): Promise<unknown> {
  let stream: Stream
  try {
    stream = await host.dialProtocol(peer, ARTIFACT_PROTOCOL, { ...(o.signal ? { signal: o.signal } : {}) })
  } catch (err) {
    throw new ArtifactNotFoundError(`cannot ask ${peer.toString()} for the provenance of ${contractId}: ${(err as Error).message}`)
  }
  try {
    const chunks = pacedChunks(stream)
    await sendAll(stream, line({ v: 1, provenance: contractId }))
    await stream.close()
    const head = (await readLine(chunks, MAX_HEADER_LINE, 'answer header')) as { ok?: unknown; bytes?: unknown; error?: { name?: unknown; message?: unknown } } | null
    if (!head || typeof head !== 'object') throw new ArtifactProtocolError('the answer header is not an object')
    if (head.ok !== true) throw artifactErrorFrom(head.error?.name, head.error?.message)
    if (typeof head.bytes !== 'number' || !Number.isSafeInteger(head.bytes) || head.bytes < 0 || head.bytes > MAX_PROVENANCE_BYTES) throw new ArtifactProtocolError(`a provenance record of ${String(head.bytes)} bytes: refused`)
    const parts: Uint8Array[] = []
    let n = 0
    for await (const c of chunks) {
      n += c.byteLength
      if (n > head.bytes) throw new ArtifactProtocolError('more bytes than announced')
      parts.push(c)
    }
    if (n !== head.bytes) throw new ArtifactProtocolError(`${n} of ${head.bytes} bytes`)
    try {
      return JSON.parse(Buffer.concat(parts).toString('utf8'))
    } catch {
      throw new ArtifactProtocolError('the provenance record is not JSON')
    }
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}
