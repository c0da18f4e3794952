// Typed errors of the gateway's secrets (spec/secrets.md), answered as problem+json like every GatewayError.
import { GatewayError } from '../errors.ts'

/** A workload names a secret its account does not hold: refused at admission, before the mesh is asked. */
export class MissingSecretError extends GatewayError {
  override name = 'MissingSecretError'
  override readonly code = 'ERR_MISSING_SECRET'
  override readonly status = 409
}
