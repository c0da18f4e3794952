// CSRF (spec/security.md): a state change is accepted from the gateway's own pages, from an origin the
// operator allowed, or from a client that is not a browser (no Origin, no Sec-Fetch-Site: the CLI, the SDKs).
// The session cookie is SameSite=Strict as the first line; this is the second, and it does not depend on the
// cookie: a browser always sends Origin with a cross-origin POST, PUT or DELETE, and Sec-Fetch-Site with
// every request it makes. A DNS-rebound name passes the own-origin test but carries no session cookie of ours.
import type { FastifyRequest } from 'fastify'
import { InvalidRequestError } from '../errors.ts'

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

export function ownOrigin(req: FastifyRequest): string {
  return `${req.protocol}://${req.headers.host ?? ''}`
}

/**
 * Throws InvalidRequestError (400, data.origin) for a state change a browser sent from another site. The own
 * origin (`scheme://Host`, or `publicOrigin`) must also come with `Sec-Fetch-Site: same-origin` (or none);
 * an origin in `allowed` (a dashboard the operator hosts elsewhere) is another site by definition.
 */
export function refuseCrossSite(req: FastifyRequest, allowed: ReadonlySet<string>, publicOrigin?: string): void {
  if (SAFE.has(req.method)) return
  const origin = req.headers.origin
  const site = req.headers['sec-fetch-site']
  if (origin !== undefined) {
    if (allowed.has(origin)) return
    if ((origin === ownOrigin(req) || origin === publicOrigin) && (site === undefined || site === 'same-origin')) return
    throw new InvalidRequestError(`requests from ${origin.slice(0, 200)} may not change state here`, { origin: origin.slice(0, 200) })
  }
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new InvalidRequestError(`requests from another site (Sec-Fetch-Site: ${String(site).slice(0, 40)}) may not change state here`, { origin: null })
}
