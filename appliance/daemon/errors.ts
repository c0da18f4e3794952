// Typed errors of the node daemon and its local API. Each has a stable `name` and `code`, and the HTTP
// status the API answers with. Over HTTP an error is `{ "error": { "name", "code", "message", "data"? } }`.

export class DaemonError extends Error {
  override readonly name: string = 'DaemonError'
  readonly code: string = 'ERR_DAEMON'
  readonly status: number = 500
  /** What the caller can act on (e.g. `issues` of a refused body); answered as `error.data`. */
  readonly data: unknown
  constructor(message?: string, data?: unknown) {
    super(message)
    if (data !== undefined) this.data = data
  }
}

/** config.json is unreadable, not JSON, or has a field of the wrong type. */
export class ConfigError extends DaemonError {
  override readonly name = 'ConfigError'
  override readonly code = 'ERR_CONFIG'
}

/** Another daemon already runs with this home (its api.json names a live process). */
export class DaemonAlreadyRunningError extends DaemonError {
  override readonly name = 'DaemonAlreadyRunningError'
  override readonly code = 'ERR_DAEMON_RUNNING'
  override readonly status = 409
}

/** The request has no valid bearer token. */
export class UnauthorizedError extends DaemonError {
  override readonly name = 'UnauthorizedError'
  override readonly code = 'ERR_UNAUTHORIZED'
  override readonly status = 401
}

/** The request names a Host that is not this API's loopback address (DNS rebinding: a web page's name pointed at 127.0.0.1). */
export class ForeignHostError extends DaemonError {
  override readonly name = 'ForeignHostError'
  override readonly code = 'ERR_FOREIGN_HOST'
  override readonly status = 421
}

/** The request comes from a web page of another origin (a browser's cross-site request). */
export class ForeignOriginError extends DaemonError {
  override readonly name = 'ForeignOriginError'
  override readonly code = 'ERR_FOREIGN_ORIGIN'
  override readonly status = 403
}

/** No route for this method and path. */
export class RouteNotFoundError extends DaemonError {
  override readonly name = 'RouteNotFoundError'
  override readonly code = 'ERR_ROUTE_NOT_FOUND'
  override readonly status = 404
}

/** The request body or query is not what the route accepts. */
export class InvalidRequestError extends DaemonError {
  override readonly name = 'InvalidRequestError'
  override readonly code = 'ERR_INVALID_REQUEST'
  override readonly status = 400
}

/** The request body exceeds the API's limit. */
export class RequestTooLargeError extends DaemonError {
  override readonly name = 'RequestTooLargeError'
  override readonly code = 'ERR_REQUEST_TOO_LARGE'
  override readonly status = 413
}

/** Two services or routes claim the same name / method+path. */
export class DuplicateServiceError extends DaemonError {
  override readonly name = 'DuplicateServiceError'
  override readonly code = 'ERR_DUPLICATE_SERVICE'
}

/** A node service was asked for what it has only once started (the composition starts it too late). */
export class ServiceNotStartedError extends DaemonError {
  override readonly name = 'ServiceNotStartedError'
  override readonly code = 'ERR_SERVICE_NOT_STARTED'
}

/** The daemon is shutting down. */
export class DaemonStoppingError extends DaemonError {
  override readonly name = 'DaemonStoppingError'
  override readonly code = 'ERR_DAEMON_STOPPING'
  override readonly status = 503
}

// ---- client side (cli/api-client.ts) ----------------------------------------------------------------------

/** No daemon answers for this home: api.json is missing, stale, or its URL refuses connections. */
export class NoDaemonError extends DaemonError {
  override readonly name = 'NoDaemonError'
  override readonly code = 'ERR_NO_DAEMON'
}

/**
 * The daemon answered with an error document. `name` and `code` are the ones the daemon sent (for example
 * `UnreachableError`, `CapabilityDeniedError`), so callers branch on them as on a local error.
 */
export class ApiCallError extends Error {
  override name: string
  readonly code: string
  readonly status: number
  readonly data: unknown
  constructor(status: number, name: string, code: string, message: string, data?: unknown) {
    super(message)
    this.name = name
    this.code = code
    this.status = status
    this.data = data
  }
}

/** HTTP status for an error thrown by a route: its own `status`, else by well-known names, else 500. */
export function httpStatusFor(err: unknown): number {
  const s = (err as { status?: unknown } | null)?.status
  if (typeof s === 'number' && s >= 400 && s < 600) return s
  const name = err instanceof Error ? err.name : ''
  switch (name) {
    case 'UnreachableError':
      return 502
    case 'AskTimeoutError':
      return 504
    case 'ActorNotFoundError':
    case 'NotFoundError':
      return 404
    case 'CapabilityDeniedError':
    case 'SenderMismatchError':
      return 403
    case 'MailboxFullError':
      return 429
    case 'InvalidAddressError':
    case 'InvalidPeerAddressError':
    case 'InvalidTopicError':
    case 'InvalidMessageError':
    case 'UnknownBehaviorError':
    case 'UsageError':
    case 'InvalidPayoutBatchError':
    case 'InvalidExternalRefError':
      return 400
    case 'DeepReorgError':
    case 'TopupConflictError':
      return 409
    case 'PayoutFailedError':
      return 502
    default:
      return 500
  }
}
