// The certificates a node carries in its bids (spec/trust.md "Owner certification", "The core pool"), read
// from config.json: `owner: { certificate }` (signed by the owner, ability /noir/owner/node) and
// `core: { certificate }` (signed by the operator's root, ability /noir/core/member). Each is checked at
// start against this node (its signature, that it names this node, its window): a certificate that could
// not be believed stops the daemon with NodeCertificateError, so an owner learns of it before any bid.
import {
  CORE_ABILITY, NodeCertificateError, OWNER_ABILITY, verifyNodeCertificate, type NodeCertificate, type NodeCertAbility,
} from '../../actors/placement/node-certificate.ts'

export interface NodeCertificates {
  /** The certified owner (the owner certificate's issuer). */
  owner?: string
  ownerCert?: NodeCertificate
  coreCert?: NodeCertificate
}

function read(config: Record<string, unknown>, field: 'owner' | 'core', ability: NodeCertAbility, did: string, issuers?: string[]): NodeCertificate | undefined {
  const section = config[field]
  if (section === undefined) return undefined
  const cert = (section as { certificate?: unknown } | null)?.certificate
  if (typeof section !== 'object' || section === null || cert === undefined) throw new NodeCertificateError('malformed', `config.json '${field}' must be { certificate }`)
  const issuer = (cert as { body?: { issuer?: unknown } } | null)?.body?.issuer
  try {
    verifyNodeCertificate(cert, { ability, node: did, issuers: issuers ?? (typeof issuer === 'string' ? [issuer] : []) })
  } catch (err) {
    if (err instanceof NodeCertificateError) throw new NodeCertificateError(err.reason, `config.json '${field}.certificate' ${err.message.replace(/^node certificate: /, '')}`)
    throw err
  }
  return cert as NodeCertificate
}

/** Reads and checks this node's certificates; `claimedOwner` (orchestration.owner) must agree with the owner certificate. */
export function nodeCertificatesFrom(config: Record<string, unknown>, did: string, claimedOwner?: string): NodeCertificates {
  const ownerCert = read(config, 'owner', OWNER_ABILITY, did)
  const coreCert = read(config, 'core', CORE_ABILITY, did)
  if (ownerCert && claimedOwner !== undefined && claimedOwner !== ownerCert.body.issuer) {
    throw new NodeCertificateError('wrong-issuer', `config.json 'orchestration.owner' is ${claimedOwner} but 'owner.certificate' is signed by ${ownerCert.body.issuer}`)
  }
  return { ...(ownerCert ? { owner: ownerCert.body.issuer, ownerCert } : {}), ...(coreCert ? { coreCert } : {}) }
}

/** config.json `trustedRoots`: whose core-membership certificates this node, orchestrating, believes. */
export function coreRootsFrom(config: Record<string, unknown>): string[] {
  const r = config.trustedRoots
  return Array.isArray(r) ? r.filter((x): x is string => typeof x === 'string') : []
}
