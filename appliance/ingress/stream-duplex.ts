// A libp2p stream as a Node Duplex, so Node's HTTP/1.1 client can speak over it (the HTTP/2 front end sends
// each HTTP/2 request as one HTTP/1.1 request on a mesh stream of its own: spec/ingress.md "HTTP/2").
// Back-pressure both ways: a full readable side pauses the stream; a write waits for the stream's drain.
// Ending the writable side closes the stream for writing (the answer still comes); the stream's end ends
// the readable side; a stream closed with an error destroys the Duplex with it. `setTimeout(ms)` works as a
// socket's: 'timeout' once nothing was read or written for ms (Node's http.Agent closes a kept one then).
import { Duplex } from 'node:stream'
import type { Stream } from '@libp2p/interface'

const bytesOf = (d: Uint8Array | { subarray(): Uint8Array }): Uint8Array => (d instanceof Uint8Array ? d : d.subarray())

/** The stream must be open and paused (as RouteBalancer.open hands it over); the Duplex resumes it when read. */
export function streamDuplex(stream: Stream): Duplex {
  let idle: NodeJS.Timeout | undefined
  /** Something moved: the idle clock starts again. */
  const touch = (): void => {
    idle?.refresh()
  }
  // as net.Socket#setTimeout: a callback is added as a 'timeout' listener once, and removed by a 0 (Node's HTTP
  // client adds one per request and takes it off with setTimeout(0, cb) as the response ends)
  const setIdle = (ms: number, cb?: () => void): Duplex => {
    if (cb) {
      if (ms === 0) duplex.removeListener('timeout', cb)
      else duplex.once('timeout', cb)
    }
    clearTimeout(idle)
    idle = undefined
    if (ms > 0 && Number.isFinite(ms)) {
      idle = setTimeout(() => duplex.emit('timeout'), ms)
      idle.unref()
    }
    return duplex
  }
  let ended = false
  const end = (): void => {
    if (ended) return
    ended = true
    duplex.push(null)
  }
  const duplex = new Duplex({
    allowHalfOpen: true,
    read() {
      stream.resume()
    },
    write(chunk: Buffer, _encoding, callback) {
      touch()
      if (stream.status !== 'open' || stream.writeStatus !== 'writable') return callback(new Error('the mesh stream is closed for writing'))
      try {
        if (stream.send(chunk)) callback()
        else stream.onDrain().then(() => callback(), callback)
      } catch (err) {
        callback(err as Error)
      }
    },
    final(callback) {
      if (stream.status !== 'open' || stream.writeStatus !== 'writable') return callback()
      stream.close().then(() => callback(), callback)
    },
    destroy(err, callback) {
      clearTimeout(idle)
      if (stream.status === 'open') stream.abort(err ?? new Error('the connection was closed'))
      callback(err)
    },
  })
  stream.addEventListener('message', ((e: { data: Uint8Array | { subarray(): Uint8Array } }) => {
    touch()
    if (!duplex.push(bytesOf(e.data))) stream.pause()
  }) as never)
  stream.addEventListener('remoteCloseWrite', end)
  stream.addEventListener('close', (e) => {
    const err = (e as { error?: Error }).error
    clearTimeout(idle)
    if (err && !duplex.destroyed) duplex.destroy(err)
    else end()
  })
  // what Node's HTTP client asks of a socket beyond a Duplex
  Object.assign(duplex, { setNoDelay: () => duplex, setKeepAlive: () => duplex, setTimeout: setIdle, ref: () => duplex, unref: () => duplex })
  return duplex
}
