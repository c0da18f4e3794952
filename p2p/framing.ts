// Framing of /noir/actor/1.0.0 (spec/wire.md): a stream is a sequence of frames,
//   frame = uvarint(n) | kind (1 byte) | body (n - 1 bytes)
// with 1 <= n <= maxBodyBytes + 1. Kind 0x01 carries one envelope in its wire encoding. Anything else is
// a protocol violation: the decoder throws a typed error and the stream is reset.
import { FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from './errors.ts'

export const FRAME_KIND_ENVELOPE = 0x01
/** Default limit for one envelope body (the envelope verifier's own default is the same 1 MiB). */
export const DEFAULT_MAX_FRAME_BODY = 1024 * 1024

/** Bytes a uvarint of `n` takes. */
function varintLength(n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    len++
  }
  return len
}

function writeVarint(buf: Uint8Array, offset: number, n: number): number {
  while (n >= 0x80) {
    buf[offset++] = (n & 0x7f) | 0x80
    n = Math.floor(n / 128)
  }
  buf[offset++] = n
  return offset
}

/** Encodes several envelope bodies into one buffer (one write on the stream). */
export function encodeFrames(bodies: readonly Uint8Array[]): Uint8Array {
  let total = 0
  for (const b of bodies) {
    const n = b.byteLength + 1
    total += varintLength(n) + n
  }
  const out = new Uint8Array(total)
  let o = 0
  for (const b of bodies) {
    o = writeVarint(out, o, b.byteLength + 1)
    out[o++] = FRAME_KIND_ENVELOPE
    out.set(b, o)
    o += b.byteLength
  }
  return out
}

/** Frame sizes for a body of `bodyBytes` (used by senders to check the limit before queueing). */
export function frameOverhead(bodyBytes: number): number {
  return varintLength(bodyBytes + 1) + 1
}

/** Source chunks as libp2p hands them (Uint8Array or Uint8ArrayList, which has `subarray()`). */
export type Chunk = Uint8Array | { subarray(): Uint8Array; byteLength: number }

/**
 * Incremental decoder: feed it chunks as they arrive; it returns complete envelope bodies and keeps a
 * partial frame for the next chunk. Throws FrameTooLargeError / MalformedFrameError as soon as a header
 * shows a violation (before buffering the body); `end()` throws TruncatedFrameError when a partial frame
 * is left over.
 */
export class FrameDecoder {
  readonly maxBodyBytes: number
  /** Bytes of an incomplete frame, kept as received (joined once the whole frame is there). */
  #chunks: Uint8Array[] = []
  #held = 0
  /** Bytes the incomplete frame needs in total (0 while its length prefix is incomplete). */
  #need = 0

  constructor(maxBodyBytes = DEFAULT_MAX_FRAME_BODY) {
    this.maxBodyBytes = maxBodyBytes
  }

  /** Bytes held from an incomplete frame. */
  get buffered(): number {
    return this.#held
  }

  push(chunk: Chunk): Uint8Array[] {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
    let buf: Uint8Array
    if (this.#held === 0) buf = bytes
    else {
      this.#chunks.push(bytes)
      this.#held += bytes.byteLength
      // a large frame arriving in many chunks: join once, when all of it is here
      if (this.#need > 0 && this.#held < this.#need) return []
      buf = new Uint8Array(this.#held)
      let o = 0
      for (const c of this.#chunks) {
        buf.set(c, o)
        o += c.byteLength
      }
      this.#chunks = []
      this.#held = 0
    }
    const out: Uint8Array[] = []
    let o = 0
    this.#need = 0
    const limit = this.maxBodyBytes + 1
    while (o < buf.byteLength) {
      // uvarint length, at most 5 bytes for any limit we allow (< 2^35)
      let n = 0
      let shift = 1
      let i = o
      let complete = false
      while (i < buf.byteLength) {
        const b = buf[i++]!
        n += (b & 0x7f) * shift
        if ((b & 0x80) === 0) { complete = true; break }
        shift *= 128
        if (i - o >= 5) throw new MalformedFrameError('frame length prefix is longer than 5 bytes')
        if (n > limit) throw new FrameTooLargeError(`frame announces more than ${limit} bytes`)
      }
      if (!complete) break
      if (n === 0) throw new MalformedFrameError('frame of length 0')
      if (n > limit) throw new FrameTooLargeError(`frame of ${n} bytes exceeds the limit of ${limit}`)
      if (i < buf.byteLength && buf[i] !== FRAME_KIND_ENVELOPE) {
        throw new MalformedFrameError(`unknown frame kind 0x${buf[i]!.toString(16).padStart(2, '0')}`)
      }
      if (buf.byteLength - i < n) {
        this.#need = i - o + n
        break
      }
      out.push(buf.subarray(i + 1, i + n))
      o = i + n
    }
    if (o < buf.byteLength) {
      // keep the partial frame (a copy: the muxer may reuse its buffer)
      this.#chunks = [buf.slice(o)]
      this.#held = buf.byteLength - o
    }
    return out
  }

  /** The stream ended: a partial frame left over means the sender truncated it. */
  end(): void {
    if (this.#held > 0) {
      const n = this.#held
      this.#chunks = []
      this.#held = 0
      throw new TruncatedFrameError(`stream ended inside a frame (${n} bytes of it received)`)
    }
  }
}
