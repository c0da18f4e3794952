// Carries a TCP connection's bytes over a libp2p stream and back, with back-pressure both ways and half-close:
// the side that ends its writing ends the other side's writing, so HTTP/1.1 keep-alive, upgrades (WebSocket)
// and any raw TCP protocol pass through unchanged. Resolves once both directions are done (or either failed).
import type { Socket } from 'node:net'
import type { Stream } from '@libp2p/interface'

export interface SpliceCounts {
  /** Bytes from the socket to the stream. */
  up: number
  /** Bytes from the stream to the socket. */
  down: number
}

const bytesOf = (d: Uint8Array | { subarray(): Uint8Array }): Uint8Array => (d instanceof Uint8Array ? d : d.subarray())

/**
 * `retryable`: the request already sent (the head the ingress read) may be sent again to another replica (an
 * idempotent request with no body). If the stream then ends before a single byte came back, and the client sent
 * nothing more, the socket is left untouched and the answer says `retry`: the caller opens another replica.
 */
export function splice(socket: Socket, stream: Stream, o: { retryable?: boolean } = {}): Promise<SpliceCounts & { retry?: true }> {
  const counts: SpliceCounts = { up: 0, down: 0 }
  const canRetry = (): boolean => o.retryable === true && counts.down === 0 && counts.up === 0 && !socket.destroyed
  return new Promise((resolve) => {
    let finished = false
    const finish = (retry = false): void => {
      if (finished) return
      finished = true
      stream.removeEventListener('message', onMessage as never)
      if (retry) {
        // handed back whole: the next splice takes the socket over
        socket.off('data', onData)
        socket.off('end', onEnd)
        socket.off('close', onClose)
        socket.pause()
        resolve({ ...counts, retry: true })
        return
      }
      resolve(counts)
    }
    // stream -> socket
    const onMessage = (e: { data: Uint8Array | { subarray(): Uint8Array } }): void => {
      const b = bytesOf(e.data)
      counts.down += b.byteLength
      if (!socket.destroyed && !socket.write(b)) {
        stream.pause()
        socket.once('drain', () => stream.resume())
      }
    }
    stream.addEventListener('message', onMessage as never)
    stream.addEventListener('remoteCloseWrite', () => {
      if (canRetry()) {
        // the replica ended without a byte of answer: no need to wait for the stream's close
        stream.abort(new Error('no answer: retried on another replica'))
        return
      }
      if (!socket.destroyed) socket.end()
    })
    stream.addEventListener('close', (e) => {
      if (canRetry()) return finish(true)
      const err = (e as { error?: Error }).error
      if (err) socket.destroy()
      else if (!socket.destroyed) socket.end()
      finish()
    })
    // socket -> stream
    const onData = (b: Buffer): void => {
      counts.up += b.byteLength
      if (stream.status !== 'open' || stream.writeStatus !== 'writable') return
      let ok: boolean
      try {
        ok = stream.send(b)
      } catch {
        socket.destroy()
        return
      }
      if (!ok) {
        socket.pause()
        stream.onDrain().then(() => socket.resume(), () => socket.destroy())
      }
    }
    const onEnd = (): void => {
      if (stream.status === 'open') stream.close().catch((err: Error) => stream.abort(err))
    }
    const onClose = (hadError: boolean): void => {
      if (hadError && stream.status === 'open') stream.abort(new Error('the connection was reset'))
      else if (stream.status === 'open') {
        // nothing more can be delivered to the socket: once our side is flushed, the stream ends (a peer that
        // would keep sending into a closed connection is cut off rather than held open)
        const closing = stream.writeStatus === 'writable' ? stream.close() : Promise.resolve()
        closing.then(() => {
          if (stream.status === 'open') stream.abort(new Error('the connection closed'))
        }, (err: Error) => stream.abort(err))
      }
      if (stream.status !== 'open') finish()
    }
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('close', onClose)
    socket.on('error', () => undefined) // 'close' follows with hadError
    if (stream.status !== 'open') {
      socket.destroy()
      finish()
      return
    }
    stream.resume()
    socket.resume()
  })
}
