// Access control on an exposed port (spec/ingress.md "Access control"), declared by the workload's owner in
// `ports[].access`: a bearer key whose SHA-256 is listed (compared in constant time, every listed hash each
// time), or a capability token (identity/capabilities.ts) whose chain's root is the declared issuer, unexpired,
// with an ability covering `/noir/ingress/<deploymentId>/<port>`. No bearer: IngressAuthRequiredError (401);
// a bearer that matches nothing: IngressAccessDeniedError (403). A token is a bearer credential here: its
// audience is not checked (an HTTP client proves no key), so owners issue short-lived, narrow tokens.
import { createHash, timingSafeEqual } from 'node:crypto'
import { CapabilityVerifier } from '../../identity/capabilities.ts'
import type { PortAccess } from '../../actors/workload/workload.ts'
import { IngressAccessDeniedError, IngressAuthRequiredError } from './errors.ts'
import { MAX_BEARER_CHARS } from './protocol.ts'

/** The ability a token must grant to open port `port` of a deployment. */
export const accessAbility = (deploymentId: string, port: number): string => `/noir/ingress/${deploymentId}/${port}`


const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const VERIFIERS_KEPT = 256

export class AccessChecker {
  /** One verifier (and its cache of verified chains) per declared issuer, the least recently used dropped. */
  readonly #verifiers = new Map<string, CapabilityVerifier>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /**
   * Resolves with the bearer when `authorization` (the request's Authorization header values) opens the port;
   * throws IngressAuthRequiredError or IngressAccessDeniedError otherwise.
   */
  async check(access: PortAccess, authorization: string[], deploymentId: string, port: number): Promise<string> {
    if (authorization.length === 0) throw new IngressAuthRequiredError(deploymentId, port, 'no Authorization header')
    if (authorization.length > 1) throw new IngressAccessDeniedError(deploymentId, port, 'more than one Authorization header')
    // RFC 6750 b64token: what a key or a JWT is made of (and nothing JSON would escape in the open frame)
    const m = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(authorization[0]!)
    if (!m) throw new IngressAuthRequiredError(deploymentId, port, 'the Authorization header is not "Bearer <key or token>" (RFC 6750 characters)')
    const bearer = m[1]!
    if (bearer.length > MAX_BEARER_CHARS) throw new IngressAccessDeniedError(deploymentId, port, `the bearer is longer than ${MAX_BEARER_CHARS} characters`)
    if (access.apiKeys && keyListed(bearer, access.apiKeys)) return bearer
    if (access.capability && JWT.test(bearer)) {
      try {
        await this.#verifier(access.capability.issuer).verify(bearer, { ability: accessAbility(deploymentId, port) })
        return bearer
      } catch (err) {
        throw new IngressAccessDeniedError(deploymentId, port, `the capability token is not accepted (${(err as Error).name}: ${(err as Error).message.slice(0, 200)})`)
      }
    }
    throw new IngressAccessDeniedError(deploymentId, port, access.capability ? 'neither a listed key nor an accepted capability token' : 'not a listed key')
  }

  #verifier(issuer: string): CapabilityVerifier {
    let v = this.#verifiers.get(issuer)
    if (v) this.#verifiers.delete(issuer)
    else v = new CapabilityVerifier({ trustedRoots: [issuer], now: this.#now, cacheSize: 1000 })
    this.#verifiers.set(issuer, v)
    if (this.#verifiers.size > VERIFIERS_KEPT) this.#verifiers.delete(this.#verifiers.keys().next().value!)
    return v
  }
}

/** Whether sha256(key) is one of `hashes`, comparing every listed hash in constant time (no early exit). */
export function keyListed(key: string, hashes: string[]): boolean {
  const h = createHash('sha256').update(key, 'utf8').digest()
  let found = false
  for (const listed of hashes) {
    const l = Buffer.from(listed, 'hex')
    if (l.byteLength === h.byteLength && timingSafeEqual(l, h)) found = true
  }
  return found
}
