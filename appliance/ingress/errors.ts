// Typed errors of the service ingress (spec/ingress.md "Errors"): one class per refusal, each with a stable
// `name` and `code`, the HTTP status the ingress answers with (as an RFC 9457 problem document), and the facts
// as `data`. They cross the mesh (the provider's stream answer, the orchestrator's backend answer) and come
// back as instances of the same class (registered below).
import { NoirError, registerErrorClass } from '../../core/index.ts'

const STATUS: Record<string, number> = {
  ERR_PORT_NOT_EXPOSED: 403, ERR_CONTRACT_NOT_SERVING: 403, ERR_INVALID_EXPOSURE_GRANT: 403, ERR_REPLICA_NOT_READY: 503, ERR_NO_READY_REPLICA: 503,
  ERR_BACKEND_UNREACHABLE: 502, ERR_UPSTREAM_UNREACHABLE: 502, ERR_UNKNOWN_ROUTE: 404, ERR_DEPLOYMENT_NOT_HERE: 404,
  ERR_INVALID_INGRESS_REQUEST: 400, ERR_ROUTE_EXISTS: 409, ERR_RATE_LIMITED: 429,
  ERR_INGRESS_AUTH_REQUIRED: 401, ERR_INGRESS_ACCESS_DENIED: 403,
}

export class IngressError extends NoirError {
  constructor(message: string, code: string, data?: Record<string, unknown>) {
    super(message, code, data)
    this.name = 'IngressError'
  }

  /** The HTTP status the ingress (and the local API) answers with; a getter, so an error rebuilt from the wire has it too. */
  get status(): number {
    return STATUS[this.code] ?? 502
  }
}

/** The port is not declared by the workload, or not public (nor opened by its owner with `noir expose --public`). */
export class PortNotExposedError extends IngressError {
  constructor(deploymentId: string, port: number, why: string) {
    super(`port ${port} of deployment ${deploymentId} is not exposed: ${why}`, 'ERR_PORT_NOT_EXPOSED', { deploymentId, port })
    this.name = 'PortNotExposedError'
  }
}

/** The provider holds no active contract with this id for this deployment (ended, superseded, forged, or another deployment's). */
export class ContractNotServingError extends IngressError {
  constructor(contractId: string, why: string) {
    super(`contract ${contractId} is not served here: ${why}`, 'ERR_CONTRACT_NOT_SERVING', { contractId })
    this.name = 'ContractNotServingError'
  }
}

/** The replica exists but its health check does not pass (or its instance does not run): not in rotation. */
export class ReplicaNotReadyError extends IngressError {
  constructor(contractId: string, why: string) {
    super(`replica of contract ${contractId} is not ready: ${why}`, 'ERR_REPLICA_NOT_READY', { contractId })
    this.name = 'ReplicaNotReadyError'
  }
}

/** Every replica was tried (or none runs): the service cannot answer now. */
export class NoReadyReplicaError extends IngressError {
  constructor(route: string, tried: number, last?: string) {
    super(`no ready replica for '${route}' (${tried} tried${last ? `; last: ${last}` : ''})`, 'ERR_NO_READY_REPLICA', { route, tried })
    this.name = 'NoReadyReplicaError'
  }
}

/** The workload's port refused the provider's loopback connection. */
export class BackendUnreachableError extends IngressError {
  constructor(contractId: string, port: number, why: string) {
    super(`the workload of contract ${contractId} does not accept connections on port ${port}: ${why}`, 'ERR_BACKEND_UNREACHABLE', { contractId, port })
    this.name = 'BackendUnreachableError'
  }
}

/** The orchestrator(s) a route names could not be asked for the replica set, or the provider for a stream. */
export class UpstreamUnreachableError extends IngressError {
  constructor(what: string, why: string) {
    super(`${what} cannot be reached: ${why}`, 'ERR_UPSTREAM_UNREACHABLE', { what })
    this.name = 'UpstreamUnreachableError'
  }
}

/** No route of this ingress matches the request's Host (or path prefix). */
export class UnknownRouteError extends IngressError {
  constructor(host: string) {
    super(`no service is served here under '${host}'`, 'ERR_UNKNOWN_ROUTE', { host })
    this.name = 'UnknownRouteError'
  }
}

/** A malformed open request on the ingress stream, or a request the ingress cannot route (no Host, bad head). */
export class InvalidIngressRequestError extends IngressError {
  constructor(why: string) {
    super(`invalid ingress request: ${why}`, 'ERR_INVALID_INGRESS_REQUEST')
    this.name = 'InvalidIngressRequestError'
  }
}

/** A route with this name already serves another deployment or port. */
export class RouteExistsError extends IngressError {
  constructor(name: string) {
    super(`a route named '${name}' already exists on this ingress`, 'ERR_ROUTE_EXISTS', { name })
    this.name = 'RouteExistsError'
  }
}

/** An exposure grant that is not signed by the contract's orchestrator, is for another deployment or port, or has expired. */
export class InvalidExposureGrantError extends IngressError {
  constructor(why: string) {
    super(`invalid exposure grant: ${why}`, 'ERR_INVALID_EXPOSURE_GRANT')
    this.name = 'InvalidExposureGrantError'
  }
}

/** The deployment is not orchestrated by this node. */
export class DeploymentNotHereError extends IngressError {
  constructor(deploymentId: string) {
    super(`deployment ${deploymentId} is not orchestrated by this node`, 'ERR_DEPLOYMENT_NOT_HERE', { deploymentId })
    this.name = 'DeploymentNotHereError'
  }
}

/** Too many new connections from this client address, or to this route, for the ingress's or the workload's rate limit. */
export class RateLimitedError extends IngressError {
  /** `limit`: whose limit it is, the ingress operator's (config.json) or the workload owner's (`ports[].rateLimit`). */
  constructor(route: string, scope: 'client' | 'route', retryAfterSeconds: number, limit: 'ingress' | 'workload' = 'ingress') {
    super(`too many connections ${scope === 'client' ? 'from this client ' : ''}to '${route}' for the ${limit === 'ingress' ? "ingress's" : "workload's"} limit: retry after ${retryAfterSeconds} s`, 'ERR_RATE_LIMITED', { route, scope, retryAfterSeconds, limit })
    this.name = 'RateLimitedError'
  }
}

/** The port has an access policy and the request carries no `Authorization: Bearer` (or comes over raw TCP). */
export class IngressAuthRequiredError extends IngressError {
  constructor(deploymentId: string, port: number, why: string) {
    super(`port ${port} of deployment ${deploymentId} needs a key or a capability token: ${why}`, 'ERR_INGRESS_AUTH_REQUIRED', { deploymentId, port })
    this.name = 'IngressAuthRequiredError'
  }
}

/** The presented key is not listed, or the token is not the declared issuer's, expired, or for another port. */
export class IngressAccessDeniedError extends IngressError {
  constructor(deploymentId: string, port: number, why: string) {
    super(`access to port ${port} of deployment ${deploymentId} denied: ${why}`, 'ERR_INGRESS_ACCESS_DENIED', { deploymentId, port })
    this.name = 'IngressAccessDeniedError'
  }
}

for (const cls of [
  IngressError, PortNotExposedError, ContractNotServingError, ReplicaNotReadyError, NoReadyReplicaError, BackendUnreachableError,
  UpstreamUnreachableError, UnknownRouteError, InvalidIngressRequestError, RouteExistsError, InvalidExposureGrantError, DeploymentNotHereError,
  RateLimitedError, IngressAuthRequiredError, IngressAccessDeniedError,
]) registerErrorClass(cls as never, cls.name)
