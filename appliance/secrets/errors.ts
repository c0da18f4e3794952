// Typed errors of secret delivery (spec/secrets.md), registered so a provider asking over the mesh receives
// the same class its orchestrator threw.
import { registerErrorClass } from '../../core/index.ts'
import { ApplianceError } from '../errors.ts'

/** A node asked for secrets of a contract it does not run (or names a secret its workload does not name). */
export class SecretRefusedError extends ApplianceError {
  override readonly name = 'SecretRefusedError'
  override readonly status = 403
  override readonly code = 'ERR_SECRET_REFUSED'
}

/** A secret the workload names has no value where its orchestrator looks (nor at the gateway behind it). */
export class SecretUnavailableError extends ApplianceError {
  override readonly name = 'SecretUnavailableError'
  override readonly status = 409
  override readonly code = 'ERR_SECRET_UNAVAILABLE'
}

/** A secret request the local API does not know (answered already, or timed out). */
export class UnknownSecretRequestError extends ApplianceError {
  override readonly name = 'UnknownSecretRequestError'
  override readonly status = 404
  override readonly code = 'ERR_UNKNOWN_SECRET_REQUEST'
}

for (const cls of [SecretRefusedError, SecretUnavailableError, UnknownSecretRequestError]) registerErrorClass(cls as never, cls.name)
