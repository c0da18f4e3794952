// The ingress stream protocol `/noir/ingress/1` (spec/ingress.md "Stream protocol"): the ingress opens a libp2p
// stream to the provider that runs a replica and sends one open frame; the provider answers one frame, `ok`
// or a typed error, and on `ok` the stream carries the connection's bytes both ways until either side ends.
// A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON, at most MAX_FRAME_BYTES.
import type { Stream } from '@libp2p/interface'
import { InvalidIngressRequestError } from './errors.ts'
import { fromWireError, toWireError, isWireError } from '../../core/index.ts'
import type { ExposureGrant } from './grant.ts'

export const INGRESS_PROTOCOL = '/noir/ingress/1'
export const MAX_FRAME_BYTES = 8192
/** The longest key or token an open frame carries (a delegation chain of a few tokens fits; the frame stays under MAX_FRAME_BYTES). */
export const MAX_BEARER_CHARS = 6144
/** How long the provider waits for the open frame before it resets the stream. */
export const OPEN_TIMEOUT_MS = 10_000

/** What the ingress asks the provider for. */
export interface OpenRequest {
  v: 1
  deploymentId: string
  contractId: string
  /** The workload's port (as declared in its `ports`), never a host port. */
  port: number
  /** The orchestrator's signed opening of a port the workload keeps private (`noir expose --public`). */
  grant?: ExposureGrant
  /** The key or capability token the client presented, for a port with an access policy (checked again here). */
  bearer?: string
}

export type OpenAnswer = { ok: true } | { ok: false; error: ReturnType<typeof toWireError> }

export function encodeFrame(value: unknown): Uint8Array {
  const body = Buffer.from(JSON.stringify(value), 'utf8')
  if (body.byteLength > MAX_FRAME_BYTES) throw new InvalidIngressRequestError(`frame of ${body.byteLength} bytes (at most ${MAX_FRAME_BYTES})`)
  const out = Buffer.allocUnsafe(4 + body.byteLength)
  out.writeUInt32BE(body.byteLength, 0)
  body.copy(out, 4)
  return out
}

const bytesOf = (d: Uint8Array | { subarray(): Uint8Array }): Uint8Array => (d instanceof Uint8Array ? d : d.subarray())

/**
 * Reads one frame from the stream, then pauses it: what arrived after the frame is pushed back (`unshift`) so
 * the splice that follows reads it first. Rejects with InvalidIngressRequestError on an oversized or
 * non-JSON frame, or when the stream ends (or `timeoutMs` passes) before a whole frame.
 */
export function readFrame(stream: Stream, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const done = (err: Error | undefined, value?: unknown): void => {
      clearTimeout(timer)
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      stream.removeEventListener('remoteCloseWrite', onClose)
      if (err) reject(err)
      else resolve(value)
    }
    const onMessage = (e: { data: Uint8Array | { subarray(): Uint8Array } }): void => {
      buf = Buffer.concat([buf, bytesOf(e.data)])
      if (buf.byteLength < 4) return
      const n = buf.readUInt32BE(0)
      if (n > MAX_FRAME_BYTES) return done(new InvalidIngressRequestError(`frame of ${n} bytes (at most ${MAX_FRAME_BYTES})`))
      if (buf.byteLength < 4 + n) return
      stream.pause()
      const rest = buf.subarray(4 + n)
      if (rest.byteLength > 0) stream.unshift(rest)
      try {
        done(undefined, JSON.parse(buf.subarray(4, 4 + n).toString('utf8')))
      } catch {
        done(new InvalidIngressRequestError('the frame is not JSON'))
      }
    }
    const onClose = (): void => done(new InvalidIngressRequestError('the stream ended before a whole frame'))
    const timer = setTimeout(() => done(new InvalidIngressRequestError(`no whole frame within ${timeoutMs} ms`)), timeoutMs)
    stream.addEventListener('message', onMessage as never)
    stream.addEventListener('close', onClose)
    stream.addEventListener('remoteCloseWrite', onClose)
    stream.resume()
  })
}

const ID = /^[A-Za-z0-9._~:@+/-]{1,160}$/

/** Checks an open frame's shape (the provider then checks what it asks for). */
export function parseOpenRequest(x: unknown): OpenRequest {
  const o = x as Partial<OpenRequest> | null
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new InvalidIngressRequestError('the open frame must be an object')
  if (o.v !== 1) throw new InvalidIngressRequestError(`unsupported version ${JSON.stringify(o.v)} (this provider speaks 1)`)
  if (typeof o.deploymentId !== 'string' || !ID.test(o.deploymentId)) throw new InvalidIngressRequestError('deploymentId must be an id string')
  if (typeof o.contractId !== 'string' || !ID.test(o.contractId)) throw new InvalidIngressRequestError('contractId must be an id string')
  if (!Number.isInteger(o.port) || (o.port as number) < 1 || (o.port as number) > 65535) throw new InvalidIngressRequestError('port must be an integer from 1 to 65535')
  if (o.grant !== undefined && (typeof o.grant !== 'object' || o.grant === null)) throw new InvalidIngressRequestError('grant must be an object')
  if (o.bearer !== undefined && (typeof o.bearer !== 'string' || o.bearer.length === 0 || o.bearer.length > MAX_BEARER_CHARS)) throw new InvalidIngressRequestError(`bearer must be a string of 1-${MAX_BEARER_CHARS} characters`)
  return { v: 1, deploymentId: o.deploymentId, contractId: o.contractId, port: o.port as number, ...(o.grant ? { grant: o.grant } : {}), ...(o.bearer !== undefined ? { bearer: o.bearer } : {}) }
}

/** The provider's answer, as an error instance when it refused. */
export function parseOpenAnswer(x: unknown): Error | undefined {
  const a = x as Partial<{ ok: boolean; error: unknown }> | null
  if (a?.ok === true) return undefined
  if (a?.ok === false && isWireError(a.error)) return fromWireError(a.error)
  return new InvalidIngressRequestError("the provider's answer is not an ingress answer")
}

export function refusal(err: unknown): OpenAnswer {
  return { ok: false, error: toWireError(err) }
}
