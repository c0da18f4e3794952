// Errors of the client SDK: a refusal of the gateway comes back as NoirApiError with the gateway's typed
// error name and code (RFC 9457 problem document), so a program can branch on `err.name`.
export class NoirApiError extends Error {
  override name: string
  readonly code: string
  readonly status: number
  readonly data: Record<string, unknown> | undefined
  constructor(o: { status: number; name: string; code: string; detail: string; data?: Record<string, unknown> }) {
    super(o.detail)
    this.name = o.name
    this.code = o.code
    this.status = o.status
    this.data = o.data
  }
}

/** The gateway could not be reached (or the connection dropped before an answer). */
export class GatewayUnreachableError extends Error {
  override name = 'GatewayUnreachableError'
  readonly code = 'ERR_GATEWAY_UNREACHABLE'
}
