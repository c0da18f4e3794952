// Typed errors of the gateway (spec/auth.md). Each has a stable `name` and `code` and the HTTP status it is
// answered with, as RFC 9457 problem+json: { type, title, status, detail, name, code, data? }.
export class GatewayError extends Error {
  override name = 'GatewayError'
  readonly code: string = 'ERR_GATEWAY'
  readonly status: number = 500
  readonly data: Record<string, unknown> | undefined
  constructor(message: string, data?: Record<string, unknown>) {
    super(message)
    this.data = data
  }
}

/** The request body or a field is missing, malformed or not allowed (names the field). */
export class InvalidRequestError extends GatewayError {
  override name = 'InvalidRequestError'
  override readonly code = 'ERR_INVALID_REQUEST'
  override readonly status = 400
}

/** A password that does not meet the policy (length 12 to 128; spec/auth.md). */
export class WeakPasswordError extends GatewayError {
  override name = 'WeakPasswordError'
  override readonly code = 'ERR_WEAK_PASSWORD'
  override readonly status = 400
}

/** No valid session: the route needs one. */
export class AuthRequiredError extends GatewayError {
  override name = 'AuthRequiredError'
  override readonly code = 'ERR_AUTH_REQUIRED'
  override readonly status = 401
}

/** Email or password wrong, or no such account: one answer for all three (no account enumeration). */
export class InvalidCredentialsError extends GatewayError {
  override name = 'InvalidCredentialsError'
  override readonly code = 'ERR_INVALID_CREDENTIALS'
  override readonly status = 401
}

/** The password was right but the email is not verified yet. */
export class EmailNotVerifiedError extends GatewayError {
  override name = 'EmailNotVerifiedError'
  override readonly code = 'ERR_EMAIL_NOT_VERIFIED'
  override readonly status = 403
}

/** The account has TOTP: the login needs a current code (missing, wrong, or used before). */
export class TotpRequiredError extends GatewayError {
  override name = 'TotpRequiredError'
  override readonly code = 'ERR_TOTP_REQUIRED'
  override readonly status = 401
}

/** A verification, reset or enrolment token that is unknown, used, or expired. */
export class InvalidTokenError extends GatewayError {
  override name = 'InvalidTokenError'
  override readonly code = 'ERR_INVALID_TOKEN'
  override readonly status = 400
}

/** Too many attempts: `data.retryAfterSeconds`. */
export class RateLimitedError extends GatewayError {
  override name = 'RateLimitedError'
  override readonly code = 'ERR_RATE_LIMITED'
  override readonly status = 429
}

/** No route, or a resource of another account (the same answer: nothing about others leaks). */
export class NotFoundError extends GatewayError {
  override name = 'NotFoundError'
  override readonly code = 'ERR_NOT_FOUND'
  override readonly status = 404
}

/** An API key that is malformed, unknown, revoked, expired or whose signature does not verify (`data.reason`). */
export class InvalidApiKeyError extends GatewayError {
  override name = 'InvalidApiKeyError'
  override readonly code = 'ERR_INVALID_API_KEY'
  override readonly status = 401
}

/** A binding of the customer's own did:key refused (`data.reason`: no-challenge, expired, not-ed25519, signature, taken). */
export class InvalidDidBindingError extends GatewayError {
  override name = 'InvalidDidBindingError'
  override readonly code = 'ERR_INVALID_DID_BINDING'
  override readonly status = 400
}

/** The account's wallet is the customer's own did:key: the gateway holds no key to sign with (sign it yourself). */
export class OwnDidWalletError extends GatewayError {
  override name = 'OwnDidWalletError'
  override readonly code = 'ERR_OWN_DID_WALLET'
  override readonly status = 409
}

/** The credentials are valid but do not grant this route (`data.needs`: the scope, or `session`). */
export class ScopeDeniedError extends GatewayError {
  override name = 'ScopeDeniedError'
  override readonly code = 'ERR_SCOPE_DENIED'
  override readonly status = 403
}

/** The gateway has no node to drive (started without --node, or its node does not answer). */
export class MeshUnavailableError extends GatewayError {
  override name = 'MeshUnavailableError'
  override readonly code = 'ERR_MESH_UNAVAILABLE'
  override readonly status = 503
}

/** One idempotency key, two different workloads. */
export class IdempotencyConflictError extends GatewayError {
  override name = 'IdempotencyConflictError'
  override readonly code = 'ERR_IDEMPOTENCY_CONFLICT'
  override readonly status = 409
}

/**
 * The node refused what the gateway asked on a customer's behalf: its typed error, passed on (`name` and
 * `code` are the node's; a 5xx of the node is a 502 here).
 */
export class NodeRefusedError extends GatewayError {
  override readonly code: string
  override readonly status: number
  constructor(o: { name: string; code: string; status: number; message: string; data?: Record<string, unknown> }) {
    super(o.message, o.data)
    this.name = o.name
    this.code = o.code
    this.status = o.status >= 500 ? 502 : o.status
  }
}

/** The gateway's database (PostgreSQL) does not answer, or its URL is not one. The URL's password is never in the message. */
export class GatewayDatabaseError extends GatewayError {
  override name = 'GatewayDatabaseError'
  override readonly code = 'ERR_GATEWAY_DATABASE'
  override readonly status = 503
}

/** The account's available funds do not cover the hold a deploy needs (spec/billing.md "Admission"): top up first. */
export class InsufficientFundsError extends GatewayError {
  override name = 'InsufficientFundsError'
  override readonly code = 'ERR_INSUFFICIENT_FUNDS'
  override readonly status = 402
}

/** This gateway keeps no books (started without billing): the billing routes do not exist here. */
export class BillingNotConfiguredError extends GatewayError {
  override name = 'BillingNotConfiguredError'
  override readonly code = 'ERR_BILLING_NOT_CONFIGURED'
  override readonly status = 404
}

/** The mesh has no room for the capacity asked (spec/capacity.md "Quotes"): no quote; `data.reasons` says why each node declined. */
export class CapacityUnavailableError extends GatewayError {
  override name = 'CapacityUnavailableError'
  override readonly code = 'ERR_CAPACITY_UNAVAILABLE'
  override readonly status = 409
}

/** A quote past its time (or already turned into a reservation of another request): ask for a new one. */
export class QuoteExpiredError extends GatewayError {
  override name = 'QuoteExpiredError'
  override readonly code = 'ERR_QUOTE_EXPIRED'
  override readonly status = 410
}

/** The reservation has ended (its time is over, or it was cancelled): nothing more runs inside it. */
export class ReservationEndedError extends GatewayError {
  override name = 'ReservationEndedError'
  override readonly code = 'ERR_RESERVATION_ENDED'
  override readonly status = 409
}

/** The deploy does not fit what is left of the reservation (its slots, its per-slot resources, its lane or runtime). */
export class ReservationExceededError extends GatewayError {
  override name = 'ReservationExceededError'
  override readonly code = 'ERR_RESERVATION_EXCEEDED'
  override readonly status = 409
}
