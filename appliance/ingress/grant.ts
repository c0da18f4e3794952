// Exposure grants (spec/ingress.md "Exposure"): a port the workload keeps private is opened by its owner with
// `noir expose DEPLOYMENT PORT --public`; the deployment's orchestrator then signs a short-lived grant that the
// ingress carries in its open frame, and the provider accepts it only when it is signed by the orchestrator of
// that very contract, names the same deployment and port, and has not expired. Closing the port again stops the
// orchestrator issuing grants: the last one ends within GRANT_TTL_MS.
import { canonicalJsonBytes } from '../../identity/canonical-json.ts'
import type { NodeKey } from '../../identity/keys.ts'
import { verifyEd25519ForDid } from '../../identity/keys.ts'
import { InvalidExposureGrantError } from './errors.ts'

export const GRANT_DOMAIN = 'noir:expose:v1'
/** How long a grant is good for (the ingress asks for a fresh one well before). */
export const GRANT_TTL_MS = 60_000

export interface ExposureGrant {
  v: 1
  deploymentId: string
  port: number
  /** The orchestrator's DID (the signer). */
  issuer: string
  /** ms since the epoch. */
  expiresAt: number
  /** Ed25519 signature, base64url, over GRANT_DOMAIN + "\n" + the canonical JSON of the other fields. */
  sig: string
}

const signedBytes = (g: Omit<ExposureGrant, 'sig'>): Uint8Array =>
  Buffer.concat([Buffer.from(`${GRANT_DOMAIN}\n`, 'utf8'), canonicalJsonBytes({ v: g.v, deploymentId: g.deploymentId, port: g.port, issuer: g.issuer, expiresAt: g.expiresAt })])

export function signGrant(key: NodeKey, deploymentId: string, port: number, now = Date.now()): ExposureGrant {
  const body = { v: 1 as const, deploymentId, port, issuer: key.did, expiresAt: now + GRANT_TTL_MS }
  return { ...body, sig: Buffer.from(key.sign(signedBytes(body))).toString('base64url') }
}

/**
 * Checks a grant for one contract: `orchestrators` are the DIDs that may act for the contract's deployment
 * (its consumer, and the standby that took it over). Throws InvalidExposureGrantError.
 */
export function checkGrant(x: unknown, want: { deploymentId: string; port: number; orchestrators: string[] }, now = Date.now()): ExposureGrant {
  const g = x as Partial<ExposureGrant> | null
  if (typeof g !== 'object' || g === null || g.v !== 1) throw new InvalidExposureGrantError('not a v1 grant')
  if (typeof g.issuer !== 'string' || typeof g.sig !== 'string' || typeof g.expiresAt !== 'number' || typeof g.deploymentId !== 'string' || typeof g.port !== 'number') {
    throw new InvalidExposureGrantError('a field is missing or of the wrong type')
  }
  if (g.deploymentId !== want.deploymentId || g.port !== want.port) throw new InvalidExposureGrantError(`it opens port ${g.port} of ${g.deploymentId}, not port ${want.port} of ${want.deploymentId}`)
  if (!want.orchestrators.includes(g.issuer)) throw new InvalidExposureGrantError(`${g.issuer} does not orchestrate this deployment`)
  if (g.expiresAt <= now) throw new InvalidExposureGrantError('it has expired')
  if (g.expiresAt > now + 2 * GRANT_TTL_MS) throw new InvalidExposureGrantError('it is good for longer than a grant may be')
  let ok = false
  try {
    ok = verifyEd25519ForDid(g.issuer, signedBytes(g as ExposureGrant), Buffer.from(g.sig, 'base64url'))
  } catch {
    ok = false
  }
  if (!ok) throw new InvalidExposureGrantError('the signature does not verify')
  return g as ExposureGrant
}
