// Typed errors of the actor executor. They extend core's NoirError and are registered with core's wire
// error registry, so an `ask` from another node receives an instance of the same class (same `name`).
import { NoirError } from '../../../core/errors.ts'
import { registerErrorClass } from '../../../core/wire-error.ts'

/**
 * The sandboxed actor was refused an operation by Node's permission model (a file outside its state
 * directory, a child process, a native addon, a worker): Node's ERR_ACCESS_DENIED, made a typed answer.
 */
export class SandboxAccessDeniedError extends NoirError {
  constructor(permission: string, resource: string) {
    super(`the actor sandbox refused ${permission}${resource ? ` on ${resource}` : ''}`, 'ERR_SANDBOX_ACCESS_DENIED', { permission, resource })
    this.name = 'SandboxAccessDeniedError'
  }
}

/** The bundle cannot be run: missing, not a module, or it exports no actor definition. */
export class ActorBundleError extends NoirError {
  constructor(bundle: string, why: string) {
    super(`actor bundle '${bundle}': ${why}`, 'ERR_ACTOR_BUNDLE', { bundle })
    this.name = 'ActorBundleError'
  }
}

/** The workload ended (or was never started) while a message to it was in flight. */
export class ActorWorkloadEndedError extends NoirError {
  constructor(address: string, why: string) {
    super(`the actor workload at ${address} is not running (${why})`, 'ERR_ACTOR_WORKLOAD_ENDED', { address })
    this.name = 'ActorWorkloadEndedError'
  }
}

for (const cls of [SandboxAccessDeniedError, ActorBundleError, ActorWorkloadEndedError]) registerErrorClass(cls)

/** Node's permission-model refusal (`ERR_ACCESS_DENIED`) as a SandboxAccessDeniedError; other values unchanged. */
export function sandboxError(err: unknown): unknown {
  if (err instanceof SandboxAccessDeniedError) return err
  if (err instanceof Error && (err as { code?: unknown }).code === 'ERR_ACCESS_DENIED') {
    const e = err as Error & { permission?: unknown; resource?: unknown }
    return new SandboxAccessDeniedError(typeof e.permission === 'string' ? e.permission : 'access', typeof e.resource === 'string' ? e.resource : '')
  }
  return err
}
