// Artifact digests: `sha256:` and 64 lower-case hex digits of the artifact's bytes, exactly as stored and sent
// (spec/artifacts.md). For DHT provider records the same digest is a CIDv1 (raw codec, sha2-256 multihash).
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createMultihash } from 'multiformats/hashes/digest'
import { InvalidArtifactDigestError } from './errors.ts'

export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/
const SHA2_256 = 0x12

export const isDigest = (v: unknown): v is string => typeof v === 'string' && DIGEST_PATTERN.test(v)

/** The 64 hex digits of a digest; throws InvalidArtifactDigestError for anything else. */
export function digestHex(digest: unknown): string {
  if (!isDigest(digest)) throw new InvalidArtifactDigestError(`an artifact digest is 'sha256:' and 64 lower-case hex digits (got ${typeof digest === 'string' ? JSON.stringify(digest.slice(0, 80)) : typeof digest})`)
  return digest.slice(7)
}

export const digestOf = (bytes: Uint8Array): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

/** The CID a node announces in the DHT for the artifact it holds. */
export function cidOf(digest: string): CID {
  return CID.createV1(raw.code, createMultihash(SHA2_256, Buffer.from(digestHex(digest), 'hex')))
}
