// The request head of a connection to an access-controlled port (spec/ingress.md "Access control"), rewritten
// before it is forwarded: its Authorization headers are taken out (the workload never sees a key or token),
// and the connection carries this one request only: `connection: close` replaces the client's Connection
// headers and no byte past the request's Content-Length is forwarded, so a second request pipelined on the
// same connection (one that was never checked) cannot reach the workload. Heads that could be read two ways
// (folded lines, Transfer-Encoding, several or malformed Content-Length) are refused. An Upgrade request
// (WebSocket) keeps its Connection header and its connection carries the upgraded protocol unbounded.
import { InvalidIngressRequestError } from './errors.ts'

export interface GuardedRequest {
  /** The Authorization header values, as sent. */
  authorization: string[]
  /** The rewritten head and the body bytes already read (at most Content-Length of them). */
  forward: Buffer
  /** How many more bytes of the client's may follow (undefined: unbounded, an Upgrade request). */
  upLimit: number | undefined
}

const DROPPED = new Set(['authorization', 'connection', 'keep-alive', 'proxy-connection'])

/** `buffered` holds the request head (ending with CRLF CRLF) and any bytes read after it. */
export function guardRequest(buffered: Buffer): GuardedRequest {
  const end = buffered.indexOf('\r\n\r\n')
  if (end < 0) throw new InvalidIngressRequestError('the request head is incomplete')
  const [requestLine, ...lines] = buffered.subarray(0, end).toString('latin1').split('\r\n')
  const authorization: string[] = []
  const kept: string[] = []
  const lengths: string[] = []
  let upgrade = false
  let connection = ''
  for (const line of lines) {
    if (/^[ \t]/.test(line)) throw new InvalidIngressRequestError('folded header lines are not accepted on an access-controlled port')
    const i = line.indexOf(':')
    if (i <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(line.slice(0, i))) throw new InvalidIngressRequestError('a header line is malformed')
    const name = line.slice(0, i).toLowerCase()
    const value = line.slice(i + 1).trim()
    if (name === 'authorization') authorization.push(value)
    if (name === 'transfer-encoding') throw new InvalidIngressRequestError('an access-controlled port takes a body with Content-Length only (no Transfer-Encoding)')
    if (name === 'content-length') lengths.push(value)
    if (name === 'upgrade') upgrade = true
    if (name === 'connection') connection += `,${value.toLowerCase()}`
    if (!DROPPED.has(name)) kept.push(line)
  }
  if (lengths.length > 1 || (lengths[0] !== undefined && !/^\d{1,15}$/.test(lengths[0]))) throw new InvalidIngressRequestError('Content-Length is given more than once or is not a number')
  const isUpgrade = upgrade && connection.split(',').some((t) => t.trim() === 'upgrade')
  const length = Number(lengths[0] ?? 0)
  const head = [requestLine, ...kept, ...(isUpgrade ? [`connection: upgrade`] : ['connection: close']), '', ''].join('\r\n')
  const rest = buffered.subarray(end + 4)
  const body = isUpgrade ? rest : rest.subarray(0, length)
  return { authorization, forward: Buffer.concat([Buffer.from(head, 'latin1'), body]), upLimit: isUpgrade ? undefined : length - body.byteLength }
}
