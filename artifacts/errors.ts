// Every failure of the artifact layer, one class each, with a stable `name` and `code` (callers branch on the
// class or `name`, never on message text). Registered with core so a remote caller gets the same class; the
// artifact protocol answers a refused request with `{ name, message }` the fetcher turns back into one.
import { registerErrorClass } from '../core/wire-error.ts'
import { NoirError } from '../core/errors.ts'

export class ArtifactError extends NoirError {
  override name = 'ArtifactError'
  override readonly code: string = 'ARTIFACT'
  /** The HTTP status a local API answers with. */
  readonly status: number = 400
  constructor(message: string, data?: Record<string, unknown>) {
    super(message, 'ARTIFACT', data)
  }
}

/** A digest that is not `sha256:` and 64 lower-case hex digits. */
export class InvalidArtifactDigestError extends ArtifactError {
  override name = 'InvalidArtifactDigestError'
  override readonly code = 'ARTIFACT_DIGEST_INVALID'
}

/** The bytes received (or found on disk) do not hash to the digest they were asked for. */
export class ArtifactDigestMismatchError extends ArtifactError {
  override name = 'ArtifactDigestMismatchError'
  override readonly code = 'ARTIFACT_DIGEST_MISMATCH'
  override readonly status = 422
}

/** No node asked holds the artifact (or this node's store does not). */
export class ArtifactNotFoundError extends ArtifactError {
  override name = 'ArtifactNotFoundError'
  override readonly code = 'ARTIFACT_NOT_FOUND'
  override readonly status = 404
}

/** The artifact is larger than the store's bound or the fetch's limit; nothing past the limit was kept. */
export class ArtifactTooLargeError extends ArtifactError {
  override name = 'ArtifactTooLargeError'
  override readonly code = 'ARTIFACT_TOO_LARGE'
  override readonly status = 413
}

/** The sender broke the artifact protocol: a bad header, fewer or more bytes than it announced, a stall. */
export class ArtifactProtocolError extends ArtifactError {
  override name = 'ArtifactProtocolError'
  override readonly code = 'ARTIFACT_PROTOCOL'
  override readonly status = 502
}

/** An archive (bundle, output folder, image) holds an entry that could escape its folder or is not a plain file. */
export class UnsafeArchiveError extends ArtifactError {
  override name = 'UnsafeArchiveError'
  override readonly code = 'ARTIFACT_ARCHIVE_UNSAFE'
}

/** Local files could not be turned into an artifact (missing file, an import outside the bundle's folder, ...). */
export class ArtifactSourceError extends ArtifactError {
  override name = 'ArtifactSourceError'
  override readonly code = 'ARTIFACT_SOURCE'
}

/** A provenance record that is not one, or whose signature does not verify. */
export class InvalidProvenanceError extends ArtifactError {
  override name = 'InvalidProvenanceError'
  override readonly code = 'PROVENANCE_INVALID'
}

for (const cls of [ArtifactError, InvalidArtifactDigestError, ArtifactDigestMismatchError, ArtifactNotFoundError, ArtifactTooLargeError, ArtifactProtocolError, UnsafeArchiveError, ArtifactSourceError, InvalidProvenanceError]) registerErrorClass(cls)

/** Rebuilds a typed error from a `{ name, message }` a peer sent (an unknown name becomes ArtifactProtocolError). */
export function artifactErrorFrom(name: unknown, message: unknown): ArtifactError {
  const text = typeof message === 'string' ? message.slice(0, 500) : 'no message'
  switch (name) {
    case 'ArtifactNotFoundError': return new ArtifactNotFoundError(text)
    case 'ArtifactTooLargeError': return new ArtifactTooLargeError(text)
    case 'InvalidArtifactDigestError': return new InvalidArtifactDigestError(text)
    case 'ArtifactDigestMismatchError': return new ArtifactDigestMismatchError(text)
    default: return new ArtifactProtocolError(`the peer refused: ${typeof name === 'string' ? name.slice(0, 60) : 'unnamed error'}: ${text}`)
  }
}
