// The /noir/actor/1.0.0 frame codec: round trips, split chunks, and every violation as a typed error.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { FrameDecoder, encodeFrames, FRAME_KIND_ENVELOPE } from '../framing.ts'
import { FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from '../errors.ts'

t.test('frames encoded together decode to the same bodies, in order, whatever the chunking', async (t) => {
  const bodies = [randomBytes(1), randomBytes(127), randomBytes(128), randomBytes(300), randomBytes(70_000)].map((b) => new Uint8Array(b))
  const wire = encodeFrames(bodies)
  for (const split of [1, 2, 3, 7, 64, 1000, wire.byteLength]) {
    const d = new FrameDecoder()
    const out: Uint8Array[] = []
    for (let o = 0; o < wire.byteLength; o += split) out.push(...d.push(wire.subarray(o, o + split)))
    d.end()
    t.same(out.map((b) => Buffer.from(b).toString('hex')), bodies.map((b) => Buffer.from(b).toString('hex')), `chunks of ${split} bytes`)
  }
})

t.test('a frame announcing more than the limit is refused with FrameTooLargeError before its body arrives', async (t) => {
  const d = new FrameDecoder(1024)
  const header = encodeFrames([new Uint8Array(2048)]).subarray(0, 3)
  t.throws(() => d.push(header), FrameTooLargeError)
  const ok = new FrameDecoder(1024)
  t.equal(ok.push(encodeFrames([new Uint8Array(1024)])).length, 1, 'a frame of exactly the limit passes')
})

t.test('a zero-length frame, an unknown kind, and an over-long length prefix are MalformedFrameError', async (t) => {
  t.throws(() => new FrameDecoder().push(Uint8Array.of(0)), MalformedFrameError)
  t.throws(() => new FrameDecoder().push(Uint8Array.of(2, 0x7f, 1)), MalformedFrameError)
  t.throws(() => new FrameDecoder(2 ** 40).push(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01)), MalformedFrameError)
  t.equal(FRAME_KIND_ENVELOPE, 1)
})

t.test('a stream that ends inside a frame is TruncatedFrameError', async (t) => {
  const d = new FrameDecoder()
  const wire = encodeFrames([new Uint8Array(100)])
  t.same(d.push(wire.subarray(0, 50)), [])
  t.equal(d.buffered, 50)
  t.throws(() => d.end(), TruncatedFrameError)
  const clean = new FrameDecoder()
  clean.push(wire)
  t.doesNotThrow(() => clean.end(), 'ending between frames is fine')
})

t.test('random bytes never crash the decoder: each input yields frames or a typed P2P error', async (t) => {
  let typed = 0
  for (let i = 0; i < 3000; i++) {
    const d = new FrameDecoder(4096)
    try {
      d.push(randomBytes(1 + (i % 200)))
      d.end()
    } catch (err) {
      if (err instanceof FrameTooLargeError || err instanceof MalformedFrameError || err instanceof TruncatedFrameError) typed++
      else throw err
    }
  }
  t.ok(typed > 2500, `most random inputs are refused with a typed error (${typed} of 3000)`)
})
