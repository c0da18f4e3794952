// The actor wire protocol `/noir/actor/1.0.0` (spec/wire.md): one long-lived stream per peer pair, frames
// coalesced per tick into one write, back-pressure that keeps yamux's buffer small, a frame size limit.
// A protocol violation (oversize, garbage, truncated frame) resets that one stream; the node stays up.
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { SendSink } from '../core/transport.ts'
import type { NoirHost } from './host.ts'
import { DEFAULT_MAX_FRAME_BODY, FrameDecoder, encodeFrames } from './framing.ts'
import { MessageTooLargeError, NotStartedError, P2PError, TruncatedFrameError, UnreachableError, UnsupportedPeerKeyError, unreachablePeer } from './errors.ts'
import { errorFields, silentLog, type Log } from './log.ts'

export const ACTOR_PROTOCOL = '/noir/actor/1.0.0'

/** One envelope body as received, with the Noise-authenticated peer that sent it. */
export type FrameHandler = (body: Uint8Array, from: PeerId, connection: Connection) => void

export interface ActorWireOptions {
  host: NoirHost
  /** Largest envelope body accepted or sent. Default 1 MiB. */
  maxFrameBytes?: number
  /** Bytes per stream write before a new write starts (coalescing cap). Default 256 KiB. */
  maxWriteBytes?: number
  /** Finds a connection to a peer with no open connection (DID -> peer id -> addresses / DHT). */
  connect?: (peer: PeerId, signal: AbortSignal) => Promise<Connection>
  /** Time allowed to open a connection + stream. Default 10 s. */
  dialTimeoutMs?: number
  /** A frame that starts arriving must be complete within this time, else the stream is reset. Default 30 s. */
  frameTimeoutMs?: number
  /**
   * Told of a peer that broke the framing: its stream is reset at once and nothing more is read from it.
   * The transport quarantines the peer and closes its connection (spec/wire.md).
   */
  onViolation?: (peer: PeerId, err: P2PError) => void
  log?: Log
}

/** A frame queued for a peer, and where to report what became of it (`sink` is shared, `context` per frame). */
interface Pending {
  body: Uint8Array
  sink: SendSink<unknown>
  context: unknown
  retried?: boolean
}

/** The sink behind the promise `send` returns: the context is that promise's resolvers. */
const PROMISE_SINK: SendSink<PromiseWithResolvers<void>> = {
  handedOff: (r) => r.resolve(),
  failed: (r, err) => r.reject(err),
}

function settle(p: Pending, err: Error | undefined): void {
  try {
    if (err === undefined) p.sink.handedOff(p.context)
    else p.sink.failed(p.context, err)
  } catch {
    // a sink's own failure must not stop the frames after it
  }
}

/** Everything the wire keeps per remote peer: the stream it writes on and what is queued for it. */
class PeerChannel {
  readonly peer: PeerId
  stream: Stream | undefined
  opening: Promise<Stream> | undefined
  queue: Pending[] = []
  flushing = false
  constructor(peer: PeerId) {
    this.peer = peer
  }
}

export class ActorWire {
  readonly maxFrameBytes: number
  readonly #host: NoirHost
  readonly #maxWriteBytes: number
  readonly #dialTimeoutMs: number
  readonly #frameTimeoutMs: number
  readonly #onViolation: ((peer: PeerId, err: P2PError) => void) | undefined
  readonly #log: Log
  readonly #connectFn: ((peer: PeerId, signal: AbortSignal) => Promise<Connection>) | undefined
  readonly #channels = new Map<string, PeerChannel>()
  readonly #inbound = new Set<Stream>()
  #handler: FrameHandler = () => {}
  #started = false
  /** Streams reset for protocol violations (observable for tests and status). */
  violations = 0
  /** Counters for status, tests and the bench: frames per write shows coalescing under load. */
  readonly stats = { framesSent: 0, writes: 0, framesReceived: 0, maxQueuedBytes: 0, streamsOpened: 0 }

  constructor(opts: ActorWireOptions) {
    this.#host = opts.host
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BODY
    this.#maxWriteBytes = opts.maxWriteBytes ?? 256 * 1024
    this.#dialTimeoutMs = opts.dialTimeoutMs ?? 10_000
    this.#frameTimeoutMs = opts.frameTimeoutMs ?? 30_000
    this.#onViolation = opts.onViolation
    this.#log = opts.log ?? silentLog
    this.#connectFn = opts.connect
  }

  onFrame(handler: FrameHandler): void {
    this.#handler = handler
  }

  async start(): Promise<void> {
    if (this.#started) return
    await this.#host.handle(ACTOR_PROTOCOL, (stream, connection) => this.#accept(stream, connection), {
      runOnLimitedConnection: true,
      maxInboundStreams: 64,
    })
    this.#started = true
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    await this.#host.unhandle(ACTOR_PROTOCOL).catch(() => {})
    const err = new NotStartedError('the actor wire is stopping')
    for (const ch of this.#channels.values()) for (const p of ch.queue.splice(0)) settle(p, err)
    // what was written reaches the peers, as on a hang-up (spec/wire.md, "Hanging up"); at most 2 s, so a
    // stuck peer cannot hold up shutdown; a stream still open then is reset
    await this.#endGracefully([...this.#inbound], Date.now() + 2_000)
    for (const s of this.#inbound) s.abort(err)
    this.#inbound.clear()
    this.#channels.clear()
  }

  /**
   * Queues one envelope for `peer`. Resolves once its frame is handed to the stream (at-most-once: not
   * retried after that). Frames queued in the same tick go out in one write. Order is kept per peer.
   */
  send(peer: PeerId, body: Uint8Array): Promise<void> {
    const r = Promise.withResolvers<void>()
    this.post(peer, body, PROMISE_SINK, r)
    return r.promise
  }

  /**
   * `send` without a promise: `sink.handedOff(context)` once the frame is handed to the stream, or
   * `sink.failed(context, error)`; exactly once, never from within this call.
   */
  post<C>(peer: PeerId, body: Uint8Array, sink: SendSink<C>, context: C): void {
    const pending: Pending = { body, sink: sink as SendSink<unknown>, context }
    if (!this.#started || body.byteLength > this.maxFrameBytes) {
      const err = !this.#started ? new NotStartedError('the actor wire is not started') : new MessageTooLargeError(`envelope of ${body.byteLength} bytes exceeds the frame limit of ${this.maxFrameBytes}`)
      queueMicrotask(() => settle(pending, err))
      return
    }
    const key = peer.toString()
    let ch = this.#channels.get(key)
    if (!ch) {
      ch = new PeerChannel(peer)
      this.#channels.set(key, ch)
    }
    ch.queue.push(pending)
    if (!ch.flushing) {
      ch.flushing = true
      const channel = ch
      // Coalesce everything queued during this tick into one write.
      queueMicrotask(() => void this.#flush(channel))
    }
  }

  /**
   * Resolves once everything queued for `peer` has left its stream's buffers (handed on by the muxer), or
   * after `timeoutMs`.
   */
  async #drained(peer: PeerId, timeoutMs: number): Promise<void> {
    const ch = this.#channels.get(peer.toString())
    const deadline = Date.now() + timeoutMs
    const busy = (): boolean => {
      if (ch === undefined) return false
      if (ch.queue.length > 0 || ch.flushing) return true
      const st = ch.stream
      return st !== undefined && st.status === 'open' && (st.writeBufferLength > 0 || st.writableNeedsDrain)
    }
    // one turn at least: a send handed over in this turn reaches the muxer in a later one
    await new Promise<void>((r) => setImmediate(r))
    while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
  }

  /**
   * For a hang-up that must not cut off what was just sent (a refusal and its seal): once what was queued for
   * `peer` has left, ends our side of every actor stream with it (its FIN follows our last frame), then waits
   * until the peer has ended its side too, or `timeoutMs` in all. A peer running this wire ends its side when
   * its read loop reaches our end, so by then it has read every frame. Closing the connection at once loses
   * them on a busy peer: they wait unread in its socket, its next write (a ping, say) fails on the closed
   * connection, and libp2p aborts the connection with the unread bytes (spec/wire.md, "Hanging up").
   */
  async finish(peer: PeerId, timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    await this.#drained(peer, timeoutMs)
    await this.#endGracefully(this.#host.getConnections(peer).flatMap((c) => c.streams).filter((s) => s.protocol === ACTOR_PROTOCOL), deadline)
  }

  /**
   * Ends our side of each open stream (its FIN after what was written) and waits until the other side has
   * ended it too (a peer running this wire does once it has read everything), or until `deadline`.
   */
  async #endGracefully(streams: Stream[], deadline: number): Promise<void> {
    const open = streams.filter((s) => s.status === 'open')
    if (open.length === 0) return
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))
    })
    try {
      await Promise.race([expired, Promise.all(open.map(async (stream) => {
        const ended = new Promise<void>((resolve) => stream.addEventListener('close', () => resolve(), { once: true }))
        await stream.close({ signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) }).catch(() => {})
        await ended
      }))])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Writes the channel's queue, opening (or reopening) the stream as needed; one flusher per channel. */
  async #flush(ch: PeerChannel): Promise<void> {
    try {
      while (ch.queue.length > 0 && this.#started) {
        let stream: Stream
        try {
          stream = await this.#streamFor(ch)
        } catch (err) {
          const e = err instanceof P2PError || err instanceof UnreachableError ? err : unreachablePeer(ch.peer, (err as Error).message)
          for (const p of ch.queue.splice(0)) settle(p, e)
          break
        }
        // take up to maxWriteBytes of queued frames
        let bytes = 0
        let n = 0
        while (n < ch.queue.length && (n === 0 || bytes + ch.queue[n]!.body.byteLength <= this.#maxWriteBytes)) {
          bytes += ch.queue[n]!.body.byteLength
          n++
        }
        const batch = ch.queue.splice(0, n)
        const buf = encodeFrames(batch.map((p) => p.body))
        let ok: boolean
        try {
          ok = stream.send(buf)
        } catch (err) {
          // the stream died under us: drop it and retry these frames once on a fresh stream
          this.#dropStream(ch, stream)
          ch.queue.unshift(...batch)
          if (batch.some((p) => p.retried)) {
            const e = unreachablePeer(ch.peer, `stream failed: ${(err as Error).message}`)
            for (const p of ch.queue.splice(0)) settle(p, e)
            break
          }
          for (const p of batch) p.retried = true
          continue
        }
        for (const p of batch) settle(p, undefined)
        this.stats.framesSent += batch.length
        this.stats.writes++
        if (stream.writeBufferLength > this.stats.maxQueuedBytes) this.stats.maxQueuedBytes = stream.writeBufferLength
        if (!ok) await this.#waitWritable(stream)
        // let other senders queue up more frames before the next write
        if (ch.queue.length > 0) await new Promise<void>((r) => setImmediate(r))
      }
    } finally {
      ch.flushing = false
      if (ch.queue.length > 0 && this.#started) {
        ch.flushing = true
        queueMicrotask(() => void this.#flush(ch))
      }
    }
  }

  /**
   * yamux's `send()` returning false means the muxer is full (its send window is used up, or its buffer is
   * above the high-water mark). Waiting for 'drain' alone let the buffer grow without bound under a fast
   * sender, so we wait until the muxer has drained AND the stream's own write queue is empty.
   * 'idle' may already have fired inside send() (the queue was handed over but the muxer is full), so the
   * conditions are re-checked on every event and at least every 50 ms: an event missed cannot stall us.
   */
  async #waitWritable(stream: Stream): Promise<void> {
    while (stream.status === 'open' && (stream.writableNeedsDrain || stream.writeBufferLength > 0)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          stream.removeEventListener('drain', done)
          stream.removeEventListener('idle', done)
          stream.removeEventListener('close', done)
          resolve()
        }
        const timer = setTimeout(done, 50)
        stream.addEventListener('drain', done)
        stream.addEventListener('idle', done)
        stream.addEventListener('close', done)
      })
    }
  }

  async #streamFor(ch: PeerChannel): Promise<Stream> {
    if (ch.stream && ch.stream.status === 'open' && ch.stream.writeStatus === 'writable') return ch.stream
    ch.stream = undefined
    ch.opening ??= this.#openStream(ch.peer).finally(() => {
      ch.opening = undefined
    })
    const s = await ch.opening
    ch.stream = s
    return s
  }

  async #openStream(peer: PeerId): Promise<Stream> {
    const signal = AbortSignal.timeout(this.#dialTimeoutMs)
    let conn = this.#bestConnection(peer)
    if (!conn) {
      if (this.#connectFn) conn = await this.#connectFn(peer, signal)
      else {
        try {
          conn = await this.#host.dial(peer, { signal })
        } catch (err) {
          throw unreachablePeer(peer, (err as Error).message)
        }
      }
    }
    let stream: Stream
    try {
      stream = await conn.newStream(ACTOR_PROTOCOL, { signal, runOnLimitedConnection: true })
    } catch (err) {
      throw unreachablePeer(peer, `cannot open ${ACTOR_PROTOCOL}: ${(err as Error).message}`)
    }
    this.#readLoop(stream, conn)
    this.stats.streamsOpened++
    return stream
  }

  /** An open connection to the peer, preferring a direct one over a relayed (limited) one. */
  #bestConnection(peer: PeerId): Connection | undefined {
    const conns = this.#host.getConnections(peer).filter((c) => c.status === 'open')
    return conns.find((c) => c.limits == null) ?? conns[0]
  }

  #dropStream(ch: PeerChannel, stream: Stream): void {
    if (ch.stream === stream) ch.stream = undefined
  }

  #accept(stream: Stream, connection: Connection): void {
    if (!this.#started) {
      stream.abort(new NotStartedError('the actor wire is not started'))
      return
    }
    if (connection.remotePeer.type !== 'Ed25519') {
      // only an Ed25519 peer id is a did:key, i.e. a node whose envelopes can be bound to it
      this.violations++
      const err = new UnsupportedPeerKeyError(`peer ${connection.remotePeer.toString()} has a ${connection.remotePeer.type} key, not Ed25519`)
      this.#log.warn('actor stream refused', { peer: connection.remotePeer.toString(), ...errorFields(err) })
      stream.abort(err)
      return
    }
    // The remote opened a stream: also use it to write to that peer when we have none of our own.
    const key = connection.remotePeer.toString()
    let ch = this.#channels.get(key)
    if (!ch) {
      ch = new PeerChannel(connection.remotePeer)
      this.#channels.set(key, ch)
    }
    if (!ch.stream || ch.stream.status !== 'open') ch.stream = stream
    this.#readLoop(stream, connection)
  }

  /** Reads frames until the stream ends; a violation resets the stream (typed error logged). */
  #readLoop(stream: Stream, connection: Connection): void {
    this.#log.debug('actor stream open', { peer: connection.remotePeer.toString(), direction: stream.direction, id: stream.id })
    this.#inbound.add(stream)
    const decoder = new FrameDecoder(this.maxFrameBytes)
    const from = connection.remotePeer
    // A frame begun but never finished (a stalled or malicious sender) would hold the stream and its
    // buffer forever: it must complete within frameTimeoutMs.
    let stall: NodeJS.Timeout | undefined
    let violated = false
    const violation = (err: P2PError): void => {
      if (violated) return // the abort below also ends the read loop with this same error
      violated = true
      this.violations++
      this.#log.warn('actor stream reset: protocol violation', { peer: from.toString(), ...errorFields(err) })
      stream.abort(err)
      this.#onViolation?.(from, err)
    }
    const run = async (): Promise<void> => {
      try {
        for await (const chunk of stream) {
          const bodies = decoder.push(chunk)
          this.stats.framesReceived += bodies.length
          if (decoder.buffered === 0 || bodies.length > 0) {
            clearTimeout(stall)
            stall = undefined
          }
          if (decoder.buffered > 0 && stall === undefined) {
            stall = setTimeout(() => violation(new TruncatedFrameError(`a frame stalled: ${decoder.buffered} bytes of it in ${this.#frameTimeoutMs} ms`)), this.#frameTimeoutMs)
            stall.unref()
          }
          for (const body of bodies) {
            try {
              this.#handler(body, from, connection)
            } catch (err) {
              this.#log.error('actor frame handler threw', { peer: from.toString(), ...errorFields(err) })
            }
          }
        }
        decoder.end()
        this.#log.debug('actor stream ended', { peer: from.toString(), id: stream.id, status: stream.status })
      } catch (err) {
        if (err instanceof P2PError) violation(err)
        else {
          this.#log.debug('actor stream failed', { peer: from.toString(), status: stream.status, ...errorFields(err) })
          if (stream.status === 'open') stream.abort(err instanceof Error ? err : new Error(String(err)))
        }
      } finally {
        clearTimeout(stall)
        this.#inbound.delete(stream)
        const ch = this.#channels.get(from.toString())
        if (ch) this.#dropStream(ch, stream)
        // our side: close writing too, so the stream is fully released
        if (stream.status === 'open') await stream.close({ signal: AbortSignal.timeout(5_000) }).catch(() => stream.abort(new NotStartedError('stream close timed out')))
      }
    }
    void run()
  }
}
