// Signed orchestration objects (bid requests, bids, contracts): the signature covers
//   UTF-8(domain tag) || 0x00 || RFC 8785 canonical JSON of the body
// never a language's default JSON output. The signer is a did:key named inside the body, so a verifier
// needs nothing but the object. spec/contracts.md gives the exact bytes.
import { canonicalJsonBytes } from '../../identity/canonical-json.ts'
import { verifyEd25519ForDid, type NodeKey } from '../../identity/keys.ts'
import { InvalidSignatureError, InvalidTermsError } from '../errors.ts'

export const BID_REQUEST_TAG = 'noir:bid-request:v1'
export const BID_TAG = 'noir:bid:v1'
export const CONTRACT_TAG = 'noir:contract:v1'

const enc = new TextEncoder()

/** The exact bytes a signature covers. */
export function signingBytes(tag: string, body: unknown): Uint8Array {
  const t = enc.encode(tag)
  const b = canonicalJsonBytes(body)
  const out = new Uint8Array(t.length + 1 + b.length)
  out.set(t, 0)
  out[t.length] = 0
  out.set(b, t.length + 1)
  return out
}

export const toB64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')
export const fromB64u = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'))

export function signBody(key: NodeKey, tag: string, body: unknown): string {
  return toB64u(key.sign(signingBytes(tag, body)))
}

/** Throws InvalidSignatureError unless `sig` is `signer`'s signature over (tag, body). */
export function verifyBody(signer: string, tag: string, body: unknown, sig: unknown, what: string): void {
  if (typeof sig !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(sig)) throw new InvalidSignatureError(`${what}: signature missing or not 64 bytes of base64url`)
  let ok = false
  try {
    ok = verifyEd25519ForDid(signer, signingBytes(tag, body), fromB64u(sig))
  } catch (err) {
    throw new InvalidSignatureError(`${what}: cannot verify (${(err as Error).name}: ${(err as Error).message})`)
  }
  if (!ok) throw new InvalidSignatureError(`${what}: signature does not verify for ${signer}`)
}

/** Checks the freshness window of a signed object. */
export function checkWindow(what: string, issuedAt: unknown, expiresAt: unknown, now: number, skewMs = 30_000): void {
  if (typeof issuedAt !== 'number' || typeof expiresAt !== 'number') throw new InvalidTermsError(`${what}: issuedAt/expiresAt missing`)
  if (issuedAt > now + skewMs) throw new InvalidTermsError(`${what}: issued in the future`)
  if (expiresAt < now) throw new InvalidTermsError(`${what}: expired`, { expiresAt, now })
}

/** A value from the wire, short and safe to put in an error message. */
export const shown = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v.slice(0, 60)) : typeof v === 'number' || typeof v === 'boolean' ? String(v) : v === null ? 'null' : typeof v)
